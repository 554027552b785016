"""End to end on Telegram: the real youhu Telegram application (python-telegram-bot
v22) against a fake Bot API server over HTTP — a cadre registers through a
deep link, raises a call with an album and a location, the liaison gets the
alert with the photos, acknowledges, responds and resolves with an evidence
photo, the cadre confirms and rates. Plus webhooks, strangers, forged
buttons, 429s and 5xx, and the same update twice."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlmodel import Session, col, select
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.delivery import Deliverer
from bot.scheduler import Scheduler
from bot.settings import TelegramSettings
from bot.telegram import TelegramChannel, split_text
from bot.web import Server, build_app, telegram_route
from models import Attachment, Call, CallStatus, Member, OutboxMessage, Rating
from tests.conftest import JPEG, PNG
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from workflows import accounts
from workflows.context import Context
from workflows.directory import load
from workflows.invites import create_invite
from workflows.orgfile import read_catalog, read_org

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CADRE = 5001  # 李明's Telegram user id, bound by the invite
LIAISON = 700000201  # 何文斌 (区水务局), bound in the org file
STRANGER = 9999
JPEG2 = JPEG[:-2] + b"\x00\xff\xd9"


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def district(ctx: Context) -> Context:
    org = read_org(EXAMPLES / "org.yaml")
    load(ctx.engine, org, read_catalog(EXAMPLES / "catalog.yaml", org), now())
    return ctx


@asynccontextmanager
async def running(ctx: Context, tg: FakeTelegram, mode: str = "polling",
                  secret: str | None = None,
                  webhook_url: str = "http://127.0.0.1:1/telegram/webhook",
                  clock: Callable[[], datetime] = now,
                  ) -> AsyncIterator[TelegramChannel]:
    """youhu's Telegram side as `youhu run` wires it: channel, deliverer, scheduler
    (on the real clock unless the test's data needs one of its own)."""
    settings = TelegramSettings(
        token=SecretStr(tg.token), mode=mode, base_url=tg.base_url,  # type: ignore[arg-type]
        base_file_url=tg.base_file_url,
        webhook_url=webhook_url if mode == "webhook" else None,
        webhook_secret=SecretStr(secret) if secret else None)
    scheduler: Scheduler | None = None

    def kick() -> None:
        assert scheduler is not None
        scheduler.kick()

    channel = TelegramChannel(ctx, settings, clock, on_queued=kick, album_wait=0.3)
    deliverer = Deliverer(ctx, [channel], clock)
    scheduler = Scheduler(ctx, deliverer, clock, sweep_seconds=3600, deliver_seconds=0.2)
    await channel.start()
    scheduler.start()
    try:
        yield channel
    finally:
        await scheduler.stop()
        await channel.stop()


def has_button(pattern: str) -> Callable[[SentMessage], bool]:
    return lambda m: any(re.search(pattern, str(b.get("callback_data", ""))) for b in m.buttons)


def button(message: SentMessage, pattern: str) -> str:
    return next(str(b["callback_data"]) for b in message.buttons
                if re.search(pattern, str(b.get("callback_data", ""))))


async def reply_to(tg: FakeTelegram, chat: int, since: int,
                   also: Callable[[SentMessage], bool] = lambda m: True) -> SentMessage:
    """The next message sent to `chat` (not an edit of an earlier one)."""
    return await tg.wait_for_async(
        lambda m: m.chat_id == chat and m.method.startswith("send") and also(m),
        since=since)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the database to show what a conversation did (a safety net of 10 s)."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise TimeoutError("the condition did not come about")


def the_call(ctx: Context) -> Call:
    with Session(ctx.engine) as session:
        call = session.exec(select(Call).order_by(col(Call.id).desc())).first()
        assert call is not None
        return call


def undelivered(ctx: Context) -> list[OutboxMessage]:
    """Notices about calls still waiting (in flight) for a member who has Telegram."""
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).where(
            OutboxMessage.status == "pending", col(OutboxMessage.call_id).is_not(None)))
        return [m for m in rows if "telegram" in accounts.account_map(session, m.member_id)]


def ids(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        return member.id or 0


def test_a_call_from_registration_to_rating(district: Context) -> None:
    ctx = district
    code = create_invite(ctx, "li-ming", None, now()).code

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            mark = len(tg.sent)
            tg.user_sends_command(CADRE, "/start", code)  # the deep link t.me/bot?start=CODE
            welcome = await reply_to(tg, CADRE, mark)
            assert "李明" in (welcome.text or "")
            # The cadre's own menu: a caller's commands, in Chinese.
            await tg.wait_until_async(lambda: bool(tg.my_commands(
                {"type": "chat", "chat_id": CADRE})))

            mark = len(tg.sent)
            tg.user_sends_command(CADRE, "/call")
            await reply_to(tg, CADRE, mark)
            mark = len(tg.sent)
            tg.user_sends_album(CADRE, [PNG, JPEG], caption="村口排水管堵塞，雨后积水")
            # The caption is the description: the items it suggests, once
            # both photos of the album are in.
            items = await reply_to(tg, CADRE, mark, lambda m: has_button(r":i\d+$")(m)
                                   and "照片：2 张" in (m.text or ""))
            drain = next(b["callback_data"] for b in items.buttons
                         if b["text"] == "市政排水管网堵塞")
            mark = len(tg.sent)
            tg.user_presses(CADRE, items.message_id or 0, str(drain))
            await reply_to(tg, CADRE, mark)
            mark = len(tg.sent)
            tg.user_sends_location(CADRE, 23.392, 113.41)
            summary = await reply_to(tg, CADRE, mark, has_button(r":ok$"))
            assert "2" in (summary.text or "")  # two photos
            mark = len(tg.sent)
            tg.user_presses(CADRE, summary.message_id or 0, button(summary, r":ok$"))
            raised = await reply_to(tg, CADRE, mark)
            call = the_call(ctx)
            assert call.number in (raised.text or "")
            with Session(ctx.engine) as session:
                photos = session.exec(select(Attachment).where(Attachment.call_id == call.id))
                assert sorted(a.size for a in photos) == sorted([len(PNG), len(JPEG)])
            assert (call.latitude, call.longitude) == (23.392, 113.41)

            # The liaison's alert: the photos as an album, then the card with buttons.
            alert = await reply_to(tg, LIAISON, 0, has_button(rf"^c:ack:{call.id}$"))
            album = next(m for m in tg.messages_to(LIAISON) if m.method == "sendMediaGroup")
            assert sorted(album.photos, key=len) == sorted([PNG, JPEG], key=len)
            assert call.number in (alert.text or "")

            acknowledged = mark = len(tg.sent)
            tg.user_presses(LIAISON, alert.message_id or 0, f"c:ack:{call.id}")
            await reply_to(tg, LIAISON, mark)
            # A second press of the same button changes nothing and is answered.
            mark = len(tg.sent)
            tg.user_presses(LIAISON, alert.message_id or 0, f"c:ack:{call.id}")
            await tg.wait_for_async(lambda m: m.method == "answerCallbackQuery", since=mark)
            await until(lambda: the_call(ctx).status is CallStatus.ACKNOWLEDGED)
            # The cadre sees the progress (the deliverer may have sent it before
            # the second press: look from the first).
            await reply_to(tg, CADRE, acknowledged, lambda m: call.number in (m.text or ""))

            mark = len(tg.sent)
            tg.user_presses(LIAISON, alert.message_id or 0, f"c:rsp:{call.id}")
            await reply_to(tg, LIAISON, mark)
            mark = len(tg.sent)
            tg.user_sends_text(LIAISON, "已派疏通班组")
            await reply_to(tg, LIAISON, mark)
            await until(lambda: the_call(ctx).status is CallStatus.IN_PROGRESS)

            mark = len(tg.sent)
            tg.user_presses(LIAISON, alert.message_id or 0, f"c:res:{call.id}")
            ask = await reply_to(tg, LIAISON, mark, has_button(r":done$"))
            mark = len(tg.sent)
            tg.user_sends_photo(LIAISON, JPEG2)
            await reply_to(tg, LIAISON, mark)
            mark = len(tg.sent)
            tg.user_presses(LIAISON, ask.message_id or 0, button(ask, r":done$"))
            await reply_to(tg, LIAISON, mark)
            await until(lambda: the_call(ctx).status is CallStatus.RESOLVED)

            # The cadre: before and after photos side by side, confirm, rate.
            resolved = await reply_to(tg, CADRE, mark, has_button(rf"^c:cfm:{call.id}$"))
            side_by_side = [m for m in tg.messages_to(CADRE) if m.method == "sendMediaGroup"]
            assert side_by_side and JPEG2 in side_by_side[-1].photos
            mark = len(tg.sent)
            tg.user_presses(CADRE, resolved.message_id or 0, f"c:cfm:{call.id}")
            levels = await reply_to(tg, CADRE, mark, has_button(r":r100$"))
            mark = len(tg.sent)
            tg.user_presses(CADRE, levels.message_id or 0, button(levels, r":r100$"))
            comment = await reply_to(tg, CADRE, mark, has_button(r":skip$"))
            mark = len(tg.sent)
            tg.user_presses(CADRE, comment.message_id or 0, button(comment, r":skip$"))
            await reply_to(tg, CADRE, mark)
            # The liaison hears of the rating.
            await reply_to(tg, LIAISON, mark)
            await until(lambda: not undelivered(ctx))

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
    call = the_call(ctx)
    assert call.status is CallStatus.CLOSED
    with Session(ctx.engine) as session:
        rating = session.exec(select(Rating).where(Rating.call_id == call.id)).one()
        # Every notice about the call reached a member with Telegram (李明, 何文斌);
        # the others of the department have no channel and were reported.
        notices = session.exec(select(OutboxMessage).where(
            OutboxMessage.call_id == call.id)).all()
        reached = {m.member_id for m in notices if m.status.value == "delivered"}
        pending = [m for m in notices if m.status.value == "pending"]
    assert rating.score == 100
    assert pending == [] and reached == {ids(ctx, "li-ming"), ids(ctx, "he-wenbin")}


def test_strangers_forged_buttons_and_redelivered_updates(district: Context) -> None:
    ctx = district

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            mark = len(tg.sent)
            tg.user_sends_text(STRANGER, "你好")
            refusal = await reply_to(tg, STRANGER, mark)
            assert refusal.text
            # A forged button: answered, nothing changes.
            mark = len(tg.sent)
            tg.user_presses(LIAISON, 424242, "c:ack:999999")
            await tg.wait_for_async(lambda m: m.method == "answerCallbackQuery", since=mark)
            mark = len(tg.sent)
            tg.user_presses(LIAISON, 424242, "not-ours")
            await tg.wait_for_async(lambda m: m.method == "answerCallbackQuery", since=mark)
            # The same update twice (a redelivery after a restart): handled once.
            update = tg.user_sends_command(LIAISON, "/help")
            await reply_to(tg, LIAISON, mark, lambda m: "/help" in (m.text or "")
                           or "/lang" in (m.text or ""))
            before = len(tg.messages_to(LIAISON))
            tg.enqueue_update(update)
            mark = len(tg.sent)
            tg.user_sends_text(LIAISON, "随便说点")  # a later update proves the first was seen
            await reply_to(tg, LIAISON, mark)
            assert len(tg.messages_to(LIAISON)) == before + 1

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
    with Session(ctx.engine) as session:
        assert session.exec(select(Call)).all() == []


def test_webhook_checks_the_secret(district: Context, unused_port: int) -> None:
    ctx = district
    secret = "s3cret-token_1"

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg, mode="webhook", secret=secret) as channel:
            app = build_app([telegram_route(channel, "/telegram/webhook", secret)])
            server = Server(uvicorn.Config(app, host="127.0.0.1", port=unused_port,
                                           log_level="warning", lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{unused_port}/telegram/webhook"
            update: dict[str, Any] = {"update_id": 1, "message": {
                "message_id": 1, "date": 0, "chat": {"id": LIAISON, "type": "private"},
                "from": {"id": LIAISON, "is_bot": False, "first_name": "何"}, "text": "/help"}}
            async with httpx.AsyncClient() as client:
                wrong = await client.post(url, json=update,
                                          headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
                missing = await client.post(url, json=update)
                garbage = await client.post(url, content=b"<xml/>", headers={
                    "X-Telegram-Bot-Api-Secret-Token": secret})
                assert (wrong.status_code, missing.status_code, garbage.status_code) == (
                    403, 403, 400)
                mark = len(tg.sent)
                right = await client.post(url, json=update, headers={
                    "X-Telegram-Bot-Api-Secret-Token": secret})
                assert right.status_code == 200
                await reply_to(tg, LIAISON, mark)
                assert tg.webhook_url == "http://127.0.0.1:1/telegram/webhook"
            server.should_exit = True
            await serving

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))


def test_429_and_5xx_are_retried_and_nothing_is_lost(district: Context) -> None:
    ctx = district
    with Session(ctx.engine) as session:
        from workflows.notifications import enqueue

        liaison = ids(ctx, "he-wenbin")
        for n in range(3):
            enqueue(session, f"t:{n}", liaison, "undeliverable", now(), member=f"m{n}",
                    about="nudge", reason="test")
        session.commit()

    async def scenario(tg: FakeTelegram) -> None:
        tg.fail_next("sendMessage", status=429, retry_after=1)
        tg.fail_next("sendMessage", status=502)
        tg.fail_next("sendMessage", status=500)
        async with running(ctx, tg):
            await tg.wait_until_async(
                lambda: len([m for m in tg.messages_to(LIAISON)
                             if m.method == "sendMessage"]) >= 3, timeout=30)
            with Session(ctx.engine) as session:
                while session.exec(select(OutboxMessage).where(
                        OutboxMessage.status == "pending")).first() is not None:
                    await asyncio.sleep(0.1)
                    session.expire_all()

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
        texts = [m.text for m in tg.messages_to(LIAISON) if m.method == "sendMessage"]
    assert len(texts) == 3 and len(set(texts)) == 3  # each once, none lost


def test_long_text_is_split() -> None:
    text = "\n".join(f"第{i}行：" + "很长的内容" * 40 for i in range(60))
    pieces = split_text(text)
    assert all(len(p) <= 4096 for p in pieces) and "".join(pieces).replace("\n", "") == (
        text.replace("\n", ""))


def test_two_workers_take_turns_in_one_conversation(district: Context, unused_port: int) -> None:
    """Two workers behind one webhook (as two `youhu run` processes on one
    PostgreSQL behind a proxy): updates alternate between them, and the
    dialog, kept in the database, goes on whichever worker takes the update."""
    ctx = district
    code = create_invite(ctx, "li-ming", None, now()).code
    url = f"http://127.0.0.1:{unused_port}/telegram/webhook"
    secret = "round-robin-secret"

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg, "webhook", secret, url) as first, \
                running(ctx, tg, "webhook", secret, url) as second:
            workers = [first, second]
            taken: list[int] = []
            routes = [telegram_route(worker, f"/worker{n}", secret)
                      for n, worker in enumerate(workers)]

            async def proxy(request: Request) -> Response:
                """A round-robin proxy: update n goes to worker n % 2."""
                n = len(taken) % 2
                taken.append(n)
                data = await request.json()
                await workers[n].feed(data)
                return PlainTextResponse("ok")

            app = build_app([*routes, Route("/telegram/webhook", proxy, methods=["POST"])])
            server = Server(uvicorn.Config(app, host="127.0.0.1", port=unused_port,
                                           log_level="warning", lifespan="off"))
            serving = asyncio.create_task(server.serve())
            while not server.started:
                await asyncio.sleep(0.01)
            try:
                mark = len(tg.sent)
                tg.user_sends_command(CADRE, "/start", code)
                await reply_to(tg, CADRE, mark)
                mark = len(tg.sent)
                tg.user_sends_command(CADRE, "/call")
                await reply_to(tg, CADRE, mark)
                mark = len(tg.sent)
                tg.user_sends_text(CADRE, "路灯不亮")  # fits no item: the domains
                domains = await reply_to(tg, CADRE, mark, has_button(r":d\d+$"))
                mark = len(tg.sent)
                tg.user_presses(CADRE, domains.message_id or 0, button(domains, r":d\d+$"))
                items = await reply_to(tg, CADRE, mark, has_button(r":i\d+$"))
                mark = len(tg.sent)
                tg.user_presses(CADRE, items.message_id or 0, button(items, r":i\d+$"))
                await reply_to(tg, CADRE, mark)
                mark = len(tg.sent)
                tg.user_sends_location(CADRE, 23.2, 113.3)
                summary = await reply_to(tg, CADRE, mark, has_button(r":ok$"))
                mark = len(tg.sent)
                tg.user_presses(CADRE, summary.message_id or 0, button(summary, r":ok$"))
                await reply_to(tg, CADRE, mark)
            finally:
                server.should_exit = True
                await serving
            assert set(taken) == {0, 1} and len(taken) >= 7

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
    call = the_call(ctx)
    assert call.text == "路灯不亮" and call.status is CallStatus.DISPATCHED

"""End to end on WeCom: youhu's WeCom channel served by uvicorn as `youhu run`
serves it, real encrypted callbacks (wechatpy's own crypto) posted to it, and
our httpx client talking to a fake WeCom server API — a cadre registers with
an invite, raises a call with photos and a location through template cards,
the liaison acknowledges, responds and resolves from the cards (which are
updated after each click), the cadre confirms and rates. Plus a member on
both channels, refused callbacks, redelivery, an expiring token and API
errors retried through the outbox."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlmodel import Session, col, select

from bot.delivery import Channel, Deliverer
from bot.scheduler import Scheduler
from bot.settings import (
    DatabaseSettings,
    HttpSettings,
    MediaSettings,
    SchedulerSettings,
    Settings,
    SettingsError,
    TelegramSettings,
    WeComSettings,
    load_settings,
)
from bot.telegram import TelegramChannel
from bot.web import Server, build_app
from bot.wecom import WeComChannel, WeComClient, WeComError
from bot.wecom.render import CARD_BUTTONS, TEXT_LIMIT, split_text, template_cards
from handlers.messages import Button
from models import (
    Attachment,
    CallStatus,
    CatalogItem,
    Delivery,
    HandledUpdate,
    InboxStatus,
    InboxUpdate,
    Member,
    OutboxMessage,
    Rating,
)
from tests.conftest import JPEG, PNG
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wecom_api import FakeWeCom, SentWeCom
from tests.fakes.wecom_callbacks import Callback, WeComCallbacks, random_aes_key
from tests.test_telegram import the_call, until
from workflows.calls import raise_call
from workflows.context import Context
from workflows.directory import load
from workflows.invites import create_invite
from workflows.notifications import enqueue
from workflows.orgfile import read_catalog, read_org
from workflows.photos import Photo

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "youhuCallbackToken"
AES_KEY = random_aes_key()
CADRE = "LiMing"  # 李明, bound over WeCom by an invite
CALLER = "HuangJianGuo"  # 黄建国, wecom_userid in the org file
LIAISON = "HeWenBin"  # 何文斌 (区水务局): WeCom and Telegram in the org file
LIAISON_TG = 700000201
STRANGER = "SomeoneElse"
JPEG2 = JPEG[:-2] + b"\x00\xff\xd9"


class Clock:
    """The time, which a test may move on (to reach an outbox retry without sleeping)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@pytest.fixture
def district(ctx: Context) -> Context:
    org = read_org(EXAMPLES / "org.yaml")
    load(ctx.engine, org, read_catalog(EXAMPLES / "catalog.yaml", org), datetime.now(UTC))
    return ctx


@pytest.fixture(scope="module")
def _fake() -> Iterator[FakeWeCom]:
    with FakeWeCom() as fake:
        yield fake


@pytest.fixture
def wecom(_fake: FakeWeCom) -> FakeWeCom:
    """One fake server for the module (starting uvicorn costs time), reset for each test."""
    _fake.reset()
    return _fake


def wecom_settings(wecom: FakeWeCom) -> WeComSettings:
    return WeComSettings(corp_id=wecom.corp_id, agent_id=wecom.agent_id,
                         secret=SecretStr(wecom.secret), token=SecretStr(TOKEN),
                         encoding_aes_key=SecretStr(AES_KEY), api_base=wecom.url)


@dataclass
class Harness:
    """The running app and what a test does to it: post callbacks as WeCom
    would, and wait for what members see."""

    channel: WeComChannel
    wecom: FakeWeCom
    callbacks: WeComCallbacks
    url: str
    http: httpx.AsyncClient
    clock: Clock
    deliverer: Deliverer
    scheduler: Scheduler

    def __post_init__(self) -> None:
        self._msg_ids = itertools.count(7_000_000_001)

    def msg_id(self) -> int:
        return next(self._msg_ids)

    async def post(self, callback: Callback) -> httpx.Response:
        return await self.http.post(self.url, params=callback.params, content=callback.body)

    async def accepted(self, callback: Callback) -> None:
        response = await self.post(callback)
        assert (response.status_code, response.text) == (200, "")

    async def text(self, user: str, content: str) -> None:
        await self.accepted(self.callbacks.text(user, content, self.msg_id()))

    async def image(self, user: str, data: bytes) -> None:
        media_id = self.wecom.add_media(data)
        await self.accepted(self.callbacks.image(user, media_id, "https://p.qpic.cn/x",
                                                 self.msg_id()))

    async def location(self, user: str, lat: float, lon: float) -> None:
        await self.accepted(self.callbacks.location(user, lat, lon, "白云区", self.msg_id()))

    async def press(self, user: str, card: SentWeCom, key: str) -> str:
        """Click the button `key` of `card`; returns the click's response code."""
        assert key in card.button_keys and card.task_id is not None
        code = self.wecom.issue_response_code(card.task_id)
        await self.accepted(self.callbacks.template_card_event(
            user, key, card.task_id, response_code=code))
        return code

    def mark(self) -> int:
        return len(self.wecom.sent)

    async def answer(self, user: str, since: int,
                     also: Callable[[SentWeCom], bool] = lambda s: True) -> SentWeCom:
        """The first message to `user` after `since` that satisfies `also`."""
        def found() -> SentWeCom | None:
            return next((s for s in self.wecom.sent[since:]
                         if user in s.recipients and also(s)), None)

        await self.wecom.wait_for_async(lambda: found() is not None)
        message = found()
        assert message is not None
        return message

    async def card_with(self, user: str, since: int, pattern: str) -> tuple[SentWeCom, str]:
        """The card to `user` (after `since`) with a button whose key ends
        with `pattern` or whose text is `pattern`; and that key."""
        def key_of(s: SentWeCom) -> str | None:
            buttons = s.card.get("button_list", []) if s.card else []
            return next((str(b["key"]) for b in buttons
                         if str(b["key"]).endswith(pattern) or b["text"] == pattern), None)

        card = await self.answer(user, since, lambda s: key_of(s) is not None)
        key = key_of(card)
        assert key is not None
        return card, key


@asynccontextmanager
async def running(ctx: Context, wecom: FakeWeCom, port: int, clock: Clock | None = None,
                  telegram: FakeTelegram | None = None) -> AsyncIterator[Harness]:
    """youhu as `youhu run` wires it: the WeCom channel (and Telegram), the
    deliverer, the scheduler, and the ASGI app on uvicorn."""
    clock = clock or Clock()
    scheduler: Scheduler | None = None

    def kick() -> None:
        assert scheduler is not None
        scheduler.kick()

    channel = WeComChannel(ctx, wecom_settings(wecom), clock, on_queued=kick)
    channels: list[Channel] = [channel]
    tg_channel: TelegramChannel | None = None
    if telegram is not None:
        tg_channel = TelegramChannel(ctx, TelegramSettings(
            token=SecretStr(telegram.token), base_url=telegram.base_url,
            base_file_url=telegram.base_file_url), clock, on_queued=kick)
        channels.append(tg_channel)
    deliverer = Deliverer(ctx, channels, clock)
    scheduler = Scheduler(ctx, deliverer, clock, sweep_seconds=3600, deliver_seconds=0.2)
    server = Server(uvicorn.Config(build_app([channel.route()]), host="127.0.0.1", port=port,
                                   log_level="warning", access_log=False, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    await channel.start()
    if tg_channel is not None:
        await tg_channel.start()
    scheduler.start()
    callbacks = WeComCallbacks(TOKEN, AES_KEY, wecom.corp_id, wecom.agent_id)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            yield Harness(channel, wecom, callbacks, f"http://127.0.0.1:{port}/wecom/callback",
                          http, clock, deliverer, scheduler)
    finally:
        await scheduler.stop()
        if tg_channel is not None:
            await tg_channel.stop()
        await channel.stop()
        server.should_exit = True
        await serving


def words(message: SentWeCom) -> str:
    """What a member reads in a message: a text's content, a card's titles."""
    if message.card is not None:
        card = message.card
        return "\n".join([str(card.get("main_title", {}).get("title", "")),
                          str(card.get("sub_title_text", ""))])
    return message.content or ""



def member_id(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        return session.exec(select(Member).where(Member.code == code)).one().id or 0


def pending(ctx: Context) -> list[OutboxMessage]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.status == "pending")))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


# --- the whole call ----------------------------------------------------------------------


def test_a_call_from_invite_to_rating_over_wecom(district: Context, wecom: FakeWeCom,
                                                 unused_port: int) -> None:
    ctx = district
    code = create_invite(ctx, "li-ming", None, datetime.now(UTC)).code

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            mark = h.mark()
            await h.text(CADRE, f"/start {code}")
            welcome = await h.answer(CADRE, mark)
            assert welcome.msgtype == "text" and "李明" in (welcome.content or "")

            # /call, then what happened: the items it suggests come as a
            # template card; 其他事项 leads to the domains; press 重点工作.
            mark = h.mark()
            await h.text(CADRE, "/call")
            await h.answer(CADRE, mark)
            mark = h.mark()
            await h.text(CADRE, "村口排水管堵塞，雨后积水")
            suggested, other = await h.card_with(CADRE, mark, ":other")
            assert suggested.card is not None
            assert suggested.card["card_type"] == "button_interaction"
            assert suggested.card["button_list"][0]["text"] == "市政排水管网堵塞"
            mark = h.mark()
            await h.press(CADRE, suggested, other)
            domains, key_work = await h.card_with(CADRE, mark, "重点工作")
            await h.wecom.wait_for_async(lambda: len(h.wecom.card_updates) == 1)
            mark = h.mark()
            await h.press(CADRE, domains, key_work)
            # Eight items, "not sure" and cancel: ten buttons on two cards.
            items, drain = await h.card_with(CADRE, mark, "市政排水管网堵塞")
            await h.wecom.wait_for_async(
                lambda: len([s for s in h.wecom.sent[mark:] if s.card]) == 2)
            pages = [s for s in h.wecom.sent[mark:] if s.card]
            assert [len(p.button_keys) for p in pages] == [CARD_BUTTONS, 10 - CARD_BUTTONS]
            assert pages[0].card and pages[0].card["main_title"]["title"].endswith("(1/2)")
            # The domain card now says what was chosen.
            await h.wecom.wait_for_async(lambda: len(h.wecom.card_updates) == 2)
            assert h.wecom.card_updates[0].replace_name == "✓ 其他事项"
            assert h.wecom.card_updates[1].replace_name == "✓ 重点工作"
            assert h.wecom.card_updates[1].userids == [CADRE]

            mark = h.mark()
            await h.press(CADRE, items, drain)
            await h.answer(CADRE, mark)  # photos?
            mark = h.mark()
            await h.image(CADRE, PNG)
            await h.answer(CADRE, mark)
            mark = h.mark()
            await h.image(CADRE, JPEG)
            await h.answer(CADRE, mark)
            mark = h.mark()
            await h.location(CADRE, 23.392, 113.41)
            summary, send_it = await h.card_with(CADRE, mark, ":ok")
            assert summary.card and "2" in summary.card.get("sub_title_text", "")
            mark = h.mark()
            await h.press(CADRE, summary, send_it)
            raised = await h.answer(CADRE, mark)
            call = the_call(ctx)
            assert call.number in words(raised)
            assert (call.latitude, call.longitude) == (23.392, 113.41)
            with Session(ctx.engine) as session:
                photos = session.exec(select(Attachment).where(Attachment.call_id == call.id))
                assert sorted(a.size for a in photos) == sorted([len(PNG), len(JPEG)])

            # The liaison's alert: both photos uploaded and sent as images,
            # the call in full as text, then a card with the department's buttons.
            alert, ack = await h.card_with(LIAISON, 0, f"c:ack:{call.id}")
            images = [s for s in h.wecom.sent_to(LIAISON) if s.msgtype == "image"]
            uploaded = {m.media_id: m.data for m in h.wecom.uploads}
            assert sorted(uploaded[s.media_id or ""] for s in images) == sorted([PNG, JPEG])
            texts = [s.content or "" for s in h.wecom.sent_to(LIAISON) if s.msgtype == "text"]
            assert any(call.number in t and "村口排水管堵塞" in t for t in texts)
            assert alert.task_id and alert.task_id.startswith(f"yh{call.id}-")

            # Acknowledge from the card: the call moves, the card says so.
            mark, updates = h.mark(), len(h.wecom.card_updates)
            code_ack = await h.press(LIAISON, alert, ack)
            await h.answer(LIAISON, mark)
            await until(lambda: the_call(ctx).status is CallStatus.ACKNOWLEDGED)
            await h.wecom.wait_for_async(lambda: len(h.wecom.card_updates) > updates)
            update = h.wecom.card_updates[-1]
            assert update.response_code == code_ack and update.userids == [LIAISON]
            assert call.number in (update.replace_name or "")
            # The cadre hears of it.
            await h.answer(CADRE, mark, lambda s: call.number in words(s))

            # Respond: the card of the next step, then the note typed.
            progress, respond = await h.card_with(LIAISON, mark, f"c:rsp:{call.id}")
            mark = h.mark()
            await h.press(LIAISON, progress, respond)
            await h.answer(LIAISON, mark)
            mark = h.mark()
            await h.text(LIAISON, "已派疏通班组")
            await h.answer(LIAISON, mark)
            await until(lambda: the_call(ctx).status is CallStatus.IN_PROGRESS)

            # Resolve with an evidence photo.
            working, resolve = await h.card_with(LIAISON, 0, f"c:res:{call.id}")
            mark = h.mark()
            await h.press(LIAISON, working, resolve)
            ask, done = await h.card_with(LIAISON, mark, ":done")
            mark = h.mark()
            await h.image(LIAISON, JPEG2)
            await h.answer(LIAISON, mark)
            ask, done = await h.card_with(LIAISON, mark, ":done")
            mark = h.mark()
            await h.press(LIAISON, ask, done)
            await h.answer(LIAISON, mark)
            await until(lambda: the_call(ctx).status is CallStatus.RESOLVED)

            # The cadre: the after photo, confirm, rate, skip the comment.
            resolved, confirm = await h.card_with(CADRE, mark, f"c:cfm:{call.id}")
            after = [h.wecom.media[s.media_id or ""].data for s in h.wecom.sent[mark:]
                     if CADRE in s.recipients and s.msgtype == "image"]
            assert sorted(after, key=len) == sorted([PNG, JPEG, JPEG2], key=len)  # before, after
            # Each photo was uploaded once, however many members it was sent to.
            assert len(h.wecom.uploads) == 3
            mark = h.mark()
            await h.press(CADRE, resolved, confirm)
            levels, satisfied = await h.card_with(CADRE, mark, ":r100")
            assert levels.card and len(levels.button_keys) == 4  # three levels and cancel
            mark = h.mark()
            await h.press(CADRE, levels, satisfied)
            comment, skip = await h.card_with(CADRE, mark, ":skip")
            mark = h.mark()
            await h.press(CADRE, comment, skip)
            await h.answer(CADRE, mark)
            await h.answer(LIAISON, mark)  # the liaison hears of the rating
            await until(lambda: not pending(ctx))

    run(scenario)
    call = the_call(ctx)
    assert call.status is CallStatus.CLOSED
    with Session(ctx.engine) as session:
        rating = session.exec(select(Rating).where(Rating.call_id == call.id)).one()
        notices = session.exec(select(OutboxMessage).where(OutboxMessage.call_id == call.id))
        reached = {m.member_id for m in notices if m.status.value == "delivered"}
    assert rating.score == 100
    assert reached == {member_id(ctx, "li-ming"), member_id(ctx, "he-wenbin")}
    # Every click was answered on its card, none refused by WeCom.
    assert not [c for c in wecom.calls if c.errcode not in (0, None)]


def test_a_member_on_both_channels(district: Context, wecom: FakeWeCom,
                                   unused_port: int) -> None:
    ctx = district
    call = raise_call(ctx, member_id(ctx, "huang-jianguo"), datetime.now(UTC),
                      "桥下排水口堵塞", item_code="drainage-blockage", photos=[Photo(PNG)])

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, wecom, unused_port, telegram=tg) as h:
            # The alert reaches 何文斌 on both channels.
            alert, ack = await h.card_with(LIAISON, 0, f"c:ack:{call.id}")
            on_telegram = await tg.wait_for_async(
                lambda m: m.chat_id == LIAISON_TG and any(
                    b.get("callback_data") == f"c:ack:{call.id}" for b in m.buttons))
            assert call.number in (on_telegram.caption or on_telegram.text or "")
            # He acknowledges on Telegram…
            mark = len(tg.sent)
            tg.user_presses(LIAISON_TG, on_telegram.message_id or 0, f"c:ack:{call.id}")
            await tg.wait_for_async(lambda m: m.chat_id == LIAISON_TG
                                    and m.method == "sendMessage", since=mark)
            await until(lambda: the_call(ctx).status is CallStatus.ACKNOWLEDGED)
            # …and a later press of the WeCom card is answered "already", changing nothing.
            mark = h.mark()
            await h.press(LIAISON, alert, ack)
            already = await h.answer(LIAISON, mark)
            assert "已经签收" in words(already)
            await h.wecom.wait_for_async(lambda: bool(h.wecom.card_updates))
            assert "已经签收" in (h.wecom.card_updates[-1].replace_name or "")
            # The caller, on WeCom only, hears of the acknowledgement once.
            await h.answer(CALLER, 0, lambda s: call.number in words(s))
            await until(lambda: not pending(ctx))

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
    with Session(ctx.engine) as session:
        alert = session.exec(select(OutboxMessage).where(
            OutboxMessage.call_id == call.id,
            OutboxMessage.member_id == member_id(ctx, "he-wenbin"),
            OutboxMessage.template == "call_alert")).one()
        copies = session.exec(select(Delivery).where(Delivery.message_id == alert.id))
        assert sorted(d.channel for d in copies) == ["telegram", "wecom"]


# --- the callback endpoint ----------------------------------------------------------------


def test_url_verification(district: Context, wecom: FakeWeCom, unused_port: int) -> None:
    async def scenario() -> None:
        async with running(district, wecom, unused_port) as h:
            params, plain = h.callbacks.verify_url()
            good = await h.http.get(h.url, params=params)
            assert (good.status_code, good.text) == (200, plain)
            assert good.headers["content-type"].startswith("text/plain")
            wrong, _ = h.callbacks.verify_url_wrong_signature()
            assert (await h.http.get(h.url, params=wrong)).status_code == 403
            no_echo = {k: v for k, v in params.items() if k != "echostr"}
            assert (await h.http.get(h.url, params=no_echo)).status_code == 400
            assert (await h.http.get(h.url)).status_code == 400
            garbage = {**params, "echostr": "!!!"}  # the signature covers echostr
            assert (await h.http.get(h.url, params=garbage)).status_code == 403

    run(scenario)


def test_refused_callbacks_store_nothing_and_crash_nothing(
        district: Context, wecom: FakeWeCom, unused_port: int) -> None:
    ctx = district

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            good = h.callbacks.text(CALLER, "/call", h.msg_id())
            tampered = await h.post(h.callbacks.tampered(good))
            assert tampered.status_code == 403
            other_app = WeComCallbacks(TOKEN, random_aes_key(), wecom.corp_id, wecom.agent_id)
            wrong_key = await h.post(other_app.text(CALLER, "/call", h.msg_id()))
            # Signed with our token but encrypted with another key: it decrypts to
            # garbage (400) or, by chance, to something naming another corp (403).
            assert wrong_key.status_code in (400, 403)
            other_corp = WeComCallbacks(TOKEN, AES_KEY, "wwsomeoneelse", wecom.agent_id)
            assert (await h.post(other_corp.text(CALLER, "/call", h.msg_id()))).status_code \
                == 403
            not_xml = await h.http.post(h.url, params=good.params, content=b"{not xml")
            no_encrypt = await h.http.post(h.url, params=good.params, content=b"<xml></xml>")
            empty = await h.http.post(h.url, params=good.params, content=b"")
            inner_garbage = await h.post(h.callbacks.encrypt("<xml><MsgType>text"))
            inner_no_type = await h.post(h.callbacks.encrypt("<xml><Content>x</Content></xml>"))
            assert [r.status_code for r in (not_xml, no_encrypt, empty, inner_garbage,
                                            inner_no_type)] == [400] * 5
            # Correctly signed, but captured long ago and replayed: refused.
            replayed = h.callbacks.text(CALLER, "/call", h.msg_id(),
                                        timestamp=int(time.time()) - 2 * 3600)
            assert (await h.post(replayed)).status_code == 403
            no_params = await h.http.post(h.url, content=good.body)
            assert no_params.status_code == 400
            huge = await h.http.post(h.url, params=good.params,
                                     content=b"<xml>" + b"A" * (1024 * 1024) + b"</xml>")
            assert huge.status_code == 413
            chunked = await h.http.post(h.url, params=good.params, content=_chunks(200))
            assert chunked.status_code == 413
            await asyncio.sleep(0.2)
            assert h.wecom.sent == []
            with Session(ctx.engine) as session:
                assert session.exec(select(HandledUpdate)).all() == []
                assert session.exec(select(InboxUpdate)).all() == []
            # Still serving: the real callback is answered.
            mark = h.mark()
            await h.accepted(good)
            await h.card_with(CALLER, mark, ":x")  # what happened? (or cancel)

    run(scenario)


async def _chunks(count: int) -> AsyncIterator[bytes]:
    """A body without Content-Length, 4 KB at a time."""
    for _ in range(count):
        yield b"A" * 4096


def test_the_same_message_or_click_twice_is_handled_once(
        district: Context, wecom: FakeWeCom, unused_port: int) -> None:
    ctx = district

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            mark = h.mark()
            await h.text(CALLER, "/call")
            await h.answer(CALLER, mark)
            first = h.callbacks.text(CALLER, "路灯不亮", 4242)  # fits no item: the domains
            # WeCom's retries may overlap the first delivery: one is stored, each
            # gets the same empty 200.
            answers = await asyncio.gather(*(h.post(first) for _ in range(3)))
            assert {(r.status_code, r.text) for r in answers} == {(200, "")}
            domains, key_work = await h.card_with(CALLER, mark, "重点工作")
            # WeCom retries the same MsgId (re-encrypted, new nonce): dropped.
            await h.accepted(h.callbacks.text(CALLER, "路灯不亮", 4242))
            await h.accepted(first)
            # The same click retried (same card, key and time): handled once.
            assert domains.task_id is not None
            code = wecom.issue_response_code(domains.task_id)
            click = h.callbacks.template_card_event(CALLER, key_work, domains.task_id,
                                                    response_code=code, timestamp=int(time.time()))
            await h.accepted(click)
            await h.accepted(click)
            await h.card_with(CALLER, mark, "市政排水管网堵塞")
            # A later message proves the retries were seen and dropped.
            later = h.mark()
            await h.text(CALLER, "/cancel")
            await h.answer(CALLER, later, lambda s: s.msgtype == "text")
            domain_cards = [s for s in h.wecom.sent_to(CALLER)
                            if s.card and key_work in s.button_keys]
            item_cards = [s for s in h.wecom.sent_to(CALLER)
                          if s.card and s.card.get("main_title", {}).get("title", "")
                          .endswith("(1/2)")]
            assert len(domain_cards) == 1 and len(item_cards) == 1
            assert len(h.wecom.card_updates) == 1
            # Stored once each — /call, the text, the click, /cancel — and each handled.
            with Session(ctx.engine) as session:
                stored = session.exec(select(InboxUpdate).where(
                    InboxUpdate.channel == "wecom").order_by(col(InboxUpdate.id))).all()
            assert len(stored) == 4 and {r.status for r in stored} == {InboxStatus.DONE}
            assert stored[1].platform_id == "msg:4242"

    run(scenario)


def test_a_stranger_and_an_oversize_photo_are_answered(district: Context, wecom: FakeWeCom,
                                                       unused_port: int) -> None:
    ctx = district

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            mark = h.mark()
            await h.text(STRANGER, "你好")
            refusal = await h.answer(STRANGER, mark)
            assert refusal.msgtype == "text" and refusal.content
            await h.text(CALLER, "/call")
            await h.answer(CALLER, mark)
            await h.text(CALLER, "路灯不亮")
            domains, not_sure = await h.card_with(CALLER, mark, ":i?")
            await h.press(CALLER, domains, not_sure)
            await h.answer(CALLER, mark, lambda s: ":skip" in str(s.button_keys))
            mark = h.mark()
            big = b"\xff\xd8\xff" + bytes(ctx.rules.max_photo_bytes)
            await h.image(CALLER, big)
            too_large = await h.answer(CALLER, mark)
            # Refused in 黄建国's language, with the question again (one message).
            assert "太大" in (too_large.content or str(too_large.card))
            # Enter-agent events are received and ignored.
            await h.accepted(h.callbacks.enter_agent(CALLER))
            mark = h.mark()
            await h.text(CALLER, "/cancel")
            await h.answer(CALLER, mark)
            assert len(h.wecom.sent) == mark + 1

    run(scenario)


# --- the API: tokens and errors ----------------------------------------------------------


def test_an_expiring_token_is_refreshed_and_the_message_still_sent(
        district: Context, wecom: FakeWeCom, unused_port: int) -> None:
    async def scenario() -> None:
        async with running(district, wecom, unused_port) as h:
            mark = h.mark()
            await h.text(CALLER, "/help")
            await h.answer(CALLER, mark)
            assert wecom.token_requests == 1
            wecom.expire_tokens()
            mark = h.mark()
            await h.text(CALLER, "/mine")
            await h.answer(CALLER, mark)
            assert wecom.token_requests == 2
            assert [c.errcode for c in wecom.calls if c.path.endswith("message/send")
                    ][-2:] == [42001, 0]

    run(scenario)


def test_api_errors_are_retried_through_the_outbox(district: Context, wecom: FakeWeCom,
                                                   unused_port: int) -> None:
    ctx = district
    liaison = member_id(ctx, "he-wenbin")
    with Session(ctx.engine) as session:
        for n in range(3):
            enqueue(session, f"t:{n}", liaison, "undeliverable", datetime.now(UTC),
                    member=f"m{n}", about="nudge", reason="test")
        session.commit()
    clock = Clock()

    async def scenario() -> None:
        wecom.fail_next("message/send", errcode=-1)
        wecom.fail_next("message/send", http_status=502)
        wecom.fail_next("message/send", errcode=45009)
        async with running(ctx, wecom, unused_port, clock=clock) as h:
            await until(lambda: all(m.attempts == 1 and m.next_attempt_at is not None
                                    for m in pending(ctx)))
            assert h.wecom.sent == []
            waits = sorted((m.next_attempt_at.replace(tzinfo=UTC) - clock()).total_seconds()
                           for m in pending(ctx) if m.next_attempt_at is not None)
            assert waits[-1] > 50  # 45009: WeCom's per-minute limit is waited out
            # Rather than sleeping for the backoff, move the clock past it.
            clock.advance(61)
            await h.deliverer.run_once()
            await h.wecom.wait_for_async(lambda: len(h.wecom.sent_to(LIAISON)) == 3)
            await until(lambda: not pending(ctx))

    run(scenario)
    texts = [s.content for s in wecom.sent_to(LIAISON)]
    assert len(texts) == 3 and len(set(texts)) == 3  # each once, none lost


def test_an_answer_in_a_conversation_survives_a_busy_api(district: Context, wecom: FakeWeCom,
                                                         unused_port: int) -> None:
    async def scenario() -> None:
        async with running(district, wecom, unused_port) as h:
            wecom.fail_next("message/send", errcode=-1)
            mark = h.mark()
            await h.text(CALLER, "/help")
            await h.answer(CALLER, mark)
            wecom.fail_next("media/get", http_status=500)
            mark = h.mark()
            await h.image(STRANGER, PNG)
            await h.answer(STRANGER, mark)
            assert [c.http_status for c in wecom.calls if c.path.endswith("media/get")] == [
                500, 200]
            assert [c.errcode for c in wecom.calls if c.path.endswith("message/send")][:2] == [
                -1, 0]

    run(scenario)


def test_concurrent_senders_fetch_one_token(wecom: FakeWeCom) -> None:
    async def scenario() -> None:
        client = WeComClient(wecom_settings(wecom))
        try:
            await asyncio.gather(*(client.send_text(CALLER, f"消息 {n}") for n in range(20)))
            assert wecom.token_requests == 1 and len(wecom.sent) == 20
            media_id = await client.upload_image(PNG, "image/png", "a.png")
            assert wecom.media[media_id].data == PNG
            assert await client.download_media(media_id, 1024) == PNG
            assert await client.download_media(media_id, 10) == bytes(11)  # over the limit
            with pytest.raises(WeComError) as refused:
                await client.send_image(CALLER, "no-such-media")
            assert refused.value.permanent and refused.value.errcode == 40007
            wecom.fail_next("message/send", http_status=503)
            with pytest.raises(WeComError) as busy:
                await client.send_text(CALLER, "x")
            assert not busy.value.permanent
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_a_wrong_secret_is_a_temporary_error(wecom: FakeWeCom) -> None:
    async def scenario() -> None:
        settings = wecom_settings(wecom).model_copy(update={"secret": SecretStr("wrong")})
        client = WeComClient(settings)
        try:
            with pytest.raises(WeComError) as error:
                await client.send_text(CALLER, "x")
            # Messages wait for an admin to fix the secret instead of being dropped.
            assert not error.value.permanent and error.value.errcode == 40001
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_an_unreachable_api_is_a_temporary_error(unused_port: int, wecom: FakeWeCom) -> None:
    async def scenario() -> None:
        settings = wecom_settings(wecom).model_copy(
            update={"api_base": f"http://127.0.0.1:{unused_port}"})
        client = WeComClient(settings, timeout=1)
        try:
            with pytest.raises(WeComError) as error:
                await client.send_text(CALLER, "x")
            assert not error.value.permanent
        finally:
            await client.aclose()

    asyncio.run(scenario())


# --- rendering --------------------------------------------------------------------------


def test_long_text_is_split_at_2048_bytes_on_character_boundaries() -> None:
    text = "\n".join(f"第{i}行：" + "很长的内容" * 40 for i in range(20))
    pieces = split_text(text)
    assert len(pieces) > 1 and all(len(p.encode()) <= TEXT_LIMIT for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    one_line = "诉" * 1000  # 3,000 bytes, no line end
    assert split_text(one_line) == ["诉" * 682, "诉" * 318]


def test_cards_hold_six_buttons_and_the_text_fits_or_goes_first() -> None:
    buttons = [Button(f"选项{n}", f"f:abcdef:v{n}") for n in range(8)]
    cards, too_long = template_cards("请选择\n说明", buttons, 12)
    assert not too_long and [len(c["button_list"]) for c in cards] == [6, 2]
    assert cards[0]["main_title"]["title"] == "请选择 (1/2)"
    assert cards[0]["sub_title_text"] == "说明"
    assert cards[1]["main_title"]["title"] == "请选择 (2/2)" and "sub_title_text" not in cards[1]
    assert all(c["task_id"].startswith("yh12-") for c in cards)
    assert len({c["task_id"] for c in cards}) == 2
    long_first_line = "Raise a call. Which domain is it? Choose one of the buttons below."
    cards, too_long = template_cards(long_first_line, buttons[:2], None)
    assert not too_long and cards[0]["main_title"]["title"] == long_first_line[:25] + "…"
    assert cards[0]["sub_title_text"] == long_first_line
    cards, too_long = template_cards("标题\n" + "长" * 300, buttons[:1], None)
    assert too_long and len(cards[0]["sub_title_text"]) == 112


# --- settings and youhu run ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["short", "a" * 42 + "!", "b" * 44])
def test_a_bad_encoding_aes_key_stops_start_up(key: str) -> None:
    with pytest.raises(SettingsError, match="encoding_aes_key"):
        load_settings(wecom={"encoding_aes_key": key})


def test_youhu_run_with_only_wecom(district: Context, db_url: str, wecom: FakeWeCom,
                                   unused_port: int, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from bot.runner import run as youhu_run

    settings = Settings(
        database=DatabaseSettings(url=db_url), media=MediaSettings(dir=tmp_path / "media"),
        http=HttpSettings(host="127.0.0.1", port=unused_port),
        scheduler=SchedulerSettings(sweep_seconds=3600, deliver_seconds=0.2),
        wecom=wecom_settings(wecom))
    assert settings.telegram.token is None
    callbacks = WeComCallbacks(TOKEN, AES_KEY, wecom.corp_id, wecom.agent_id)

    async def scenario() -> int:
        running_youhu = asyncio.create_task(youhu_run(settings))
        await wecom.wait_for_async(lambda: wecom.token_requests == 1)  # started
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{unused_port}/healthz")
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.02)
            callback = callbacks.text(CALLER, "/help", 1)
            answer = await http.post(f"http://127.0.0.1:{unused_port}/wecom/callback",
                                     params=callback.params, content=callback.body)
            assert answer.status_code == 200
        await wecom.wait_for_async(lambda: bool(wecom.sent_to(CALLER)))
        os.kill(os.getpid(), signal.SIGTERM)
        return await running_youhu

    assert asyncio.run(scenario()) == 0
    assert "wecom" in capsys.readouterr().out


def test_youhu_run_refuses_a_half_configured_wecom(district: Context, db_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from bot.runner import run as youhu_run

    settings = Settings(database=DatabaseSettings(url=db_url),
                        wecom=WeComSettings(corp_id="wwx", agent_id=1))
    assert asyncio.run(youhu_run(settings)) == 2
    out = capsys.readouterr().out
    assert "wecom.secret" in out and "wecom.encoding_aes_key" in out


def test_a_clicked_card_shows_its_label_after_a_restart(district: Context, wecom: FakeWeCom,
                                                        unused_port: int) -> None:
    """The card was sent by one process; the click reaches another (a restart
    in between): the card still says which button was pressed."""
    ctx = district
    code = create_invite(ctx, "li-ming", None, datetime.now(UTC)).code

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            await h.text(CADRE, f"/start {code}")
            mark = h.mark()
            await h.text(CADRE, "/call")
            await h.answer(CADRE, mark)
            await h.text(CADRE, "路灯不亮")  # fits no item: the domains
            domains, key_work = await h.card_with(CADRE, mark, "重点工作")
        async with running(ctx, wecom, unused_port) as h:
            await h.press(CADRE, domains, key_work)
            await h.wecom.wait_for_async(lambda: len(h.wecom.card_updates) == 1)
            assert h.wecom.card_updates[0].replace_name == "✓ 重点工作"

    asyncio.run(scenario())


def test_a_call_with_a_photo_and_a_location_takes_six_inputs_on_wecom(
        district: Context, wecom: FakeWeCom, unused_port: int) -> None:
    """The natural path, counted: /call, what happened, the suggested item,
    the photo, the location (sent from WeCom's own menu), send."""
    ctx = district

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            inputs = 0
            mark = h.mark()
            await h.text(CALLER, "/call")                                     # 1
            inputs += 1
            await h.answer(CALLER, mark)
            mark = h.mark()
            await h.text(CALLER, "村口排水管堵塞，雨后积水")                       # 2
            inputs += 1
            items, drain = await h.card_with(CALLER, mark, "市政排水管网堵塞")
            mark = h.mark()
            await h.press(CALLER, items, drain)                               # 3
            inputs += 1
            await h.answer(CALLER, mark)  # a photo or the location?
            mark = h.mark()
            await h.image(CALLER, JPEG)                                       # 4
            inputs += 1
            await h.card_with(CALLER, mark, ":ok")  # the summary already
            mark = h.mark()
            await h.location(CALLER, 23.392, 113.41)                          # 5
            inputs += 1
            summary, send_it = await h.card_with(CALLER, mark, ":ok")
            mark = h.mark()
            await h.press(CALLER, summary, send_it)                           # 6
            inputs += 1
            await h.answer(CALLER, mark)
            call = the_call(ctx)
            assert (call.text, call.latitude, call.longitude) == (
                "村口排水管堵塞，雨后积水", 23.392, 113.41)
            with Session(ctx.engine) as session:
                item = session.get(CatalogItem, call.item_id)
                photos = session.exec(select(Attachment).where(Attachment.call_id == call.id))
                assert [a.size for a in photos] == [len(JPEG)]
            assert item is not None and item.code == "drainage-blockage"
            assert inputs <= 6

    run(scenario)

"""Telegram as its users expect it, through the fake Bot API: a call with a
photo and a location in six inputs (/call, what happened, the suggested
item, the photo, the one-tap location key, send), pressed
buttons retired (the message says what was done, the pop-up says nothing
twice), a long text the app split in two joined back into one."""

from __future__ import annotations

import asyncio

from tests.conftest import JPEG, PNG
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.test_telegram import (
    LIAISON,
    district,  # noqa: F401  (a fixture)
    has_button,
    reply_to,
    running,
    the_call,
    until,
)
from workflows.context import Context

CADRE = 5001  # 李明, bound here as an invite would bind him


def bound(ctx: Context) -> None:
    """李明 gets a Telegram account (as an invite would bind it)."""
    from sqlmodel import Session, select

    from models import Member
    from workflows import accounts

    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == "li-ming")).one()
        accounts.bind(session, member.id or 0, "telegram", CADRE)
        session.commit()


def item_code(ctx: Context, item_id: int | None) -> str:
    from sqlmodel import Session

    from models import CatalogItem

    with Session(ctx.engine) as session:
        item = session.get(CatalogItem, item_id)
        return item.code if item else ""


def photo_sizes(ctx: Context, call_id: int | None) -> list[int]:
    from sqlmodel import Session, select

    from models import Attachment

    with Session(ctx.engine) as session:
        return sorted(a.size for a in session.exec(
            select(Attachment).where(Attachment.call_id == call_id)))


def data_of(message: SentMessage, text: str) -> str:
    return next(str(b["callback_data"]) for b in message.buttons if b["text"] == text)


def test_a_call_with_a_photo_and_a_location_in_six_inputs(district: Context) -> None:  # noqa: F811
    ctx = district
    bound(ctx)

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            inputs = 0
            mark = len(tg.sent)
            tg.user_sends_command(CADRE, "/call")                   # 1
            inputs += 1
            await reply_to(tg, CADRE, mark)
            mark = len(tg.sent)
            tg.user_sends_text(CADRE, "村口排水管堵塞，污水漫到路面")  # 2: what happened
            inputs += 1
            items = await reply_to(tg, CADRE, mark, has_button(r":i\d+$"))
            assert "是以下哪一项" in (items.text or "")
            assert items.buttons[0]["text"] == "市政排水管网堵塞"
            assert "其他事项" in [b["text"] for b in items.buttons]
            mark = len(tg.sent)
            tg.user_presses(CADRE, items.message_id or 0, data_of(items, "市政排水管网堵塞"))  # 3
            inputs += 1
            # The pressed message now says what was chosen, and has no buttons.
            edit = await tg.wait_for_async(
                lambda m: m.method == "editMessageText" and m.message_id == items.message_id,
                since=mark)
            assert (edit.text or "").endswith("✓ 市政排水管网堵塞") and not edit.buttons
            answer = next(m for m in tg.callback_answers() if m.at >= edit.at - 5)
            assert not answer.params.get("text")  # the message says it; no pop-up
            details = await reply_to(tg, CADRE, mark)
            assert "请发送问题照片" in (details.text or "")
            mark = len(tg.sent)
            tg.user_sends_photo(CADRE, JPEG)                        # 4: the summary comes
            inputs += 1
            summary = await reply_to(tg, CADRE, mark)
            # The location key is one tap (a reply keyboard); 发送呼叫 is a key too.
            keys = tg.reply_keyboard(CADRE)
            assert keys is not None and keys["one_time_keyboard"] is True
            assert keys["keyboard"][0][0] == {"text": "📍 发送位置", "request_location": True}
            assert [k["text"] for k in keys["keyboard"][1]] == ["发送呼叫", "取消"]
            assert "照片：1 张" in (summary.text or "")
            mark = len(tg.sent)
            tg.user_sends_location(CADRE, 23.392, 113.41)       # 5: the 📍 key
            inputs += 1
            again = await reply_to(tg, CADRE, mark)
            assert "23.39200, 113.41000" in (again.text or "") and again.buttons
            mark = len(tg.sent)
            tg.user_presses(CADRE, again.message_id or 0, data_of(again, "发送呼叫"))  # 6
            inputs += 1
            raised = await reply_to(tg, CADRE, mark)
            call = the_call(ctx)
            assert call.number in (raised.text or "")
            assert (call.latitude, call.longitude) == (23.392, 113.41)
            assert item_code(ctx, call.item_id) == "drainage-blockage"
            assert photo_sizes(ctx, call.id) == [len(JPEG)]
            assert inputs <= 6
            # The liaison's alert; 签收 on it retires its buttons with what was done.
            alert = await reply_to(tg, LIAISON, 0, has_button(rf"^c:ack:{call.id}$"))
            mark = len(tg.sent)
            tg.user_presses(LIAISON, alert.message_id or 0, f"c:ack:{call.id}")
            done = await reply_to(tg, LIAISON, mark)
            assert "您已签收" in (done.text or "")
            edited = tg.message(alert.message_id or 0)
            assert "reply_markup" not in edited
            assert (edited.get("text") or edited.get("caption", "")).endswith(
                f"您已签收 {call.number}。")
            answers = [m for m in tg.callback_answers() if m.at >= done.at - 5]
            assert answers and all(not a.params.get("text") for a in answers)
            # The caller's next plain message takes the location keyboard away.
            mark = len(tg.sent)
            tg.user_sends_command(CADRE, "/help")
            await reply_to(tg, CADRE, mark)
            assert tg.reply_keyboard(CADRE) is None

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))


def test_a_text_the_app_split_in_two_is_one_description(district: Context) -> None:  # noqa: F811
    ctx = district
    bound(ctx)
    first = "村口排水管堵塞。" * 512           # 4,096 characters: one Telegram message
    second = "污水已经漫到了村委会门口。"

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            mark = len(tg.sent)
            tg.user_sends_photo(CADRE, PNG)
            await reply_to(tg, CADRE, mark)
            mark = len(tg.sent)
            tg.user_sends_text(CADRE, first)      # the app sends the parts back to back
            tg.user_sends_text(CADRE, second)
            summary = await reply_to(tg, CADRE, mark)
            assert "是以下哪一项" in (summary.text or "")
            await asyncio.sleep(1.5)  # nothing else comes: the parts were one text
            later = [m for m in tg.sent[mark:] if m.chat_id == CADRE
                     and m.method.startswith("send")]
            assert len(later) == 1
            mark = len(tg.sent)
            tg.user_presses(CADRE, summary.message_id or 0, data_of(summary, "市政排水管网堵塞"))
            await reply_to(tg, CADRE, mark)
            mark = len(tg.sent)
            tg.user_sends_text(CADRE, "发送呼叫")  # the key of the reply keyboard
            await reply_to(tg, CADRE, mark)
            await until(lambda: the_call(ctx).text == first + second)

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))

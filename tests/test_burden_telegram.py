"""The form-burden watch on Telegram: the real youhu Telegram application
against the fake Bot API server. A department's liaison composes a data
request with buttons and typed answers; the town's cadre gets it with an
Answer button, answers a number and a photo; the liaison gets the answer with
the photo; the out-of-plan flag reaches the command centre, whose Approve
button approves it once."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, col, select

from models import DataRequest, DataRequestTown
from tests.conftest import PNG
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from tests.test_telegram import (
    LIAISON,
    button,
    district,
    has_button,
    reply_to,
    running,
    until,
)
from workflows.context import Context

__all__ = ["district"]  # the fixture, shared with the call tests

CADRE = 700000101  # 张伟 of 钟落潭镇, bound in the org file
DISPATCHER = 700000301  # 郑宇, the command centre


def texts(messages: list[SentMessage]) -> list[str]:
    """What a member reads of each message: its text or its photo's caption."""
    return [(m.text or "") + (m.caption or "") for m in messages]


def latest(ctx: Context) -> DataRequest | None:
    with Session(ctx.engine) as session:
        return session.exec(select(DataRequest).order_by(col(DataRequest.id).desc())).first()


def answered(ctx: Context) -> list[DataRequestTown]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(DataRequestTown).where(
            col(DataRequestTown.answered_at).is_not(None))))


def test_a_data_request_composed_answered_and_approved_on_telegram(district: Context) -> None:
    ctx = district

    async def step(tg: FakeTelegram, user: int, action: str, value: str = "",
                   expect: str | None = None, contains: str = "") -> int:
        """Send text, press a button of the latest reply, or send a photo;
        wait for the answer (with a button matching `expect`, if given)."""
        mark = len(tg.sent)
        if action == "text":
            tg.user_sends_text(user, value)
        elif action == "command":
            tg.user_sends_command(user, value)
        elif action == "photo":
            tg.user_sends_photo(user, PNG)
        wanted = has_button(expect) if expect else lambda m: contains in (m.text or "")
        reply = await reply_to(tg, user, mark, wanted)
        return reply.message_id or 0

    async def press(tg: FakeTelegram, user: int, pattern: str,
                    expect: str | None = None) -> None:
        message = next(m for m in reversed(tg.messages_to(user)) if has_button(pattern)(m))
        mark = len(tg.sent)
        tg.user_presses(user, message.message_id or 0, button(message, pattern))
        await reply_to(tg, user, mark, has_button(expect) if expect else lambda m: True)

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            await step(tg, LIAISON, "command", "/request")
            await step(tg, LIAISON, "text", "河道保洁情况统计")
            await step(tg, LIAISON, "text", "保洁人数", expect=r":knumber$")
            await press(tg, LIAISON, r":knumber$", expect=r":done$")
            await step(tg, LIAISON, "text", "现场照片", expect=r":kphoto$")
            await press(tg, LIAISON, r":kphoto$", expect=r":done$")
            await press(tg, LIAISON, r":done$", expect=r":all$")
            await step(tg, LIAISON, "text", "钟落潭镇", expect=r":d2$")
            await press(tg, LIAISON, r":d2$", expect=r":none$")
            await press(tg, LIAISON, r":none$", expect=r":ok$")
            await press(tg, LIAISON, r":ok$")
            await until(lambda: latest(ctx) is not None)
            request = latest(ctx)
            assert request is not None and request.out_of_plan
            sent = tg.messages_to(LIAISON)[-1]
            assert request.number in (sent.text or "") and "1个镇街" in (sent.text or "")

            # The town's cadre: the request with an Answer button, a number, a photo.
            notice = await reply_to(tg, CADRE, 0, has_button(rf"^d:ans:{request.id}$"))
            assert "河道保洁情况统计" in (notice.text or "")
            await press(tg, CADRE, rf"^d:ans:{request.id}$")
            await step(tg, CADRE, "text", "十二", contains="请填写数字")  # asked again
            await step(tg, CADRE, "text", "12", contains="现场照片")
            await step(tg, CADRE, "photo", expect=r":ok$")
            await press(tg, CADRE, r":ok$")
            await until(lambda: len(answered(ctx)) == 1)
            # The liaison gets the answer with the photo.
            await until(lambda: any(PNG in m.photos for m in tg.messages_to(LIAISON)))
            await until(lambda: any("保洁人数: 12" in s and "钟落潭镇" in s
                                    for s in texts(tg.messages_to(LIAISON))))

            # The command centre approves the out-of-plan request, once.
            flag = await reply_to(tg, DISPATCHER, 0, has_button(rf"^d:apr:{request.id}$"))
            assert "计划外" in (flag.text or "")
            await press(tg, DISPATCHER, rf"^d:apr:{request.id}$")
            await until(lambda: (r := latest(ctx)) is not None
                        and r.plan_approved_at is not None)
            mark = len(tg.sent)
            tg.user_presses(DISPATCHER, flag.message_id or 0, f"d:apr:{request.id}")
            again = await reply_to(tg, DISPATCHER, mark)
            assert "未做任何更改" in (again.text or "")
            await until(lambda: any("批准" in (m.text or "") for m in tg.messages_to(LIAISON)
                                    if request.number in (m.text or "")))

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
    [answer] = answered(ctx)
    assert answer.values["保洁人数"] == 12 and len(answer.values["现场照片"]) == 64

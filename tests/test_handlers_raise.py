"""Raising a call through the conversation, checked in the database after
each step: in all three languages, in six inputs (description first, the
item suggested from it), "something else" and "not sure", bad input at
every step, commands in the middle, and a restart in the middle."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import Session, col, select

from handlers import dialogs
from handlers.conversations import Conversations
from models import (
    Attachment,
    Call,
    CallStatus,
    CatalogItem,
    Dialog,
    Locale,
    MediaStore,
    make_engine,
)
from tests.conftest import JPEG, PNG, Org
from tests.test_handlers_chat import Chat, count, set_locale
from workflows.context import Context


def item_id(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        return session.exec(select(CatalogItem.id).where(CatalogItem.code == code)).one() or 0


def dialog(ctx: Context, chat: str = "li") -> Dialog | None:
    with Session(ctx.engine) as session:
        return session.get(Dialog, ("console", chat))


def calls(ctx: Context) -> list[Call]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(Call).order_by(col(Call.id))))


WORDS = {
    Locale.ZH_HANS: ("发生了什么", "是以下哪一项", "跳过", "发送呼叫", "已发出", "签收时限",
                     "2025年10月9日 18:00"),
    # zh_Hant follows its locale's 12-hour clock.
    Locale.ZH_HANT: ("發生了什麼", "是以下哪一項", "跳過", "發送呼叫", "已發出", "簽收時限",
                     "2025年10月9日 下午6:00"),
    Locale.EN: ("What happened", "Which of these", "Skip", "Send the call", "is raised",
                "Acknowledge by", "Oct 9, 2025, 6:00\u202fPM"),
}


@pytest.mark.parametrize("locale", list(Locale))
def test_raise_a_call_in_each_language(ctx: Context, org: Org, locale: Locale) -> None:
    set_locale(ctx, "li", locale)
    what_happened, which, _skip, send, raised, ack_by, due = WORDS[locale]
    chat = Chat(ctx, "li")
    chat.send("/call")
    assert what_happened in chat.text
    assert dialog(ctx) is not None and dialog(ctx).step == "describe"  # type: ignore[union-attr]
    chat.send("村口排水管堵塞，污水漫到路面")
    assert dialog(ctx).data["text"] == "村口排水管堵塞，污水漫到路面"  # type: ignore[union-attr]
    assert which in chat.text and chat.labels[0] == "排水"
    chat.press("排水")
    assert dialog(ctx).data["item"] is not None  # type: ignore[union-attr]
    chat.send("良田村村口")  # no photo: an address instead
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    assert "良田村村口" in chat.text
    assert calls(ctx) == []
    chat.press(send)
    assert raised in chat.text and ack_by in chat.text
    # Raised 16:50 on 30 September: one working day is the close of 9 October.
    assert due in chat.text
    [call] = calls(ctx)
    assert call.status is CallStatus.DISPATCHED and call.location_text == "良田村村口"
    assert call.number in chat.text
    assert dialog(ctx) is None


def test_a_call_with_a_photo_and_a_location_takes_six_inputs(ctx: Context, org: Org) -> None:
    """The natural path: /call, what happened, the suggested item, the
    photo (the summary comes), the location, send."""
    chat = Chat(ctx, "li")
    inputs = 0

    def step(do: Callable[[], object]) -> None:
        nonlocal inputs
        do()
        inputs += 1

    step(lambda: chat.send("/call"))
    step(lambda: chat.send("村口排水管堵塞，污水漫到路面"))
    assert chat.labels[0] == "排水" and "其他事项" in chat.labels
    step(lambda: chat.press("排水"))
    assert dialog(ctx).step == "details"  # type: ignore[union-attr]
    assert chat.replies[-1].share_location == "📍 发送位置"
    step(lambda: chat.photo(JPEG))
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    assert "仍可继续发送照片或共享位置" in chat.text
    assert chat.replies[-1].share_location == "📍 发送位置"
    step(lambda: chat.location(23.28, 113.27))
    assert "23.28000, 113.27000" in chat.text and chat.replies[-1].share_location is None
    step(lambda: chat.press("发送呼叫"))
    assert inputs <= 6
    [call] = calls(ctx)
    assert (call.text, call.latitude, call.longitude) == ("村口排水管堵塞，污水漫到路面",
                                                          23.28, 113.27)
    assert call.item_id == item_id(ctx, "drain")
    with Session(ctx.engine) as session:
        assert len(list(session.exec(select(Attachment)))) == 1


def test_photo_first_takes_five(ctx: Context, org: Org) -> None:
    """The cadre sends the photo before /call: photo, description, item,
    location, send."""
    chat = Chat(ctx, "li")
    chat.photo(JPEG)                                          # 1: starts the call
    assert "要以此发起呼叫" in chat.text and dialog(ctx).step == "describe"  # type: ignore[union-attr]
    assert "请输入问题描述" in chat.text
    chat.send("积水淹到膝盖，村口排水管堵了")                    # 2
    assert dialog(ctx).step == "suggest" and "照片：1 张" in chat.text  # type: ignore[union-attr]
    chat.press("排水")                                        # 3: the summary
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    chat.location(23.28, 113.27)                            # 4
    chat.photo(PNG)  # more photos are taken at the summary too
    assert "照片：2 张" in chat.text
    chat.press("发送呼叫")                                     # 5 (6 with the second photo)
    [call] = calls(ctx)
    assert call.latitude == 23.28 and call.item_id == item_id(ctx, "drain")


def test_the_location_first_is_kept_and_the_summary_needs_no_photo(ctx: Context,
                                                                   org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.location(23.28, 113.27)
    assert "要以此发起呼叫" in chat.text and "位置已收到" in chat.text
    chat.send("/call")  # already raising: the question again
    assert "正在发起" in chat.text and "地点：23.28000, 113.27000" in chat.text
    chat.send("排水沟堵了")
    chat.press("排水")
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    assert chat.replies[-1].share_location is None  # the location is in
    chat.press("发送呼叫")
    [call] = calls(ctx)
    assert (call.latitude, call.item_id) == (23.28, item_id(ctx, "drain"))


def test_something_else_leads_to_the_domains_and_items(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("排水口旁边有人违建")
    assert set(chat.labels[:2]) == {"排水", "违建"}
    chat.photo(PNG)  # a photo at the suggestions is kept; they are asked again
    assert "照片：1 张" in chat.text and dialog(ctx).step == "suggest"  # type: ignore[union-attr]
    chat.press("其他事项")
    assert "请选择领域" in chat.text and dialog(ctx).step == "domain"  # type: ignore[union-attr]
    assert "照片：1 张" in chat.text
    chat.press("应急处置")
    chat.press("内涝")
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    chat.press("发送呼叫")
    [call] = calls(ctx)
    assert call.item_id == item_id(ctx, "flood") and call.text == "排水口旁边有人违建"


def test_a_description_that_fits_no_item_gets_the_domains(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("门口有人吵架")
    assert "请选择领域" in chat.text and dialog(ctx).step == "domain"  # type: ignore[union-attr]
    assert chat.labels[:2] == ["综合执法", "应急处置"]
    chat.press("综合执法")
    assert chat.labels[:2] == ["排水", "违建"]
    chat.press("违建")
    assert dialog(ctx).step == "details"  # type: ignore[union-attr]


def test_a_new_description_at_the_suggestions_replaces_the_first(ctx: Context,
                                                                 org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("村口排水管堵塞")
    assert chat.labels[0] == "排水"
    chat.send("不对，是有人违建")
    assert chat.labels[0] == "违建" and "排水" not in chat.labels
    assert dialog(ctx).data["text"] == "不对，是有人违建"  # type: ignore[union-attr]
    chat.data("f:" + dialog(ctx).data["nonce"] + f":i{item_id(ctx, 'drain')}")  # type: ignore[union-attr]
    assert "无法识别" in chat.text  # no longer offered


def test_a_typed_button_label_is_a_press(ctx: Context, org: Org) -> None:
    """What the keys of Telegram's reply keyboard send: their label as text."""
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("门口有积水")
    chat.send("不确定")
    chat.send("跳过")
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    chat.send("取消")
    assert "已取消" in chat.text and dialog(ctx) is None and calls(ctx) == []


def test_a_description_of_invisible_characters_is_refused(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    for blank in ("\u200b\u200b", "\u3000 \u200d", "\ufeff", "\u2060\u200c"):
        chat.send(blank)
        assert "问题描述为空" in chat.text
        assert dialog(ctx).step == "describe"  # type: ignore[union-attr]
    chat.photo(PNG, caption="\u200b")
    assert "问题描述" in chat.text and "text" not in dialog(ctx).data  # type: ignore[union-attr]


def test_not_sure_goes_to_the_command_centre(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("不知道该找哪个部门")
    chat.press("不确定")
    chat.photo(PNG)
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    chat.photo(JPEG)
    assert "不确定" in chat.text and "照片：2 张" in chat.text
    chat.press("发送呼叫")
    assert "指挥调度中心将派单" in chat.text
    [call] = calls(ctx)
    assert call.status is CallStatus.PENDING_DISPATCH and call.item_id is None


def test_nine_photos_at_most(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("很多照片")
    chat.press("不确定")
    for n in range(9):
        chat.photo(PNG + bytes([n]))  # distinct bytes, still a PNG
    assert dialog(ctx).step == "summary"  # type: ignore[union-attr]
    chat.photo(PNG + b"tenth")
    assert "最多 9 张" in chat.text
    assert len(dialog(ctx).data["photos"]) == 9  # type: ignore[union-attr]


def test_bad_input_at_every_step_leaves_the_call_in_progress_intact(
    ctx: Context, org: Org
) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    before = dialog(ctx).data  # type: ignore[union-attr]
    chat.send("")
    assert "问题描述为空" in chat.text
    chat.send("长" * 9000)
    assert "问题描述太长" in chat.text and "8192" in chat.text
    assert dialog(ctx).data == before and dialog(ctx).step == "describe"  # type: ignore[union-attr]
    chat.data("f:" + dialog(ctx).data["nonce"] + ":d1")  # type: ignore[union-attr]
    assert "之前的问题" in chat.text and dialog(ctx).step == "describe"  # type: ignore[union-attr]
    chat.send("路灯不亮")
    assert dialog(ctx).step == "domain"  # type: ignore[union-attr]
    chat.send("随便打字")
    assert "请点击按钮" in chat.text and dialog(ctx).step == "domain"  # type: ignore[union-attr]
    chat.data("f:" + dialog(ctx).data["nonce"] + ":d999")  # type: ignore[union-attr]
    assert "无法识别" in chat.text and dialog(ctx).step == "domain"  # type: ignore[union-attr]
    chat.press("综合执法")
    chat.data("f:" + dialog(ctx).data["nonce"] + ":i999")  # type: ignore[union-attr]
    assert "无法识别" in chat.text
    chat.press("排水")

    chat.photo(b"%PDF-1.4 not a photo")
    assert "不是照片" in chat.text
    chat.photo(b"\xff\xd8\xff" + b"\0" * (10 * 1024 * 1024))
    assert "照片太大" in chat.text and "10 MB" in chat.text
    assert dialog(ctx).data["photos"] == []  # type: ignore[union-attr]
    chat.data("f:" + dialog(ctx).data["nonce"] + ":ok")  # type: ignore[union-attr]
    assert "之前的问题" in chat.text and calls(ctx) == []

    chat.send("  ")
    assert "地址为空" in chat.text
    chat.send("地" * 600)
    assert "地址太长" in chat.text
    chat.send("/help")
    assert "您可以" in chat.text and "已保留" in chat.text and "请发送问题照片或共享" in chat.text
    chat.send("/call")
    assert "正在发起" in chat.text
    chat.send("/mine")
    assert "还没有发起过呼叫" in chat.text
    assert dialog(ctx).step == "details"  # type: ignore[union-attr]
    assert dialog(ctx).data["text"] == "路灯不亮"  # type: ignore[union-attr]
    chat.press("跳过")
    chat.send("再打字")
    assert "请点击按钮" in chat.text
    chat.press("发送呼叫")
    assert [c.text for c in calls(ctx)] == ["路灯不亮"]


def test_cancel_drops_the_draft_and_its_buttons(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.send("门口有人吵架")
    old = chat.replies
    chat.send("/cancel")
    assert "已取消" in chat.text and dialog(ctx) is None
    chat.press("综合执法", old)
    assert "已结束的对话" in chat.text and dialog(ctx) is None
    chat.send("/cancel")
    assert "没有可取消" in chat.text
    chat.send("/call")
    chat.press("取消")
    assert dialog(ctx) is None and calls(ctx) == []


def test_only_callers_raise(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "water-liaison")
    chat.send("/call")
    assert "只有镇街、村社干部" in chat.text and dialog(ctx, "water-liaison") is None


def test_a_restart_in_the_middle_of_raising_continues(
    ctx: Context, org: Org, db_url: str
) -> None:
    chat = Chat(ctx, "li")
    chat.send("/call")
    chat.photo(PNG, caption="排水井盖缺失")
    assert count(ctx, Call) == 0
    suggested = chat.replies
    assert dialog(ctx).step == "suggest"  # type: ignore[union-attr]

    # A new process: its own engine, its own handler instance, the same database.
    engine = make_engine(db_url)
    try:
        again = Context(engine=engine, media=MediaStore(ctx.media.root))
        chat.conversations = Conversations(again)
        chat.ctx = again
        chat.press("排水", suggested)  # the suggestions were kept with the dialog
        chat.location(23.1, 113.2)
        assert "排水井盖缺失" in chat.text and "照片：1 张" in chat.text
        chat.press("发送呼叫")
    finally:
        engine.dispose()
    [call] = calls(ctx)
    assert call.text == "排水井盖缺失" and call.status is CallStatus.DISPATCHED


def test_a_double_press_on_send_raises_one_call(ctx: Context, org: Org) -> None:
    first, second = Chat(ctx, "li"), Chat(ctx, "li")
    first.send("/call")
    first.send("门口有积水")
    first.press("不确定")
    first.press("跳过")
    summary = first.replies
    # Another process claimed the summary first (its press is being handled).
    assert dialogs.claim_step(ctx, "console", "li", "summary", "sending")
    second.press("发送呼叫", summary)
    assert "正在发送" in second.text and calls(ctx) == []
    dialogs.claim_step(ctx, "console", "li", "sending", "summary")
    first.press("发送呼叫", summary)
    second.press("发送呼叫", summary)
    assert "已结束的对话" in second.text
    assert len(calls(ctx)) == 1

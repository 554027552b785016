"""The caller's side: progress notices, confirming the fix with the before
and after photos side by side, rating with or without a comment, saying it
is not fixed, withdrawing, and /mine."""

from __future__ import annotations

from sqlmodel import Session, select

from models import CallStatus, Event, Rating, RatingLevel
from tests.conftest import JPEG, PNG, T0, Org
from tests.test_handlers_chat import Chat, inbox
from tests.test_handlers_liaison import raised, status
from workflows import calls
from workflows.context import Context
from workflows.photos import Photo


def resolved(ctx: Context, org: Org) -> int:
    cid = raised(ctx, org)
    calls.acknowledge(ctx, cid, org.water_liaison, T0)
    calls.respond(ctx, cid, org.water_liaison, T0, "处理中")
    calls.resolve(ctx, cid, org.water_liaison, T0, "已疏通", [Photo(JPEG)])
    return cid


def test_progress_reaches_the_caller(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    calls.acknowledge(ctx, cid, org.water_liaison, T0)
    calls.respond(ctx, cid, org.water_liaison, T0, "明早到场")
    texts = [r.text for r in inbox(ctx, "li")]
    assert texts[0] == "您的呼叫 BY-2025-000001：部门已签收。"
    assert texts[1].startswith("您的呼叫 BY-2025-000001：部门已响应。") and "明早到场" in texts[1]


def test_confirm_and_rate_with_a_comment(ctx: Context, org: Org) -> None:
    cid = resolved(ctx, org)
    notice = inbox(ctx, "li")[-1]
    assert "请对比处理前后的照片" in notice.text
    assert "处理前：1 张照片 · 处理后：1 张照片" in notice.text
    assert len(notice.photos) == 2  # before and after, one album
    assert [b.label for b in notice.all_buttons] == ["确认已解决", "未解决"]
    chat = Chat(ctx, "li")
    chat.press("确认已解决", [notice])
    assert chat.labels[:3] == ["满意", "基本满意", "不满意"]
    chat.send("很满意")
    assert "请点击按钮" in chat.text and status(ctx, cid) is CallStatus.RESOLVED
    chat.press("基本满意")
    assert "补充一句评价意见" in chat.text
    chat.send("速度可以再快一点")
    assert "已办结归档" in chat.text and status(ctx, cid) is CallStatus.CLOSED
    with Session(ctx.engine) as session:
        rating = session.exec(select(Rating)).one()
    assert (rating.level, rating.score, rating.comment) == (
        RatingLevel.MOSTLY_SATISFIED, 80, "速度可以再快一点")
    chat.press("确认已解决", [notice])
    assert "不可执行" in chat.text
    closed = inbox(ctx, "water-liaison")[-1]
    assert "呼叫方评价：基本满意" in closed.text


def test_rate_without_a_comment_in_english(ctx: Context, org: Org) -> None:
    cid = resolved(ctx, org)
    chat = Chat(ctx, "li")
    chat.send("/lang en")
    chat.data(f"c:cfm:{cid}")
    chat.press("Satisfied")
    chat.press("Skip")
    assert "Thank you" in chat.text
    with Session(ctx.engine) as session:
        assert session.exec(select(Rating)).one().level is RatingLevel.SATISFIED


def test_not_fixed_reopens_the_call(ctx: Context, org: Org) -> None:
    cid = resolved(ctx, org)
    chat = Chat(ctx, "li")
    chat.data(f"c:rej:{cid}")
    assert "还有什么问题" in chat.text
    chat.send("  ")
    assert status(ctx, cid) is CallStatus.RESOLVED
    chat.send("水还是排不出去")
    assert "已重新打开" in chat.text and status(ctx, cid) is CallStatus.IN_PROGRESS
    notice = inbox(ctx, "water-liaison")[-1]
    assert "未解决" in notice.text and "水还是排不出去" in notice.text
    assert [b.label for b in notice.all_buttons] == ["办结", "申请延期"]


def test_someone_else_cannot_confirm(ctx: Context, org: Org) -> None:
    cid = resolved(ctx, org)
    Chat(ctx, "wang").data(f"c:cfm:{cid}")
    assert status(ctx, cid) is CallStatus.RESOLVED


def test_withdraw_before_acknowledgement_and_mine(ctx: Context, org: Org) -> None:
    first = raised(ctx, org)
    second = raised(ctx, org)
    calls.acknowledge(ctx, second, org.water_liaison, T0)
    chat = Chat(ctx, "li")
    chat.send("/mine")
    assert chat.text.startswith("您最近的呼叫")
    assert "BY-2025-000002 · 已签收" in chat.text and "BY-2025-000001 · 已派单，待签收" in chat.text
    assert chat.labels == ["补充信息", "补充信息", "撤回 BY-2025-000001"]
    chat.press("撤回 BY-2025-000001")
    assert "已撤回" in chat.text and status(ctx, first) is CallStatus.WITHDRAWN
    chat.data(f"c:wd:{second}")
    assert "不可执行" in chat.text and status(ctx, second) is CallStatus.ACKNOWLEDGED
    assert "已被呼叫方撤回" in inbox(ctx, "water-liaison")[-1].text
    liaison = Chat(ctx, "water-liaison")
    liaison.send("/mine")  # the department's list: the withdrawn call is gone from it
    assert "本部门未办结的呼叫" in liaison.text and "BY-2025-000001" not in liaison.text
    assert liaison.labels == ["响应", "退回"]
    fresh = Chat(ctx, "wang")
    fresh.send("/mine")
    assert "还没有发起过呼叫" in fresh.text


def test_the_caller_adds_information_to_an_open_call(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    chat = Chat(ctx, "li")
    chat.data(f"c:add:{cid}")
    assert chat.text.startswith("补充 BY-2025-000001")
    chat.send("   ")  # nothing: asked again, nothing stored
    assert "请输入" in chat.text or "文字" in chat.text
    chat.photo(PNG)
    assert "照片：1 张" in chat.text
    chat.press("完成")
    assert "已补充到 BY-2025-000001" in chat.text
    notice = inbox(ctx, "water-liaison")[-1]
    assert "补充了信息" in notice.text and len(notice.photos) == 1
    chat.data(f"c:add:{cid}")
    chat.send("积水已经漫到路面")
    assert "已补充到" in chat.text
    assert "积水已经漫到路面" in inbox(ctx, "water-liaison")[-1].text
    # Someone else's call, and a closed one: refused, nothing changes.
    Chat(ctx, "wang").data(f"c:add:{cid}")
    closed = resolved(ctx, org)
    calls.confirm(ctx, closed, org.caller, T0, RatingLevel.SATISFIED)
    chat.data(f"c:add:{closed}")
    assert "不可执行" in chat.text
    with Session(ctx.engine) as session:
        added = session.exec(select(Event).where(Event.kind == "InfoAdded")).all()
    assert [e.call_id for e in added] == [cid, cid]

"""The command centre's commands — /stats, /overdue, /find, /assign,
/approve, /refuse and the request buttons — and their refusal to others."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from models import Call, CallRequest, CallStatus, RequestStatus
from tests.conftest import T0, Org
from tests.test_handlers_chat import Chat, inbox
from tests.test_handlers_liaison import raised, status
from workflows import calls
from workflows.context import Context


@pytest.mark.parametrize("command", ["/stats", "/overdue", "/find 1", "/assign 1 water",
                                     "/approve 1", "/refuse 1"])
@pytest.mark.parametrize("who", ["li", "water-liaison", "water-head"])
def test_other_roles_are_refused(ctx: Context, org: Org, command: str, who: str) -> None:
    chat = Chat(ctx, who)
    chat.send(command)
    assert chat.text == "该命令仅供指挥调度中心使用。"


def test_supervisors_read_but_do_not_decide(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "supervisor")
    chat.send("/stats 2025-09")
    assert "2025-09 统计" in chat.text
    chat.send("/assign 1 water")
    assert "仅供指挥调度中心" in chat.text


def test_stats_are_formatted_for_the_member(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    calls.acknowledge(ctx, cid, org.water_liaison, T0 + timedelta(hours=2))
    raised(ctx, org)
    chat = Chat(ctx, "dispatcher", now=T0 + timedelta(days=1))
    chat.send("/stats 2025-09")
    assert "发起呼叫 2 件，已响应并办结 0 件" in chat.text
    assert "响应率 50%" in chat.text
    assert "1. water：得分" in chat.text
    # 16:50 → 18:50 on a working day: 1 h 10 min of working hours (the day closes at 18:00).
    assert "平均签收用时（工作小时）：1.2 · 平均办结用时：—" in chat.text
    chat.send("/lang en")
    chat.send("/stats 2025-09")
    assert "Calls raised: 2; answered and closed: 0." in chat.text
    assert "Response rate 50%" in chat.text
    assert "Average working hours to acknowledge: 1.2 · to resolve: —" in chat.text
    chat.send("/stats")  # this month: October in Shanghai
    assert "Figures for 2025-10" in chat.text
    chat.send("/stats September")
    assert "Usage: /stats" in chat.text


def test_overdue_and_find(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    chat = Chat(ctx, "dispatcher")
    chat.send("/overdue")
    assert chat.text == "没有超时的呼叫。"
    chat.now = T0 + timedelta(days=30)
    chat.send("/overdue")
    assert "超时的呼叫" in chat.text and "BY-2025-000001" in chat.text
    chat.send("/find 000001")
    assert "呼叫 BY-2025-000001" in chat.text and len(chat.replies[0].photos) == 1
    chat.send("/find 积水")
    assert "BY-2025-000001" in chat.text
    raised(ctx, org)
    chat.send("/find 积水")
    assert chat.text.startswith("查找结果") and "BY-2025-000002" in chat.text
    chat.send("/find 火星")
    assert chat.text == "没有找到相符的呼叫。"
    chat.send("/find")
    assert "用法" in chat.text
    assert status(ctx, cid) is CallStatus.DISPATCHED


def test_assign_a_call_nobody_could_route(ctx: Context, org: Org) -> None:
    cid = calls.raise_call(ctx, org.caller, T0, "不知道找谁").id or 0
    [notice] = inbox(ctx, "dispatcher")
    assert "/assign BY-2025-000001 <部门代码>" in notice.text and "water · water" in notice.text
    chat = Chat(ctx, "dispatcher")
    chat.send("/assign 1 nowhere")
    assert "没有代码为 nowhere 的部门" in chat.text
    chat.send("/assign 7 water")
    assert "没有这件呼叫" in chat.text
    chat.send("/assign 1")
    assert "用法" in chat.text
    chat.send("/assign BY-2025-000001 water")
    assert "已派单至water" in chat.text
    assert status(ctx, cid) is CallStatus.DISPATCHED
    assert "您的部门收到一件新呼叫" in inbox(ctx, "water-liaison")[0].text


def test_approve_and_refuse_by_command_and_button(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    calls.acknowledge(ctx, cid, org.water_liaison, T0)
    calls.respond(ctx, cid, org.water_liaison, T0, "处理中")
    request = calls.request_extension(ctx, cid, org.water_liaison, T0, 2, "等配件")
    [notice] = [r for r in inbox(ctx, "dispatcher") if "申请" in r.text]
    assert "延期 2 个工作日" in notice.text and "等配件" in notice.text
    assert [b.label for b in notice.all_buttons] == ["同意", "不同意"]
    Chat(ctx, "water-liaison").press("同意", [notice])
    assert status(ctx, cid) is CallStatus.EXTENSION_REQUESTED
    chat = Chat(ctx, "dispatcher")
    chat.press("同意", [notice])
    assert f"申请 {request.id} 已同意" in chat.text
    chat.press("不同意", [notice])
    assert "已经审批过了" in chat.text
    with Session(ctx.engine) as session:
        assert session.get(CallRequest, request.id).status is RequestStatus.APPROVED  # type: ignore[union-attr]
        due = session.get(Call, cid).resolve_due  # type: ignore[union-attr]
    assert due is not None
    assert "延期申请已获同意" in inbox(ctx, "water-liaison")[-1].text

    other = raised(ctx, org)
    back = calls.return_call(ctx, other, org.water_liaison, T0, "不归我们管")
    chat.send(f"/refuse {back.id} 请继续办理")
    assert "未同意" in chat.text and status(ctx, other) is CallStatus.DISPATCHED
    third = raised(ctx, org)
    back = calls.return_call(ctx, third, org.water_liaison, T0, "应由住建局办理")
    chat.send(f"/approve {back.id} housing")
    assert "已同意" in chat.text and status(ctx, third) is CallStatus.DISPATCHED
    fourth = raised(ctx, org)
    back = calls.return_call(ctx, fourth, org.water_liaison, T0, "不清楚")
    chat.send(f"/approve {back.id}")
    assert "/assign BY-2025-000004" in chat.text
    assert status(ctx, fourth) is CallStatus.PENDING_DISPATCH
    chat.send("/approve x")
    assert "用法" in chat.text
    chat.send("/approve 999")
    assert "没有这项申请" in chat.text


def test_assign_and_withdraw_close_a_pending_return(ctx: Context, org: Org) -> None:
    """A return the dispatcher answers by assigning the call (or the caller by
    withdrawing it) leaves the queue; its old Approve button says why."""
    cid = raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    liaison.data(f"c:ret:{cid}")
    liaison.send("这是住建局的事")
    [notice] = [r for r in inbox(ctx, "dispatcher") if "申请" in r.text]
    chat = Chat(ctx, "dispatcher")
    chat.send("/queue")
    assert "退回" in chat.text
    chat.send("/assign BY-2025-000001 housing")
    assert "已派单至housing" in chat.text
    chat.send("/queue")
    assert chat.text == "目前没有等待指挥调度中心处理的事项。"
    chat.press("同意", [notice])
    assert "该申请已无需审批" in chat.text and "未做任何更改" in chat.text
    assert status(ctx, cid) is CallStatus.DISPATCHED

    other = raised(ctx, org)
    liaison.data(f"c:ret:{other}")
    liaison.send("不归我们管")
    [notice] = [r for r in inbox(ctx, "dispatcher") if "申请" in r.text
                and "BY-2025-000002" in r.text]
    caller = Chat(ctx, "li")
    caller.data(f"c:wd:{other}")
    assert "已撤回" in caller.text and status(ctx, other) is CallStatus.WITHDRAWN
    chat.send("/queue")
    assert chat.text == "目前没有等待指挥调度中心处理的事项。"
    chat.press("不同意", [notice])
    assert "该申请已无需审批" in chat.text
    assert status(ctx, other) is CallStatus.WITHDRAWN

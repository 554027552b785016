"""The lists that bring a member back to their work when the alert is lost:
a department's open calls (/mine for liaisons and heads, most urgent first,
with buttons and time left), the command centre's queue (/queue), and
actions typed as words ("签收 BY-2025-000001")."""

from __future__ import annotations

from datetime import timedelta

from models import CallStatus
from tests.conftest import T0, Org
from tests.test_handlers_chat import Chat
from tests.test_handlers_liaison import raised, status
from workflows import calls
from workflows.context import Context
from workflows.queues import department_calls, dispatch_queue


def test_a_liaison_lists_the_departments_calls_most_urgent_first(ctx: Context,
                                                                 org: Org) -> None:
    slow = raised(ctx, org)                    # acknowledge within 1 working day
    urgent = raised(ctx, org, item="flood")    # an emergency: minutes
    joint = raised(ctx, org, item="illegal-building")  # urban leads, housing assists
    calls.acknowledge(ctx, slow, org.water_liaison, T0)
    liaison = Chat(ctx, "water-liaison", now=T0 + timedelta(minutes=5))
    liaison.send("/mine")
    lines = liaison.text.splitlines()
    assert lines[0] == "本部门未办结的呼叫（最紧急的在前）："
    numbers = [line.split(" · ")[0] for line in lines if line.startswith("BY-")]
    assert numbers == ["BY-2025-000002", "BY-2025-000001"]  # the emergency first
    assert "距签收时限还有" in liaison.text and "距响应时限还有" in liaison.text
    # Each call's own buttons: acknowledge the emergency, respond to the other.
    assert liaison.labels == ["签收", "退回", "响应", "退回"]
    liaison.press("签收")
    assert status(ctx, urgent) is CallStatus.ACKNOWLEDGED
    # Late: the time shows how late.
    late = Chat(ctx, "water-head", now=T0 + timedelta(days=20))
    late.send("/mine")
    assert "已超时" in late.text
    # An assisting department sees the joint call until it acknowledges.
    housing = Chat(ctx, "housing-liaison")
    housing.send("/mine")
    assert "BY-2025-000003" in housing.text and housing.labels == ["签收"]
    housing.press("签收")
    assert [w.view.id for w in department_calls(ctx, org.housing)] == []
    assert [w.view.id for w in department_calls(ctx, org.urban)] == [joint]


def test_a_department_with_nothing_open_is_told_so(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "water-liaison")
    chat.send("/mine")
    assert chat.text == "本部门目前没有未办结的呼叫。"


def test_the_dispatchers_queue(ctx: Context, org: Org) -> None:
    unrouted = calls.raise_call(ctx, org.caller, T0, "不知道找谁", item_code=None).id or 0
    cid = raised(ctx, org)
    calls.acknowledge(ctx, cid, org.water_liaison, T0)
    calls.respond(ctx, cid, org.water_liaison, T0, "在办")
    request = calls.request_extension(ctx, cid, org.water_liaison, T0 + timedelta(hours=1),
                                      3, "要采购管材")
    assert next((d.view.id, d.request) for d in dispatch_queue(ctx)) == (unrouted, None)
    chat = Chat(ctx, "dispatcher")
    chat.send("/queue")
    assert "等待指挥调度中心处理的事项" in chat.text
    assert "/assign BY-2025-000001" in chat.text
    assert f"申请 {request.id}" in chat.text or str(request.id) in chat.text
    assert "要采购管材" in chat.text
    chat.press("同意")
    assert status(ctx, cid) is CallStatus.IN_PROGRESS
    chat.send("/queue")
    assert "BY-2025-000002" not in chat.text
    for who in ("water-liaison", "li", "supervisor"):
        other = Chat(ctx, who)
        other.send("/queue")
        assert "指挥调度中心" in other.text and "/assign" not in other.text
    empty = Chat(ctx, "dispatcher")
    calls.withdraw(ctx, unrouted, org.caller, T0)
    empty.send("/queue")
    assert empty.text == "目前没有等待指挥调度中心处理的事项。"


def test_an_action_typed_as_words(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    liaison.send("签收 BY-2025-000001")
    assert "您已签收 BY-2025-000001" in liaison.text
    assert status(ctx, cid) is CallStatus.ACKNOWLEDGED
    liaison.send("响应 1")  # the digits at the end are enough
    assert "准备如何处理" in liaison.text
    liaison.send("/cancel")
    liaison.send("签收")  # no number: where the buttons are
    assert "/mine" in liaison.text and "签收 BY-2026-000003" in liaison.text
    liaison.send("你好")
    assert "/mine" in liaison.text and "/call" not in liaison.text
    liaison.send("签收 BY-2025-000999")
    assert "没有这个呼叫" in liaison.text or "未做任何更改" in liaison.text
    # A caller typing a department's word is refused as the button would be.
    caller = Chat(ctx, "li")
    caller.send("acknowledge BY-2025-000001")
    assert "未做任何更改" in caller.text
    caller.send("撤回")
    assert "/mine" in caller.text and "撤回 BY-2026-000003" in caller.text
    caller.send("随便说说")
    assert "/call" in caller.text
    dispatcher = Chat(ctx, "dispatcher")
    dispatcher.send("签收")
    assert "/queue" in dispatcher.text


def test_a_press_on_the_alert_of_a_rerouted_call_says_where_it_went(ctx: Context,
                                                                     org: Org) -> None:
    from tests.test_handlers_chat import inbox

    cid = raised(ctx, org)
    alert = inbox(ctx, "water-liaison")
    calls.assign(ctx, cid, org.dispatcher, T0, "urban")
    liaison = Chat(ctx, "water-liaison")
    liaison.press("签收", alert)
    assert liaison.text == "BY-2025-000001 已改派至urban，不再由本部门办理。未做任何更改。"
    assert "。未做任何更改。" in liaison.text and status(ctx, cid) is CallStatus.DISPATCHED
    liaison.press("退回", alert)
    assert "已改派至" in liaison.text
    # Someone who was never alerted is simply refused.
    housing = Chat(ctx, "housing-liaison")
    housing.press("签收", alert)
    assert "已改派" not in housing.text and "未做任何更改" in housing.text

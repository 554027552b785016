"""The transition table's effects are what the use cases do: every transition,
to every target, driven through its use case, changes exactly the moments,
clocks, departments and requests it declares — and nothing else of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from models import (
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    CatalogItem,
    Event,
    RatingLevel,
    RequestStatus,
)
from tests.conftest import T0, Org
from tests.test_calls import drive
from workflows import calls
from workflows.context import Context
from workflows.deadlines import due_at, extend, limits_of, reopened_due
from workflows.lifecycle import (
    DISPATCH,
    NO_EFFECTS,
    TRANSITIONS,
    Action,
    Clock,
    ClockChange,
    Effects,
    Routing,
    Stamp,
    effects_table,
    transition,
)

S = CallStatus
NOW = T0 + timedelta(days=13, hours=1)  # Monday 2025-10-13 17:50 Shanghai
EXTENSION_DAYS = 3

#: A scenario brings a call where the action can be taken and returns its id
#: (None when the action raises it) and the action, taken at NOW.
Scenario = Callable[[Context, Org, CallStatus], tuple[int | None, Callable[[], Any]]]


def joint_call(ctx: Context, org: Org, state: CallStatus) -> int:
    """A call of the joint item (urban leads, housing assists) brought to `state`."""
    cid = calls.raise_call(ctx, org.caller, T0, "违建", item_code="illegal-building").id or 0
    if state in (S.ACKNOWLEDGED, S.IN_PROGRESS, S.EXTENSION_REQUESTED):
        calls.acknowledge(ctx, cid, org.urban_liaison, T0)
    if state in (S.IN_PROGRESS, S.EXTENSION_REQUESTED):
        calls.respond(ctx, cid, org.urban_liaison, T0, "在处理")
    if state is S.EXTENSION_REQUESTED:
        calls.request_extension(ctx, cid, org.urban_liaison, T0, 2, "等材料")
    return cid


def returned(ctx: Context, org: Org, acknowledged: bool) -> tuple[int, int]:
    """A drain call returned by the water department (after acknowledging it, or not)."""
    cid = drive(ctx, org, S.ACKNOWLEDGED if acknowledged else S.DISPATCHED)
    request = calls.return_call(ctx, cid, org.water_liaison, T0, "属住建")
    return cid, request.id or 0


def _assign(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None, Callable[[], Any]]:
    cid, _ = returned(ctx, org, acknowledged=True)  # a pending return, to be superseded
    return cid, lambda: calls.assign(ctx, cid, org.dispatcher, NOW, "housing")


def _uphold(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None, Callable[[], Any]]:
    cid, request = returned(ctx, org, acknowledged=True)
    department = "housing" if target is S.DISPATCHED else None
    return cid, lambda: calls.decide_return(ctx, request, org.dispatcher, NOW, True, department)


def _refuse_return(
    ctx: Context, org: Org, target: CallStatus
) -> tuple[int | None, Callable[[], Any]]:
    cid, request = returned(ctx, org, acknowledged=target is S.ACKNOWLEDGED)
    return cid, lambda: calls.decide_return(ctx, request, org.dispatcher, NOW, False)


def _decide_extension(approve: bool) -> Scenario:
    def scenario(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None,
                                                                      Callable[[], Any]]:
        cid = drive(ctx, org, S.IN_PROGRESS)
        request = calls.request_extension(ctx, cid, org.water_liaison, T0, EXTENSION_DAYS, "等")
        return cid, lambda: calls.decide_extension(ctx, request.id or 0, org.dispatcher, NOW,
                                                   approve)
    return scenario


def _reject(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None, Callable[[], Any]]:
    cid = drive(ctx, org, S.IN_PROGRESS)
    calls.resolve(ctx, cid, org.water_liaison, T0 + timedelta(hours=1), "已疏通")
    return cid, lambda: calls.reject_fix(ctx, cid, org.caller, NOW, "还在积水")


def _withdraw(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None, Callable[[], Any]]:
    cid, _ = returned(ctx, org, acknowledged=False)  # a pending return, to be superseded
    return cid, lambda: calls.withdraw(ctx, cid, org.caller, NOW)


def _info(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None, Callable[[], Any]]:
    cid = joint_call(ctx, org, target) if target is not S.PENDING_DISPATCH else drive(
        ctx, org, S.PENDING_DISPATCH)
    return cid, lambda: calls.add_info(ctx, cid, org.caller, NOW, "积水更深了")


def _on(state: CallStatus, act: Callable[[Context, Org, int], Any]) -> Scenario:
    def scenario(ctx: Context, org: Org, target: CallStatus) -> tuple[int | None,
                                                                      Callable[[], Any]]:
        cid = drive(ctx, org, state)
        return cid, lambda: act(ctx, org, cid)
    return scenario


SCENARIOS: dict[Action, Scenario] = {
    Action.ROUTE: lambda ctx, org, _: (
        None, lambda: calls.raise_call(ctx, org.caller, NOW, "积水", item_code="drain")),
    Action.SEND_TO_DISPATCHER: lambda ctx, org, _: (
        None, lambda: calls.raise_call(ctx, org.caller, NOW, "不知道找谁")),
    Action.ASSIGN: _assign,
    Action.ACKNOWLEDGE: _on(S.DISPATCHED, lambda ctx, org, c: calls.acknowledge(
        ctx, c, org.water_liaison, NOW)),
    Action.ACKNOWLEDGE_AS_ASSISTING: lambda ctx, org, target: (
        (cid := joint_call(ctx, org, target)),
        lambda: calls.acknowledge(ctx, cid, org.housing_liaison, NOW)),
    Action.RESPOND: _on(S.ACKNOWLEDGED, lambda ctx, org, c: calls.respond(
        ctx, c, org.water_liaison, NOW, "在处理")),
    Action.REQUEST_EXTENSION: _on(S.IN_PROGRESS, lambda ctx, org, c: calls.request_extension(
        ctx, c, org.water_liaison, NOW, 2, "等材料")),
    Action.GRANT_EXTENSION: _decide_extension(True),
    Action.REFUSE_EXTENSION: _decide_extension(False),
    Action.RETURN: _on(S.ACKNOWLEDGED, lambda ctx, org, c: calls.return_call(
        ctx, c, org.water_liaison, NOW, "属住建")),
    Action.UPHOLD_RETURN: _uphold,
    Action.REFUSE_RETURN: _refuse_return,
    Action.RESOLVE: _on(S.IN_PROGRESS, lambda ctx, org, c: calls.resolve(
        ctx, c, org.water_liaison, NOW, "已疏通")),
    Action.CONFIRM: _on(S.RESOLVED, lambda ctx, org, c: calls.confirm(
        ctx, c, org.caller, NOW, RatingLevel.SATISFIED)),
    Action.REJECT_FIX: _reject,
    Action.WITHDRAW: _withdraw,
    Action.AUTO_CLOSE: _on(S.RESOLVED, lambda ctx, org, c: calls.auto_close_due(
        ctx, NOW)),
    Action.ADD_INFO: _info,
}


def state_of(ctx: Context, call_id: int) -> dict[str, Any]:
    """What effects may change: the call's columns, its departments, its pending requests."""
    with Session(ctx.engine) as session:
        call = session.get(Call, call_id)
        assert call is not None
        item = session.get(CatalogItem, call.item_id) if call.item_id else None
        return {
            **{stamp.value: getattr(call, stamp.value) for stamp in Stamp},
            **{clock.value: getattr(call, clock.value) for clock in Clock},
            "auto_closed": call.auto_closed,
            "lead": call.lead_department_id,
            "status": call.status,
            "limits": limits_of(item),
            "departments": sorted(p.department_id for p in session.exec(
                select(CallDepartment).where(CallDepartment.call_id == call_id))),
            "pending": [r.id for r in session.exec(select(CallRequest).where(
                CallRequest.call_id == call_id, CallRequest.status == RequestStatus.PENDING))],
            "event": session.exec(select(Event.kind).where(Event.call_id == call_id)
                                  .order_by(col(Event.id).desc())).first(),
        }


BLANK: dict[str, Any] = {**{s.value: None for s in Stamp}, **{c.value: None for c in Clock},
                         "auto_closed": False, "lead": None, "departments": [], "pending": []}

def expected_clock(ctx: Context, before: dict[str, Any], after: dict[str, Any], clock: Clock,
                   change: ClockChange | None) -> datetime | None:
    """Where `change` puts `clock`, by the deadline rules themselves."""
    calendar, policy = ctx.rules.calendar, ctx.rules.policy
    was: datetime | None = before[clock.value]
    limit = getattr(after["limits"], clock.name.lower())
    if change is None:
        return was
    if change is ClockChange.START:
        return due_at(NOW, limit, calendar, policy)
    if change is ClockChange.STOP:
        return None
    assert was is not None  # the scenarios extend and reopen running clocks
    if change is ClockChange.EXTEND:
        moved = extend(was, EXTENSION_DAYS, calendar, policy)
    else:
        moved = reopened_due(was, before[Stamp.RESOLVED.value], NOW, limit.unit, calendar,
                             policy)
    assert moved != was  # the scenario really moves it
    return moved


CASES = [(t.action, target) for t in TRANSITIONS for target in sorted(t.targets)]


def test_every_transition_has_a_scenario() -> None:
    assert set(SCENARIOS) == {t.action for t in TRANSITIONS}


@pytest.mark.parametrize(("action", "target"), CASES, ids=[f"{a}-{t}" for a, t in CASES])
def test_a_transition_does_what_it_declares_and_nothing_else(
    ctx: Context, org: Org, action: Action, target: CallStatus
) -> None:
    call_id, act = SCENARIOS[action](ctx, org, target)
    before = state_of(ctx, call_id) if call_id is not None else BLANK
    result = act()
    if call_id is None:
        call_id = result.id
    assert call_id is not None
    after = state_of(ctx, call_id)
    assert after["status"] is target and after["event"] == transition(action).event
    effects = transition(action).effects_to(target)
    for stamp in Stamp:
        expected = (NOW if stamp in effects.sets else None if stamp in effects.clears
                    else before[stamp.value])
        assert after[stamp.value] == expected, stamp
    changes = effects.clock_changes
    for clock in Clock:
        assert after[clock.value] == expected_clock(
            ctx, before, after, clock, changes.get(clock)), clock
    assert after["auto_closed"] is (effects.auto_closed or before["auto_closed"])

    if effects.routing is Routing.DISPATCH:
        assert after["lead"] is not None and after["lead"] in after["departments"]
        assert after["lead"] != before["lead"]
    elif effects.routing is Routing.RELEASE:
        assert before["lead"] is not None
        assert after["lead"] is None and after["departments"] == []
    else:
        assert (after["lead"], after["departments"]) == (before["lead"], before["departments"])
    if effects.supersedes_requests:
        assert before["pending"] and after["pending"] == []


def test_effects_are_checked_where_declared() -> None:
    with pytest.raises(ValueError, match="both set and cleared"):
        Effects(sets=frozenset({Stamp.CLOSED}), clears=frozenset({Stamp.CLOSED}))
    with pytest.raises(ValueError, match="changed twice"):
        Effects(clocks=((Clock.RESOLVE, ClockChange.EXTEND), (Clock.RESOLVE, ClockChange.STOP)))
    assert transition(Action.ADD_INFO).effects_to(S.DISPATCHED) == NO_EFFECTS
    assert transition(Action.ROUTE).effects_to(S.DISPATCHED) == DISPATCH


def test_a_moment_is_set_only_by_the_transitions_that_declare_it() -> None:
    """Read the table: the closing moment is set by exactly the transitions
    into a final state, and the resolution only by resolving."""
    sets: dict[Stamp, set[Action]] = {stamp: set() for stamp in Stamp}
    for t in TRANSITIONS:
        for _, effects in t.effects:
            for stamp in effects.sets:
                sets[stamp].add(t.action)
    assert sets[Stamp.CLOSED] == {Action.CONFIRM, Action.WITHDRAW, Action.AUTO_CLOSE}
    assert sets[Stamp.RESOLVED] == {Action.RESOLVE}
    assert sets[Stamp.ACKNOWLEDGED] == {Action.ACKNOWLEDGE}
    assert sets[Stamp.RESPONDED] == {Action.RESPOND}
    assert sets[Stamp.DISPATCHED] == {Action.ROUTE, Action.ASSIGN, Action.UPHOLD_RETURN}
    final = {S.CLOSED, S.WITHDRAWN}
    for t in TRANSITIONS:
        for target, effects in t.effects:
            assert (Stamp.CLOSED in effects.sets) == (target in final), t.action
    assert "| reject_fix | in_progress | clears resolved_at; reopen resolve_due |" in (
        effects_table())

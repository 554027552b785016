"""The lifecycle use cases: every allowed transition works, every forbidden one
(wrong role, wrong department, wrong state) is refused and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from models import (
    Attachment,
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    Event,
    Rating,
    RatingLevel,
    RequestKind,
    RequestStatus,
)
from tests.conftest import JPEG, PNG, T0, Org
from workflows import calls, queries
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound, WrongState
from workflows.lifecycle import TRANSITIONS, Action, Party
from workflows.photos import Photo
from workflows.queues import dispatch_queue
from workflows.views import CallRequestView, CallView

S = CallStatus
LATER = T0 + timedelta(hours=1)


def snapshot(ctx: Context) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to prove a refused action changed nothing."""
    with ctx.engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(map(repr, row)) for row in connection.execute(sa.select(table))),
            )
            for table in SQLModel.metadata.sorted_tables
        }


def load(ctx: Context, call_id: int) -> Call:
    with Session(ctx.engine) as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call


def events(ctx: Context, call_id: int) -> list[str]:
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(Event).where(Event.call_id == call_id).order_by(col(Event.id))
        )
        return [event.kind for event in rows]


def drive(ctx: Context, org: Org, state: CallStatus, item: str | None = "drain") -> int:
    """A fresh call brought to `state` through the use cases."""
    t = T0
    if state is S.PENDING_DISPATCH:
        return calls.raise_call(ctx, org.caller, t, "路口积水", item_code=None).id or 0
    call_id = calls.raise_call(ctx, org.caller, t, "路口积水", item_code=item).id or 0
    lead = org.water_liaison
    steps: list[Callable[[], object]] = []
    if state is S.WITHDRAWN:
        steps = [lambda: calls.withdraw(ctx, call_id, org.caller, t)]
    order = [S.ACKNOWLEDGED, S.IN_PROGRESS, S.EXTENSION_REQUESTED, S.RESOLVED, S.CLOSED]
    if state in order:
        steps.append(lambda: calls.acknowledge(ctx, call_id, lead, t))
        if state is not S.ACKNOWLEDGED:
            steps.append(lambda: calls.respond(ctx, call_id, lead, t, "在处理"))
        if state is S.EXTENSION_REQUESTED:
            steps.append(lambda: calls.request_extension(ctx, call_id, lead, t, 2, "等材料"))
        if state in (S.RESOLVED, S.CLOSED):
            steps.append(lambda: calls.resolve(ctx, call_id, lead, t, "已疏通"))
        if state is S.CLOSED:
            steps.append(
                lambda: calls.confirm(ctx, call_id, org.caller, t, RatingLevel.SATISFIED)
            )
    for step in steps:
        step()
    assert load(ctx, call_id).status is state
    return call_id


ACTIONS: dict[Action, Callable[[Context, int, int], object]] = {
    Action.ASSIGN: lambda ctx, c, by: calls.assign(ctx, c, by, LATER, "housing"),
    Action.ACKNOWLEDGE: lambda ctx, c, by: calls.acknowledge(ctx, c, by, LATER),
    Action.RESPOND: lambda ctx, c, by: calls.respond(ctx, c, by, LATER, "马上处理"),
    Action.REQUEST_EXTENSION: lambda ctx, c, by: calls.request_extension(
        ctx, c, by, LATER, 3, "等待设备"
    ),
    Action.RETURN: lambda ctx, c, by: calls.return_call(ctx, c, by, LATER, "不属本部门"),
    Action.RESOLVE: lambda ctx, c, by: calls.resolve(ctx, c, by, LATER, "已处理"),
    Action.CONFIRM: lambda ctx, c, by: calls.confirm(ctx, c, by, LATER, RatingLevel.SATISFIED),
    Action.REJECT_FIX: lambda ctx, c, by: calls.reject_fix(ctx, c, by, LATER, "还在积水"),
    Action.WITHDRAW: lambda ctx, c, by: calls.withdraw(ctx, c, by, LATER),
    Action.ADD_INFO: lambda ctx, c, by: calls.add_info(ctx, c, by, LATER, "积水更深了",
                                                       [Photo(PNG)]),
}


def allowed_members(org: Org, party: Party) -> list[int]:
    return {
        Party.CALLER: [org.caller],
        Party.LEAD_DEPARTMENT: [org.water_liaison, org.water_head],
        Party.DISPATCHER: [org.dispatcher, org.admin],
        Party.ASSISTING_DEPARTMENT: [],
        Party.SYSTEM: [],
    }[party]


def everyone(org: Org) -> list[int]:
    return [
        org.caller, org.other_caller, org.water_liaison, org.water_head,
        org.housing_liaison, org.urban_liaison, org.dispatcher, org.supervisor, org.admin,
    ]


REACHABLE = [s for s in S if s is not S.RAISED]


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_allowed_from_each_source_and_refused_elsewhere(
    ctx: Context, org: Org, action: Action
) -> None:
    rule = next(t for t in TRANSITIONS if t.action is action)
    members = [m for p in rule.parties for m in allowed_members(org, p)]
    for state in REACHABLE:
        for by in members:
            call_id = drive(ctx, org, state)
            before = snapshot(ctx)
            if state in rule.sources:
                ACTIONS[action](ctx, call_id, by)
                assert load(ctx, call_id).status in rule.targets
                assert events(ctx, call_id)[-1] == rule.event
            else:
                # A call pending dispatch has no department: a liaison is then
                # not a party to it at all, which is refused as NotAllowed.
                expected = (WrongState, NotAllowed) if state is S.PENDING_DISPATCH else WrongState
                with pytest.raises(expected):
                    ACTIONS[action](ctx, call_id, by)
                assert snapshot(ctx) == before, f"{action} from {state} changed data"


@pytest.mark.parametrize("action", list(ACTIONS))
def test_action_refused_to_every_other_member(ctx: Context, org: Org, action: Action) -> None:
    rule = next(t for t in TRANSITIONS if t.action is action)
    allowed = {m for p in rule.parties for m in allowed_members(org, p)}
    state = sorted(rule.sources)[0]
    for by in everyone(org):
        if by in allowed:
            continue
        call_id = drive(ctx, org, state)
        before = snapshot(ctx)
        with pytest.raises(NotAllowed):
            ACTIONS[action](ctx, call_id, by)
        assert snapshot(ctx) == before


def test_raise_routes_from_catalog_with_deadlines_and_photos(ctx: Context, org: Org) -> None:
    call = calls.raise_call(
        ctx, org.caller, T0, "  排水沟堵塞  ", item_code="drain",
        location_text="大源村口", latitude=23.28, longitude=113.32,
        photos=[Photo(PNG), Photo(JPEG)],
    )
    assert call.number == "BY-2025-000001"
    assert call.status is S.DISPATCHED and call.lead_department_id == org.water
    assert call.text == "排水沟堵塞"
    # Raised 2025-09-30 16:50 in Shanghai, 1 working day → 2025-10-09 18:00 (10:00 UTC).
    assert call.acknowledge_due == datetime(2025, 10, 9, 10, 0, tzinfo=UTC)
    assert call.respond_due == datetime(2025, 10, 10, 10, 0, tzinfo=UTC)
    with Session(ctx.engine) as session:
        stored = session.exec(select(Attachment).where(Attachment.call_id == call.id)).all()
    assert [a.content_type for a in stored] == ["image/png", "image/jpeg"]
    assert ctx.media.read(stored[0].sha256) == PNG
    assert events(ctx, call.id or 0) == ["CallRaised", "CallDispatched"]
    second = calls.raise_call(ctx, org.caller, T0, "又一处", item_code="drain")
    assert second.number == "BY-2025-000002"


def test_not_sure_goes_to_dispatcher_who_assigns(ctx: Context, org: Org) -> None:
    call = calls.raise_call(ctx, org.caller, T0, "不知道找谁")
    assert call.status is S.PENDING_DISPATCH and call.acknowledge_due is None
    assigned = calls.assign(ctx, call.id or 0, org.dispatcher, LATER, "water")
    assert assigned.status is S.DISPATCHED and assigned.lead_department_id == org.water
    assert assigned.acknowledge_due is not None
    assert events(ctx, call.id or 0)[-1] == "CallAssigned"


def test_joint_call_each_department_acknowledges_and_only_lead_resolves(
    ctx: Context, org: Org
) -> None:
    call = calls.raise_call(ctx, org.caller, T0, "违建", item_code="illegal-building")
    cid = call.id or 0
    calls.acknowledge(ctx, cid, org.housing_liaison, T0)  # assisting first: status unchanged
    assert load(ctx, cid).status is S.DISPATCHED
    with pytest.raises(WrongState):
        calls.acknowledge(ctx, cid, org.housing_liaison, LATER)  # pressed twice
    calls.acknowledge(ctx, cid, org.urban_liaison, LATER)
    calls.respond(ctx, cid, org.urban_liaison, LATER, "已派人")
    with pytest.raises(NotAllowed):
        calls.resolve(ctx, cid, org.housing_liaison, LATER, "已拆除")
    calls.resolve(ctx, cid, org.urban_liaison, LATER, "已拆除")
    with Session(ctx.engine) as session:
        acked = session.exec(select(CallDepartment).where(CallDepartment.call_id == cid)).all()
    assert all(p.acknowledged_at is not None for p in acked) and len(acked) == 2


def test_extension_granted_moves_resolve_deadline(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.IN_PROGRESS)
    before = load(ctx, cid).resolve_due
    request = calls.request_extension(ctx, cid, org.water_liaison, LATER, 2, "等管材")
    call = calls.decide_request(ctx, request.id or 0, org.dispatcher, LATER, approve=True)
    assert call.status is S.IN_PROGRESS
    # 5 working days from 09-30 → 10-14 (10-11 is a make-up working day); +2 → 10-16.
    assert before == datetime(2025, 10, 14, 10, 0, tzinfo=UTC)
    assert call.resolve_due == datetime(2025, 10, 16, 10, 0, tzinfo=UTC)
    with pytest.raises(WrongState):  # decided twice
        calls.decide_request(ctx, request.id or 0, org.dispatcher, LATER, approve=True)


def test_extension_refused_keeps_deadline(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.IN_PROGRESS)
    before = load(ctx, cid).resolve_due
    request = calls.request_extension(ctx, cid, org.water_head, LATER, 2, "等管材")
    with pytest.raises(NotAllowed):
        calls.decide_request(ctx, request.id or 0, org.water_head, LATER, approve=True)
    call = calls.decide_request(ctx, request.id or 0, org.admin, LATER, approve=False)
    assert call.status is S.IN_PROGRESS and call.resolve_due == before
    assert events(ctx, cid)[-1] == "ExtensionRefused"


def test_return_upheld_reroutes_and_refused_goes_back(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.ACKNOWLEDGED)
    request = calls.return_call(ctx, cid, org.water_liaison, LATER, "属住建")
    assert load(ctx, cid).status is S.PENDING_DISPATCH
    with pytest.raises(InvalidInput):
        calls.decide_return(ctx, request.id or 0, org.dispatcher, LATER, True, "water")
    call = calls.decide_return(ctx, request.id or 0, org.dispatcher, LATER, True, "housing")
    assert call.status is S.DISPATCHED and call.lead_department_id == org.housing
    assert load(ctx, cid).acknowledged_at is None  # not on a view: read from the database

    cid = drive(ctx, org, S.ACKNOWLEDGED)
    due = load(ctx, cid).resolve_due
    request = calls.return_call(ctx, cid, org.water_liaison, LATER, "属住建")
    call = calls.decide_request(ctx, request.id or 0, org.dispatcher, LATER, approve=False)
    assert call.status is S.ACKNOWLEDGED and call.resolve_due == due
    assert call.lead_department_id == org.water

    cid = drive(ctx, org, S.DISPATCHED)
    request = calls.return_call(ctx, cid, org.water_liaison, LATER, "不清楚")
    call = calls.decide_return(ctx, request.id or 0, org.dispatcher, LATER, uphold=True)
    assert call.status is S.PENDING_DISPATCH and call.lead_department_id is None
    calls.assign(ctx, cid, org.dispatcher, LATER, "urban")
    assert load(ctx, cid).lead_department_id == org.urban


def request_row(ctx: Context, request_id: int) -> CallRequest:
    with Session(ctx.engine) as session:
        request = session.get(CallRequest, request_id)
        assert request is not None
        return request


def last_event(ctx: Context, call_id: int) -> Event:
    with Session(ctx.engine) as session:
        event = session.exec(
            select(Event).where(Event.call_id == call_id).order_by(col(Event.id).desc())
        ).first()
        assert event is not None
        return event


def test_assign_closes_a_pending_return_undecided(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.ACKNOWLEDGED)
    request = calls.return_call(ctx, cid, org.water_liaison, LATER, "属住建")
    assert [d.request.id for d in dispatch_queue(ctx) if d.request] == [request.id]
    calls.assign(ctx, cid, org.dispatcher, LATER, "housing")
    closed = request_row(ctx, request.id or 0)
    assert closed.status is RequestStatus.SUPERSEDED
    assert (closed.decided_by, closed.decided_at, closed.decision_note) == (
        org.dispatcher, LATER, "assign")
    assigned = last_event(ctx, cid)
    assert assigned.kind == "CallAssigned"
    assert assigned.data["superseded_requests"] == [request.id]
    # Nobody is asked to decide it any more, and deciding it is refused.
    assert dispatch_queue(ctx) == []
    before = snapshot(ctx)
    for approve in (True, False):
        with pytest.raises(WrongState) as refused:
            calls.decide_request(ctx, request.id or 0, org.dispatcher, LATER, approve, "urban")
        assert refused.value.params["status"] == "superseded"
    assert snapshot(ctx) == before
    assert load(ctx, cid).lead_department_id == org.housing
    # An assignment with nothing pending records nothing superseded.
    calls.assign(ctx, cid, org.dispatcher, LATER, "urban")
    assert "superseded_requests" not in last_event(ctx, cid).data


def test_withdraw_closes_a_pending_return_undecided(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.DISPATCHED)
    request = calls.return_call(ctx, cid, org.water_liaison, LATER, "不清楚")
    later = LATER + timedelta(minutes=5)
    calls.withdraw(ctx, cid, org.caller, later, "已自行解决")
    closed = request_row(ctx, request.id or 0)
    assert (closed.status, closed.decided_by, closed.decided_at, closed.decision_note) == (
        RequestStatus.SUPERSEDED, org.caller, later, "withdraw")
    assert last_event(ctx, cid).data["superseded_requests"] == [request.id]
    assert dispatch_queue(ctx) == []
    with pytest.raises(WrongState):
        calls.decide_return(ctx, request.id or 0, org.dispatcher, later, uphold=True)
    assert load(ctx, cid).status is S.WITHDRAWN


def test_resolve_needs_evidence_and_rejected_fix_keeps_remaining_time(
    ctx: Context, org: Org
) -> None:
    cid = drive(ctx, org, S.IN_PROGRESS)
    before = snapshot(ctx)
    with pytest.raises(InvalidInput):
        calls.resolve(ctx, cid, org.water_liaison, LATER)
    with pytest.raises(InvalidInput):
        calls.resolve(ctx, cid, org.water_liaison, LATER, photos=[Photo(b"%PDF-1.4 not a photo")])
    assert snapshot(ctx) == before
    due = load(ctx, cid).resolve_due
    assert due is not None
    resolved_at = due - timedelta(hours=5)
    calls.resolve(ctx, cid, org.water_liaison, resolved_at, photos=[Photo(JPEG)])
    # 5 working hours were left. Rejected on Friday 10-17 at 17:00 (Shanghai):
    # 1 hour on Friday, 4 on Monday 10-20 from 09:00 — never the weekend.
    rejected_at = datetime(2025, 10, 17, 9, 0, tzinfo=UTC)
    call = calls.reject_fix(ctx, cid, org.caller, rejected_at, "还是堵")
    assert call.status is S.IN_PROGRESS
    assert call.resolve_due == datetime(2025, 10, 20, 5, 0, tzinfo=UTC)  # 13:00 Monday


def test_confirm_rates_once(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.RESOLVED)
    calls.confirm(ctx, cid, org.caller, LATER, RatingLevel.MOSTLY_SATISFIED, "还行")
    with pytest.raises(WrongState):
        calls.confirm(ctx, cid, org.caller, LATER, RatingLevel.SATISFIED)
    with Session(ctx.engine) as session:
        rating = session.exec(select(Rating).where(Rating.call_id == cid)).one()
    assert rating.score == 80 and rating.comment == "还行"


def test_auto_close_after_working_days(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.RESOLVED)  # resolved 2025-09-30 16:50 Shanghai
    # 3 working days later: 10-09, 10-10, 10-11 (make-up Saturday) → 10-11 16:50.
    assert calls.auto_close_due(ctx, datetime(2025, 10, 11, 8, 49, tzinfo=UTC)) == []
    closed = calls.auto_close_due(ctx, datetime(2025, 10, 11, 8, 50, tzinfo=UTC))
    assert [c.id for c in closed] == [cid]
    call = load(ctx, cid)
    assert call.status is S.CLOSED and call.auto_closed
    assert events(ctx, cid)[-1] == "CallAutoClosed"


def test_every_use_case_returns_the_view_of_the_call_as_it_left_it(
    ctx: Context, org: Org
) -> None:
    """What a use case hands back is the view a reader loading the call
    afterwards would get — field by field, photos, note and rating included —
    and never an ORM row; a filed request comes back with its own fields and
    the call's view."""
    seen: list[str] = []

    def returned(result: CallView | CallRequestView) -> CallView:
        if isinstance(result, CallRequestView):
            row = request_row(ctx, result.id)
            assert (result.kind, result.status, result.days, result.reason) == (
                row.kind, row.status, row.days, row.reason)
            assert result.call_id == row.call_id
            result = result.call
        assert type(result) is CallView
        assert result == queries.call_view(ctx, result.id)
        seen.append(result.status.value)
        return result

    at = LATER
    drain = returned(calls.raise_call(ctx, org.caller, T0, "井盖破损", item_code="drain",
                                      photos=[Photo(PNG)])).id
    returned(calls.add_info(ctx, drain, org.caller, at, "更严重了", [Photo(JPEG)]))
    returned(calls.acknowledge(ctx, drain, org.water_liaison, at))
    returned(calls.respond(ctx, drain, org.water_liaison, at, "已派人"))
    asked = calls.request_extension(ctx, drain, org.water_liaison, at, 2, "等配件")
    returned(asked)
    assert asked.kind is RequestKind.EXTENSION and asked.days == 2
    returned(calls.decide_extension(ctx, asked.id, org.dispatcher, at, True))
    returned(calls.resolve(ctx, drain, org.water_liaison, at, "修好了", [Photo(JPEG)]))
    returned(calls.reject_fix(ctx, drain, org.caller, at, "还在漏"))
    resolved = returned(calls.resolve(ctx, drain, org.water_liaison, at, "第二次修好"))
    assert resolved.resolution_note == "第二次修好" and len(resolved.evidence_photos) == 1
    rated = returned(calls.confirm(ctx, drain, org.caller, at, RatingLevel.SATISFIED))
    assert rated.rating == "satisfied" and len(rated.raise_photos) == 2

    unsure = returned(calls.raise_call(ctx, org.caller, T0, "不知道找谁")).id
    assert returned(calls.assign(ctx, unsure, org.dispatcher, at, "water")).lead_department
    returned(calls.acknowledge(ctx, unsure, org.water_liaison, at))
    back = calls.return_call(ctx, unsure, org.water_liaison, at, "不归我们管")
    assert returned(back).lead_department_id == org.water and back.days is None
    assert returned(calls.decide_return(ctx, back.id, org.dispatcher, at, True,
                                        "housing")).lead_department_id == org.housing
    returned(calls.acknowledge(ctx, unsure, org.housing_liaison, at))
    again = returned(calls.return_call(ctx, unsure, org.housing_liaison, at, "也不归我们"))
    refused = returned(calls.decide_request(ctx, request_row_of(ctx, unsure), org.dispatcher,
                                            at, approve=False))
    assert again.status is S.PENDING_DISPATCH and refused.status is S.ACKNOWLEDGED
    assert refused.lead_department_id == org.housing

    gone = returned(calls.raise_call(ctx, org.caller, T0, "搞错了", item_code="drain")).id
    returned(calls.withdraw(ctx, gone, org.caller, at))
    left = drive(ctx, org, S.RESOLVED)
    [closed] = calls.auto_close_due(ctx, datetime(2025, 10, 11, 8, 50, tzinfo=UTC))
    assert returned(closed).id == left
    assert len(seen) == 21 and {"closed", "withdrawn", "pending_dispatch"} <= set(seen)


def request_row_of(ctx: Context, call_id: int) -> int:
    """The id of the request pending on the call."""
    with Session(ctx.engine) as session:
        return session.exec(select(CallRequest.id).where(
            CallRequest.call_id == call_id,
            CallRequest.status == RequestStatus.PENDING)).one() or 0


def test_bad_input_changes_nothing(ctx: Context, org: Org) -> None:
    before = snapshot(ctx)
    with pytest.raises(InvalidInput):
        calls.raise_call(ctx, org.caller, T0, "   ")
    with pytest.raises(InvalidInput):
        calls.raise_call(ctx, org.caller, T0, "x" * (calls.MAX_TEXT + 1))
    with pytest.raises(InvalidInput):  # zero-width and blank characters say nothing
        calls.raise_call(ctx, org.caller, T0, "\u200b\u3000\ufeff\u2060")
    with pytest.raises(InvalidInput):
        calls.raise_call(ctx, org.caller, T0, "ok", photos=[Photo(PNG)] * 10)
    with pytest.raises(InvalidInput):
        calls.raise_call(ctx, org.caller, T0, "ok", latitude=200.0, longitude=1.0)
    with pytest.raises(NotFound):
        calls.raise_call(ctx, org.caller, T0, "ok", item_code="nope")
    with pytest.raises(NotAllowed):
        calls.raise_call(ctx, org.water_liaison, T0, "ok")
    with pytest.raises(NotFound):
        calls.acknowledge(ctx, 9999, org.water_liaison, T0)
    assert snapshot(ctx) == before


def test_photo_over_the_limit_is_refused(ctx: Context, org: Org) -> None:
    big = PNG + b"\x00" * ctx.rules.max_photo_bytes
    with pytest.raises(InvalidInput) as refused:
        calls.raise_call(ctx, org.caller, T0, "ok", photos=[Photo(big)])
    assert refused.value.params["reason"] == "photo_too_large"


def test_event_log_is_append_only(ctx: Context, org: Org) -> None:
    cid = drive(ctx, org, S.DISPATCHED)
    with Session(ctx.engine) as session:
        event = session.exec(select(Event).where(Event.call_id == cid)).first()
        assert event is not None
        event.note = "rewritten"
        session.add(event)
        with pytest.raises(RuntimeError, match="append-only"):
            session.commit()


def test_every_transition_has_a_use_case_or_is_system() -> None:
    decided = {Action.GRANT_EXTENSION, Action.REFUSE_EXTENSION, Action.UPHOLD_RETURN,
               Action.REFUSE_RETURN, Action.ACKNOWLEDGE_AS_ASSISTING}
    system = {t.action for t in TRANSITIONS if t.parties == {Party.SYSTEM}}
    assert {t.action for t in TRANSITIONS} == set(ACTIONS) | decided | system
    assert RequestStatus.PENDING.value == "pending"

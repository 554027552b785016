"""The work waiting for someone, as lists: a department's open calls, most
urgent first (`/mine` for liaisons and heads), and the command centre's
queue of calls and requests waiting for a decision (`/queue`).

Read-only. Urgency is the deadline of the call's first clock nobody has met
yet, as `workflows.escalation.clocks` defines the clocks — not a rule of its
own. Who may read which list is the caller's question (the handlers ask).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import col, select

from models import (
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    Member,
    OutboxMessage,
    ParticipantRole,
    RequestStatus,
    session_scope,
)
from workflows.context import Context
from workflows.escalation import LimitName, clocks
from workflows.queries import CallView, views_of

S = CallStatus
_NEVER = datetime.max.replace(tzinfo=UTC)
#: A department has something to do while a call is in one of these.
DEPARTMENT_WORK = frozenset({S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS,
                             S.EXTENSION_REQUESTED})


@dataclass(frozen=True)
class Waiting:
    """One call on a department's list: how it is shown, the department's
    part in it, and the clock that runs out next (None: no clock running)."""

    view: CallView
    role: ParticipantRole
    limit: LimitName | None
    due: datetime | None


def next_clock(call: Call) -> tuple[LimitName | None, datetime | None]:
    """The first of the call's clocks that nobody has met, and its deadline."""
    for clock in clocks(call):
        if clock.met_at is None:
            return clock.limit, clock.due
    return None, None


def department_calls(ctx: Context, department_id: int, limit: int = 20) -> list[Waiting]:
    """The department's calls with work to do, as lead or as an assisting
    department that has not acknowledged yet; the nearest deadline first
    (calls without a running clock last, oldest first)."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(Call, CallDepartment)
            .join(CallDepartment, col(CallDepartment.call_id) == col(Call.id))
            .where(CallDepartment.department_id == department_id,
                   col(Call.status).in_(DEPARTMENT_WORK))
        ).all()
        found = []
        for call, part in rows:
            if part.role is ParticipantRole.ASSISTING and part.acknowledged_at is not None:
                continue  # an assisting department's part is done once it acknowledged
            name, due = next_clock(call) if part.role is ParticipantRole.LEAD else (
                LimitName.ACKNOWLEDGE, call.acknowledge_due)
            found.append((call, part.role, name, due))
        found.sort(key=lambda row: (row[3] or _NEVER, row[0].raised_at))
        shown = found[:limit]
        views = views_of(session, [call for call, *_ in shown])
    return [Waiting(view, role, name, due)
            for view, (_, role, name, due) in zip(views, shown, strict=True)]


@dataclass(frozen=True)
class Decision:
    """An item of the command centre's queue: a call to dispatch (`request`
    None) or a department's extension or return request."""

    view: CallView
    request: CallRequest | None
    since: datetime


def dispatch_queue(ctx: Context, limit: int = 20) -> list[Decision]:
    """Calls waiting for the command centre to dispatch them, and pending
    requests; the longest waiting first."""
    with session_scope(ctx.engine) as session:
        pending = session.exec(
            select(CallRequest).where(CallRequest.status == RequestStatus.PENDING)
        ).all()
        requested = {request.call_id for request in pending}
        undispatched = session.exec(
            select(Call).where(Call.status == S.PENDING_DISPATCH)
        ).all()
        items: list[tuple[int, CallRequest | None, datetime]] = [
            (request.call_id, request, request.created_at) for request in pending]
        items += [(call.id or 0, None, call.raised_at) for call in undispatched
                  if call.id not in requested]  # a pending return is shown as the request
        items.sort(key=lambda item: item[2])
        shown = items[:limit]
        rows = {call.id: call for call in session.exec(
            select(Call).where(col(Call.id).in_([call_id for call_id, _, _ in shown])))}
        views = {view.id: view for view in views_of(session, list(rows.values()))}
    return [Decision(views[call_id], request, since) for call_id, request, since in shown]


def left_department(ctx: Context, call_id: int, department_id: int) -> bool:
    """True when the department was alerted to the call but no longer takes
    part in it (the command centre rerouted it, or upheld its return) — so a
    press on the old alert is told where the call went, not just "no"."""
    with session_scope(ctx.engine) as session:
        if session.get(CallDepartment, (call_id, department_id)) is not None:
            return False
        alerted = session.exec(
            select(OutboxMessage.id)
            .join(Member, col(Member.id) == col(OutboxMessage.member_id))
            .where(OutboxMessage.call_id == call_id, OutboxMessage.template == "call_alert",
                   Member.unit_id == department_id)
        ).first()
        return alerted is not None

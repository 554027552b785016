"""What the use cases share: loading the call and the actor under the unit of
work's lock, checking a move against the policy and the lifecycle table, making
it (status, event, notices), routing to a department, and cleaning text.

Every use case in this package opens a unit of work, checks who is acting and
the call's state against `workflows.lifecycle.TRANSITIONS`, changes the call,
appends to the event log, commits and returns the call's view
(`workflows.views`) — or raises a `WorkflowError` and changes nothing. `now`
is always a parameter (aware, any timezone); `by` is a member id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from models import (
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    CatalogItem,
    Event,
    ItemAssistingDepartment,
    ParticipantRole,
    RequestStatus,
    Unit,
    UnitKind,
    unit_of_work,
)
from workflows import access, lifecycle
from workflows.access import Actor
from workflows.context import Context
from workflows.deadlines import DEFAULT_LIMITS, CallLimits, limits_of
from workflows.errors import InvalidInput, NotFound
from workflows.lifecycle import FINAL_STATES, Action, Routing, transition
from workflows.lifecycle import target as lifecycle_target
from workflows.notifications import notify
from workflows.text import clean
from workflows.views import CallView, view_of

MAX_TEXT = 8192  # two Telegram messages: a text the app split in two is still one description
MAX_REASON = 1000
MAX_EXTENSION_DAYS = 30


def clean_text(text: str | None, field: str, *, required: bool, limit: int) -> str | None:
    cleaned = clean(text)  # invisible characters only (zero-width…) count as empty
    if required and not cleaned:
        raise InvalidInput(f"the {field} is empty", reason="empty_text", field=field)
    if len(cleaned) > limit:
        raise InvalidInput(
            f"the {field} has {len(cleaned)} characters, over the limit of {limit}",
            reason="text_too_long",
            field=field,
            limit=limit,
        )
    return cleaned or None


def load_actor(session: Session, member_id: int) -> Actor:
    return access.actor_in(session, member_id)


def load_call(session: Session, call_id: int) -> Call:
    # FOR UPDATE serialises two workers acting on one call (PostgreSQL);
    # SQLite has a single writer anyway and ignores it.
    call = session.get(Call, call_id, with_for_update=True)
    if call is None:
        raise NotFound(f"no call {call_id}", what="call")
    return call


def participants_of(session: Session, call_id: int) -> list[CallDepartment]:
    return list(session.exec(select(CallDepartment).where(CallDepartment.call_id == call_id)))


def check_move(
    session: Session,
    who: Actor,
    action: Action,
    call: Call,
    wanted: CallStatus | None = None,
) -> CallStatus:
    """Refuse unless the policy lets `who` do `action` to `call` now; return
    the status the call moves to."""
    access.require(who, action, access.facts(session, call))
    return lifecycle_target(action, call.status, wanted)


def move(
    ctx: Context,
    session: Session,
    call: Call,
    action: Action,
    target: CallStatus,
    actor: int | None,
    now: datetime,
    note: str | None = None,
    *,
    department_id: int | None = None,
    extension_days: int | None = None,
    **data: Any,
) -> Event:
    """Take `action` to `target`: make the effects the transition table
    declares for it — the requests it supersedes, the departments it gives
    the call to (`department_id`) or takes it from, its clocks (an extension
    by `extension_days`) and moments (`lifecycle.apply`) — change the status,
    append the event it names and queue its notices."""
    effects = transition(action).effects_to(target)
    if effects.supersedes_requests:
        superseded = _supersede_requests(session, call, actor, now, action)
        if superseded:
            data["superseded_requests"] = superseded
    if effects.routing is Routing.DISPATCH:
        if department_id is None:
            raise ValueError(f"{action} to {target} dispatches: name the department")
        _dispatch(session, call, department_id)
    elif effects.routing is Routing.RELEASE:
        _release(session, call)
    limits = limits_for(session, call) if effects.clocks else DEFAULT_LIMITS
    data |= lifecycle.apply(call, effects, now, limits, ctx.rules.calendar, ctx.rules.policy,
                            extension_days)
    event = Event(
        call_id=call.id or 0,
        kind=transition(action).event,
        actor_id=actor,
        at=now,
        from_status=call.status,
        to_status=target,
        note=note,
        data=data,
    )
    call.status = target
    # Any change may start, stop or move a clock: the sweep looks again now
    # and works out the next moment itself (None once the call is over).
    call.next_nudge_at = None if target in FINAL_STATES else now
    session.add(call)
    session.add(event)
    session.flush()
    notify(session, call, event)
    return event


def move_with_note(ctx: Context, call_id: int, by: int, now: datetime, action: Action,
                   note: str | None) -> CallView:
    """The whole unit of work of a transition whose only input is a note
    (respond, reject a fix, withdraw): the actor's move checked, made, and the
    call's view returned."""
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, action, call)
        move(ctx, session, call, action, target, by, now, note=note)
        session.commit()
        return view_of(session, call)


def limits_for(session: Session, call: Call) -> CallLimits:
    item = session.get(CatalogItem, call.item_id) if call.item_id is not None else None
    return limits_of(item)


def _dispatch(session: Session, call: Call, department_id: int) -> None:
    """Give the call to `department_id` as lead, with the item's assisting
    departments (`Routing.DISPATCH`; `lifecycle.apply` starts the clocks)."""
    _release(session, call)
    session.flush()
    session.add(
        CallDepartment(call_id=call.id or 0, department_id=department_id, role=ParticipantRole.LEAD)
    )
    if call.item_id is not None:
        for assist in session.exec(
            select(ItemAssistingDepartment).where(ItemAssistingDepartment.item_id == call.item_id)
        ):
            if assist.department_id != department_id:
                session.add(
                    CallDepartment(
                        call_id=call.id or 0,
                        department_id=assist.department_id,
                        role=ParticipantRole.ASSISTING,
                    )
                )
    call.lead_department_id = department_id


def _release(session: Session, call: Call) -> None:
    """Take the call from its departments (`Routing.RELEASE`)."""
    for participant in participants_of(session, call.id or 0):
        session.delete(participant)
    call.lead_department_id = None


def department_by_code(session: Session, code: str) -> Unit:
    unit = session.exec(select(Unit).where(Unit.code == code)).first()
    if unit is None or unit.kind is not UnitKind.DEPARTMENT:
        raise NotFound(f"no department {code!r}", what="department", code=code)
    return unit


def _supersede_requests(session: Session, call: Call, by: int | None, now: datetime,
                        action: Action) -> list[int]:
    """Close, undecided, the requests still pending on `call` when `action`
    makes them moot (`Effects.supersedes_requests`: `assign`, `withdraw`) — in
    practice a return the department filed: the dispatcher routing the call
    himself has answered it, and a withdrawn call needs no decision. Each
    becomes `SUPERSEDED`, with who moved the call, when, and the action as its
    note, so no queue, board or button asks the dispatcher to decide it any
    more (a press on its old notice is told it no longer needs one). Returns
    their ids, for the event's data. The call's lock (`load_call`) covers
    them: every change to a request is made under it."""
    pending = session.exec(
        select(CallRequest).where(CallRequest.call_id == call.id,
                                  CallRequest.status == RequestStatus.PENDING)
    ).all()
    for request in pending:
        request.status = RequestStatus.SUPERSEDED
        request.decided_by = by
        request.decided_at = now
        request.decision_note = action.value
        session.add(request)
    return [request.id or 0 for request in pending]

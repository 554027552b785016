"""The use cases of the call lifecycle, one function each.

Every function opens a unit of work, checks who is acting and the call's
state against `workflows.lifecycle.TRANSITIONS`, changes the call, appends
to the event log and commits — or raises a `WorkflowError` and changes
nothing. `now` is always a parameter (aware, any timezone); `by` is a member id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from models import (
    AttachmentStage,
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    CatalogItem,
    Event,
    ItemAssistingDepartment,
    ParticipantRole,
    Rating,
    RatingLevel,
    RequestKind,
    RequestStatus,
    Unit,
    UnitKind,
    next_counter,
    session_scope,
    unit_of_work,
)
from workflows import access
from workflows.access import Actor
from workflows.context import Context
from workflows.deadlines import (
    CallLimits,
    after_working_days,
    due_at,
    extend,
    limits_of,
    reopened_due,
)
from workflows.errors import InvalidInput, NotAllowed, NotFound, WrongState
from workflows.lifecycle import FINAL_STATES, Action, Party, transition
from workflows.lifecycle import target as lifecycle_target
from workflows.notifications import notify
from workflows.photos import Photo, attach_photos
from workflows.text import clean

MAX_TEXT = 8192  # two Telegram messages: a text the app split in two is still one description
MAX_REASON = 1000
MAX_EXTENSION_DAYS = 30


# --- helpers shared by the use cases -------------------------------------


def _clean_text(text: str | None, field: str, *, required: bool, limit: int) -> str | None:
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


def _actor(session: Session, member_id: int) -> Actor:
    return access.actor_in(session, member_id)


def _call(session: Session, call_id: int) -> Call:
    # FOR UPDATE serialises two workers acting on one call (PostgreSQL);
    # SQLite has a single writer anyway and ignores it.
    call = session.get(Call, call_id, with_for_update=True)
    if call is None:
        raise NotFound(f"no call {call_id}", what="call")
    return call


def _participants(session: Session, call_id: int) -> list[CallDepartment]:
    return list(session.exec(select(CallDepartment).where(CallDepartment.call_id == call_id)))


def _check(
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


def _move(
    session: Session,
    call: Call,
    action: Action,
    target: CallStatus,
    actor: int | None,
    now: datetime,
    note: str | None = None,
    **data: Any,
) -> Event:
    """Change the status and append the event named by the transition table."""
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


def _limits(session: Session, call: Call) -> CallLimits:
    item = session.get(CatalogItem, call.item_id) if call.item_id is not None else None
    return limits_of(item)


def _dispatch(
    ctx: Context, session: Session, call: Call, department_id: int, now: datetime
) -> None:
    """Give the call to `department_id` (plus the item's assisting departments)
    and start its three clocks from `now`."""
    for participant in _participants(session, call.id or 0):
        session.delete(participant)
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
    limits = _limits(session, call)
    rules = ctx.rules
    call.lead_department_id = department_id
    call.dispatched_at = now
    call.acknowledged_at = call.responded_at = None
    call.acknowledge_due = due_at(now, limits.acknowledge, rules.calendar, rules.policy)
    call.respond_due = due_at(now, limits.respond, rules.calendar, rules.policy)
    call.resolve_due = due_at(now, limits.resolve, rules.calendar, rules.policy)


def _department(session: Session, code: str) -> Unit:
    unit = session.exec(select(Unit).where(Unit.code == code)).first()
    if unit is None or unit.kind is not UnitKind.DEPARTMENT:
        raise NotFound(f"no department {code!r}", what="department", code=code)
    return unit


def call_number(prefix: str, year: int, sequence: int) -> str:
    """The readable number of a call, e.g. BY-2026-000123."""
    return f"{prefix}-{year}-{sequence:06d}"


# --- raising and routing ---------------------------------------------------


def raise_call(
    ctx: Context,
    caller_id: int,
    now: datetime,
    text: str,
    item_code: str | None = None,
    location_text: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    photos: Sequence[Photo] = (),
    source: str | None = None,
) -> Call:
    """A caller (town/street or village cadre) raises a call. It is routed at
    once: to the item's lead department, or to the dispatcher when no item
    was chosen ("not sure"). `source` names the system that raised it for the
    caller (an Open311 key, acting through its own caller member; see
    `workflows.sources`), None from chat."""
    body = _clean_text(text, "description", required=True, limit=MAX_TEXT)
    place = _clean_text(location_text, "location", required=False, limit=500)
    if (latitude is None) != (longitude is None):
        raise InvalidInput("a location needs both latitude and longitude", reason="bad_location")
    if (
        latitude is not None
        and longitude is not None
        and not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput("latitude or longitude out of range", reason="bad_location")
    with unit_of_work(ctx.engine) as session:
        caller = _actor(session, caller_id)
        if not access.may(caller, access.Permission.RAISE_CALL):
            raise NotAllowed(f"member {caller_id} may not raise calls", action="raise")
        item = None
        if item_code is not None:
            item = session.exec(select(CatalogItem).where(CatalogItem.code == item_code)).first()
            if item is None or not item.active:
                raise NotFound(f"no catalog item {item_code!r}", what="item", code=item_code)
        year = now.astimezone(ctx.rules.tz).year
        sequence = next_counter(session, f"call-{year}")
        call = Call(
            number=call_number(ctx.rules.call_prefix, year, sequence),
            caller_id=caller_id,
            unit_id=caller.unit_id,
            item_id=item.id if item else None,
            domain_id=item.domain_id if item else None,
            text=body or "",
            location_text=place,
            latitude=latitude,
            longitude=longitude,
            status=CallStatus.RAISED,
            raised_at=now,
            source=source,
        )
        session.add(call)
        session.flush()
        attachments = attach_photos(
            session,
            ctx.media,
            call.id or 0,
            list(photos),
            AttachmentStage.RAISE,
            caller_id,
            now,
            ctx.rules.max_photo_bytes,
        )
        session.add(
            Event(
                call_id=call.id or 0,
                kind="CallRaised",
                actor_id=caller_id,
                at=now,
                to_status=CallStatus.RAISED,
                note=body,
                data={"attachments": [a.sha256 for a in attachments], "item": item_code,
                      **({"source": source} if source else {})},
            )
        )
        if item is None:
            _move(session, call, Action.SEND_TO_DISPATCHER, CallStatus.PENDING_DISPATCH, None, now)
        else:
            _dispatch(ctx, session, call, item.lead_department_id, now)
            _move(
                session,
                call,
                Action.ROUTE,
                CallStatus.DISPATCHED,
                None,
                now,
                department=item.lead_department_id,
            )
        session.commit()
        return call


def assign(ctx: Context, call_id: int, by: int, now: datetime, department_code: str) -> Call:
    """A dispatcher (or admin) routes a call the catalog could not route, or
    reroutes one nobody has acknowledged yet. The department's clocks start now."""
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.ASSIGN, call)
        department = _department(session, department_code)
        _dispatch(ctx, session, call, department.id or 0, now)
        _move(session, call, Action.ASSIGN, target, by, now, department=department.code)
        session.commit()
        return call


# --- the department's side ---------------------------------------------------


def acknowledge(ctx: Context, call_id: int, by: int, now: datetime) -> Call:
    """A liaison or head of a department taking part acknowledges (签收). The
    lead's acknowledgement moves the call on; an assisting department's is
    recorded for its own deadline. Pressing twice is refused."""
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        subject = access.facts(session, call)
        action = (
            Action.ACKNOWLEDGE_AS_ASSISTING
            if Party.ASSISTING_DEPARTMENT in access.parties(member, subject)
            else Action.ACKNOWLEDGE
        )
        access.require(member, action, subject)
        target = lifecycle_target(action, call.status)
        participant = session.get(CallDepartment, (call.id, member.unit_id))
        assert participant is not None
        if participant.acknowledged_at is not None:
            raise WrongState(
                f"{call.number} is already acknowledged",
                action=action.value,
                number=call.number,
                status="acknowledged",
            )
        participant.acknowledged_at = now
        participant.acknowledged_by = by
        session.add(participant)
        if action is Action.ACKNOWLEDGE:
            call.acknowledged_at = now
        _move(session, call, action, target, by, now, department=member.unit_id)
        session.commit()
        return call


def respond(ctx: Context, call_id: int, by: int, now: datetime, note: str) -> Call:
    """The lead department responds (响应): says what it is doing about it."""
    text = _clean_text(note, "response", required=True, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.RESPOND, call)
        call.responded_at = now
        _move(session, call, Action.RESPOND, target, by, now, note=text)
        session.commit()
        return call


def request_extension(
    ctx: Context, call_id: int, by: int, now: datetime, days: int, reason: str
) -> CallRequest:
    """The lead department asks the dispatcher for `days` more working days."""
    text = _clean_text(reason, "reason", required=True, limit=MAX_REASON)
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(
            f"an extension is 1 to {MAX_EXTENSION_DAYS} working days",
            reason="bad_days",
            limit=MAX_EXTENSION_DAYS,
        )
    return _file_request(ctx, call_id, by, now, RequestKind.EXTENSION, text or "", days)


def return_call(ctx: Context, call_id: int, by: int, now: datetime, reason: str) -> CallRequest:
    """The lead department returns a call it believes misrouted (退回), with a
    reason; it waits for the dispatcher's decision."""
    text = _clean_text(reason, "reason", required=True, limit=MAX_REASON)
    return _file_request(ctx, call_id, by, now, RequestKind.RETURN, text or "")


def _file_request(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    kind: RequestKind,
    reason: str,
    days: int | None = None,
) -> CallRequest:
    """The lead department asks the dispatcher for something: the request
    row and the call's move, in one transaction."""
    action = Action.REQUEST_EXTENSION if kind is RequestKind.EXTENSION else Action.RETURN
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, action, call)
        request = CallRequest(
            call_id=call_id,
            kind=kind,
            department_id=member.unit_id,
            requested_by=by,
            days=days,
            reason=reason,
            from_status=call.status,
            created_at=now,
        )
        session.add(request)
        session.flush()
        extra = {"days": days} if days is not None else {}
        _move(session, call, action, target, by, now, note=reason, request=request.id, **extra)
        session.commit()
        return request


def resolve(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    note: str | None = None,
    photos: Sequence[Photo] = (),
) -> Call:
    """The lead department resolves the call (办结) with at least one evidence
    photo or a written reason."""
    text = _clean_text(note, "resolution note", required=False, limit=MAX_REASON)
    if not photos and not text:
        raise InvalidInput(
            "a resolution needs an evidence photo or a reason", reason="evidence_required"
        )
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.RESOLVE, call)
        attachments = attach_photos(
            session,
            ctx.media,
            call_id,
            list(photos),
            AttachmentStage.EVIDENCE,
            by,
            now,
            ctx.rules.max_photo_bytes,
        )
        call.resolved_at = now
        _move(
            session,
            call,
            Action.RESOLVE,
            target,
            by,
            now,
            note=text,
            attachments=[a.sha256 for a in attachments],
        )
        session.commit()
        return call


# --- the dispatcher's decisions ---------------------------------------------


def _pending_request(session: Session, request_id: int) -> CallRequest:
    request = session.get(CallRequest, request_id, with_for_update=True)
    if request is None:
        raise NotFound(f"no request {request_id}", what="request")
    if request.status is not RequestStatus.PENDING:
        raise WrongState(
            f"request {request_id} is already {request.status}",
            status=request.status.value,
            number=str(request_id),
        )
    return request


def _decide(request: CallRequest, by: int, now: datetime, approved: bool, note: str | None) -> None:
    request.status = RequestStatus.APPROVED if approved else RequestStatus.REFUSED
    request.decided_by = by
    request.decided_at = now
    request.decision_note = note


def decide_extension(
    ctx: Context, request_id: int, by: int, now: datetime, approve: bool, note: str | None = None
) -> Call:
    """A dispatcher grants or refuses an extension. Granted, the resolve
    deadline moves by the requested working days; either way work goes on."""
    text = _clean_text(note, "note", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member = _actor(session, by)
        request = _pending_request(session, request_id)
        if request.kind is not RequestKind.EXTENSION:
            raise InvalidInput(f"request {request_id} is not an extension", reason="wrong_request")
        call = _call(session, request.call_id)
        action = Action.GRANT_EXTENSION if approve else Action.REFUSE_EXTENSION
        target = _check(session, member, action, call)
        _decide(request, by, now, approve, text)
        if approve and call.resolve_due is not None:
            before = call.resolve_due
            call.resolve_due = extend(
                before, request.days or 0, ctx.rules.calendar, ctx.rules.policy
            )
            _move(
                session,
                call,
                action,
                target,
                by,
                now,
                note=text,
                request=request_id,
                resolve_due_before=before.isoformat(),
                resolve_due=call.resolve_due.isoformat(),
            )
        else:
            _move(session, call, action, target, by, now, note=text, request=request_id)
        session.add(request)
        session.commit()
        return call


def decide_return(
    ctx: Context,
    request_id: int,
    by: int,
    now: datetime,
    uphold: bool,
    department_code: str | None = None,
    note: str | None = None,
) -> Call:
    """A dispatcher decides a return. Upheld, the call leaves the department
    (and its figures): rerouted to `department_code` at once, or left pending
    for `assign`. Refused, it goes back to the department as it was, with its
    deadlines unchanged — the clock kept running."""
    text = _clean_text(note, "note", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member = _actor(session, by)
        request = _pending_request(session, request_id)
        if request.kind is not RequestKind.RETURN:
            raise InvalidInput(f"request {request_id} is not a return", reason="wrong_request")
        call = _call(session, request.call_id)
        if not uphold:
            target = _check(session, member, Action.REFUSE_RETURN, call, request.from_status)
            _decide(request, by, now, False, text)
            _move(
                session, call, Action.REFUSE_RETURN, target, by, now, note=text, request=request_id
            )
        else:
            new_department = _department(session, department_code) if department_code else None
            if new_department is not None and new_department.id == request.department_id:
                raise InvalidInput(
                    "an upheld return goes to another department", reason="same_department"
                )
            target = _check(
                session,
                member,
                Action.UPHOLD_RETURN,
                call,
                CallStatus.DISPATCHED if new_department else CallStatus.PENDING_DISPATCH,
            )
            _decide(request, by, now, True, text)
            if new_department is not None:
                _dispatch(ctx, session, call, new_department.id or 0, now)
            else:
                for participant in _participants(session, call.id or 0):
                    session.delete(participant)
                call.lead_department_id = None
                call.acknowledge_due = call.respond_due = call.resolve_due = None
                call.acknowledged_at = call.responded_at = None
            _move(
                session,
                call,
                Action.UPHOLD_RETURN,
                target,
                by,
                now,
                note=text,
                request=request_id,
                department=new_department.code if new_department else None,
            )
        session.add(request)
        session.commit()
        return call


def decide_request(
    ctx: Context,
    request_id: int,
    by: int,
    now: datetime,
    approve: bool,
    department_code: str | None = None,
    note: str | None = None,
) -> Call:
    """`/approve` and `/refuse`: decide an extension or a return by its id."""
    with session_scope(ctx.engine) as session:
        request = session.get(CallRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        kind = request.kind
    if kind is RequestKind.EXTENSION:
        return decide_extension(ctx, request_id, by, now, approve, note)
    return decide_return(ctx, request_id, by, now, approve, department_code, note)


# --- the caller's side ---------------------------------------------------------


def confirm(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    level: RatingLevel,
    comment: str | None = None,
) -> Call:
    """The caller confirms the fix and rates the department (评价); the call closes."""
    text = _clean_text(comment, "comment", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.CONFIRM, call)
        call.closed_at = now
        session.add(
            Rating(call_id=call_id, by_id=by, level=level, score=level.score, comment=text, at=now)
        )
        _move(session, call, Action.CONFIRM, target, by, now, note=text, rating=level.value)
        session.commit()
        return call


def reject_fix(ctx: Context, call_id: int, by: int, now: datetime, reason: str) -> Call:
    """The caller says it is not fixed: the call reopens with the time that was
    left when it was resolved, counted in working time for a working-day limit
    (`deadlines.reopened_due`; none left → due at once, so escalation goes on)."""
    text = _clean_text(reason, "reason", required=True, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.REJECT_FIX, call)
        if call.resolve_due is not None and call.resolved_at is not None:
            call.resolve_due = reopened_due(
                call.resolve_due, call.resolved_at, now, _limits(session, call).resolve.unit,
                ctx.rules.calendar, ctx.rules.policy,
            )
        call.resolved_at = None
        _move(
            session,
            call,
            Action.REJECT_FIX,
            target,
            by,
            now,
            note=text,
            resolve_due=call.resolve_due.isoformat() if call.resolve_due else None,
        )
        session.commit()
        return call


def add_info(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    text: str | None = None,
    photos: Sequence[Photo] = (),
) -> Call:
    """The caller adds information (补充信息) — words, photos or both — to an
    open call; the department (or the dispatcher, before dispatch) is told."""
    note = _clean_text(text, "description", required=False, limit=MAX_TEXT)
    if not note and not photos:
        raise InvalidInput("added information needs words or a photo", reason="empty_text",
                           field="description")
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.ADD_INFO, call)
        attachments = attach_photos(
            session, ctx.media, call_id, list(photos), AttachmentStage.RAISE, by, now,
            ctx.rules.max_photo_bytes,
        )
        _move(session, call, Action.ADD_INFO, target, by, now, note=note,
              attachments=[a.sha256 for a in attachments])
        session.commit()
        return call


def withdraw(ctx: Context, call_id: int, by: int, now: datetime, reason: str | None = None) -> Call:
    """The caller withdraws a call nobody has acknowledged yet."""
    text = _clean_text(reason, "reason", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member, call = _actor(session, by), _call(session, call_id)
        target = _check(session, member, Action.WITHDRAW, call)
        call.closed_at = now
        _move(session, call, Action.WITHDRAW, target, by, now, note=text)
        session.commit()
        return call


def auto_close_due(ctx: Context, now: datetime) -> list[Call]:
    """Close, unrated, every resolved call whose caller has not answered within
    `auto_close_after_days` working days of the resolution (system action)."""
    rules = ctx.rules
    closed: list[Call] = []
    with unit_of_work(ctx.engine) as session:
        # N working days are at least N calendar days: the database skips the
        # calls resolved too recently to matter, the calendar decides the rest.
        resolved = session.exec(
            select(Call)
            .where(Call.status == CallStatus.RESOLVED,
                   col(Call.resolved_at) <= now - timedelta(days=rules.auto_close_after_days))
            .with_for_update(skip_locked=True)
        ).all()
        for call in resolved:
            assert call.resolved_at is not None
            deadline = after_working_days(
                call.resolved_at, rules.auto_close_after_days, rules.calendar, rules.policy
            )
            if deadline > now:
                continue
            target = lifecycle_target(Action.AUTO_CLOSE, call.status)
            call.closed_at = now
            call.auto_closed = True
            _move(
                session,
                call,
                Action.AUTO_CLOSE,
                target,
                None,
                now,
                waited_days=rules.auto_close_after_days,
            )
            closed.append(call)
        session.commit()
    return closed

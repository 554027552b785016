"""The dispatcher's decisions on the requests a department filed: grant or
refuse an extension, uphold or refuse a return. Each returns the view of the
call, not of the request: what the dispatcher is told next is about the call
(its number, the department it is with now, or that it waits for `/assign`);
the request is the one they named."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from models import (
    Call,
    CallRequest,
    CallStatus,
    RequestKind,
    RequestStatus,
    session_scope,
    unit_of_work,
)
from workflows.calls._shared import (
    MAX_REASON,
    check_move,
    clean_text,
    department_by_code,
    load_actor,
    load_call,
    move,
)
from workflows.context import Context
from workflows.errors import InvalidInput, NotFound, WrongState
from workflows.lifecycle import Action
from workflows.views import CallView, view_of


def _pending_request(session: Session, request_id: int) -> tuple[CallRequest, Call]:
    """The pending request `request_id` and its call, locked. The call is
    locked first and the request read again under that lock, as every use case
    that changes a request does (`assign` and `withdraw` supersede one): one
    lock order, so two of them cannot deadlock on PostgreSQL."""
    request = session.get(CallRequest, request_id)
    if request is None:
        raise NotFound(f"no request {request_id}", what="request")
    call = load_call(session, request.call_id)
    session.refresh(request)
    if request.status is not RequestStatus.PENDING:
        raise WrongState(
            f"request {request_id} is already {request.status}",
            status=request.status.value,
            number=str(request_id),
        )
    return request, call


def _decide(request: CallRequest, by: int, now: datetime, approved: bool, note: str | None) -> None:
    request.status = RequestStatus.APPROVED if approved else RequestStatus.REFUSED
    request.decided_by = by
    request.decided_at = now
    request.decision_note = note


def decide_extension(
    ctx: Context, request_id: int, by: int, now: datetime, approve: bool, note: str | None = None
) -> CallView:
    """A dispatcher grants or refuses an extension. Granted, the resolve
    deadline moves by the requested working days; either way work goes on."""
    text = clean_text(note, "note", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member = load_actor(session, by)
        request, call = _pending_request(session, request_id)
        if request.kind is not RequestKind.EXTENSION:
            raise InvalidInput(f"request {request_id} is not an extension", reason="wrong_request")
        action = Action.GRANT_EXTENSION if approve else Action.REFUSE_EXTENSION
        target = check_move(session, member, action, call)
        _decide(request, by, now, approve, text)
        move(ctx, session, call, action, target, by, now, note=text, request=request_id,
             extension_days=request.days)
        session.add(request)
        session.commit()
        return view_of(session, call)


def decide_return(
    ctx: Context,
    request_id: int,
    by: int,
    now: datetime,
    uphold: bool,
    department_code: str | None = None,
    note: str | None = None,
) -> CallView:
    """A dispatcher decides a return. Upheld, the call leaves the department
    (and its figures): rerouted to `department_code` at once, or left pending
    for `assign`. Refused, it goes back to the department as it was, with its
    deadlines unchanged — the clock kept running."""
    text = clean_text(note, "note", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member = load_actor(session, by)
        request, call = _pending_request(session, request_id)
        if request.kind is not RequestKind.RETURN:
            raise InvalidInput(f"request {request_id} is not a return", reason="wrong_request")
        if not uphold:
            target = check_move(session, member, Action.REFUSE_RETURN, call, request.from_status)
            _decide(request, by, now, False, text)
            move(ctx, session, call, Action.REFUSE_RETURN, target, by, now, note=text,
                 request=request_id)
        else:
            new_department = (
                department_by_code(session, department_code) if department_code else None
            )
            if new_department is not None and new_department.id == request.department_id:
                raise InvalidInput(
                    "an upheld return goes to another department", reason="same_department"
                )
            target = check_move(
                session,
                member,
                Action.UPHOLD_RETURN,
                call,
                CallStatus.DISPATCHED if new_department else CallStatus.PENDING_DISPATCH,
            )
            _decide(request, by, now, True, text)
            move(
                ctx,
                session,
                call,
                Action.UPHOLD_RETURN,
                target,
                by,
                now,
                note=text,
                request=request_id,
                department_id=new_department.id if new_department else None,
                department=new_department.code if new_department else None,
            )
        session.add(request)
        session.commit()
        return view_of(session, call)


def decide_request(
    ctx: Context,
    request_id: int,
    by: int,
    now: datetime,
    approve: bool,
    department_code: str | None = None,
    note: str | None = None,
) -> CallView:
    """`/approve` and `/refuse`: decide an extension or a return by its id."""
    with session_scope(ctx.engine) as session:
        request = session.get(CallRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        kind = request.kind
    if kind is RequestKind.EXTENSION:
        return decide_extension(ctx, request_id, by, now, approve, note)
    return decide_return(ctx, request_id, by, now, approve, department_code, note)


"""The department's actions on a call it takes part in: acknowledge (签收),
respond (响应), resolve (办结), and the requests it files with the dispatcher —
an extension (延期) or a return (退回)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from models import (
    AttachmentStage,
    CallDepartment,
    CallRequest,
    RequestKind,
    unit_of_work,
)
from workflows import access
from workflows.calls._shared import (
    MAX_EXTENSION_DAYS,
    MAX_REASON,
    check_move,
    clean_text,
    load_actor,
    load_call,
    move,
    move_with_note,
)
from workflows.context import Context
from workflows.errors import InvalidInput, WrongState
from workflows.lifecycle import Action, Party
from workflows.lifecycle import target as lifecycle_target
from workflows.photos import Photo, attach_photos
from workflows.views import CallRequestView, CallView, request_view_of, view_of


def acknowledge(ctx: Context, call_id: int, by: int, now: datetime) -> CallView:
    """A liaison or head of a department taking part acknowledges (签收). The
    lead's acknowledgement moves the call on; an assisting department's is
    recorded for its own deadline. Pressing twice is refused."""
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
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
        move(ctx, session, call, action, target, by, now, department=member.unit_id)
        session.commit()
        return view_of(session, call)


def respond(ctx: Context, call_id: int, by: int, now: datetime, note: str) -> CallView:
    """The lead department responds (响应): says what it is doing about it."""
    text = clean_text(note, "response", required=True, limit=MAX_REASON)
    return move_with_note(ctx, call_id, by, now, Action.RESPOND, text)


def request_extension(
    ctx: Context, call_id: int, by: int, now: datetime, days: int, reason: str
) -> CallRequestView:
    """The lead department asks the dispatcher for `days` more working days."""
    text = clean_text(reason, "reason", required=True, limit=MAX_REASON)
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(
            f"an extension is 1 to {MAX_EXTENSION_DAYS} working days",
            reason="bad_days",
            limit=MAX_EXTENSION_DAYS,
        )
    return _file_request(ctx, call_id, by, now, RequestKind.EXTENSION, text or "", days)


def return_call(ctx: Context, call_id: int, by: int, now: datetime, reason: str) -> CallRequestView:
    """The lead department returns a call it believes misrouted (退回), with a
    reason; it waits for the dispatcher's decision."""
    text = clean_text(reason, "reason", required=True, limit=MAX_REASON)
    return _file_request(ctx, call_id, by, now, RequestKind.RETURN, text or "")


def _file_request(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    kind: RequestKind,
    reason: str,
    days: int | None = None,
) -> CallRequestView:
    """The lead department asks the dispatcher for something: the request
    row and the call's move, in one transaction. Returns the request's view,
    which carries the call's (`CallRequestView`)."""
    action = Action.REQUEST_EXTENSION if kind is RequestKind.EXTENSION else Action.RETURN
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, action, call)
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
        move(ctx, session, call, action, target, by, now, note=reason, request=request.id,
             **extra)
        session.commit()
        return request_view_of(session, request, call)


def resolve(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    note: str | None = None,
    photos: Sequence[Photo] = (),
) -> CallView:
    """The lead department resolves the call (办结) with at least one evidence
    photo or a written reason."""
    text = clean_text(note, "resolution note", required=False, limit=MAX_REASON)
    if not photos and not text:
        raise InvalidInput(
            "a resolution needs an evidence photo or a reason", reason="evidence_required"
        )
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, Action.RESOLVE, call)
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
        move(
            ctx,
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
        return view_of(session, call)


"""Who hears about what: each event of a call queues outbox messages, in the
same transaction as the event, so a change and its notice commit together.

Templates and their parameters (rendered per member language by the
conversations in `handlers/`; every message also has `call_id` on the row):

| template | to | params |
|---|---|---|
| call_alert | liaisons of the lead and assisting departments | number, role (lead/assisting) |
| call_pending_dispatch | dispatchers | number |
| call_progress | the caller | number, event, note |
| call_resolved | the caller (asks to confirm or reject) | number, note |
| fix_rejected | liaisons of the lead department | number, note |
| request_pending | dispatchers | number, request_id, kind, days, note |
| request_decided | the requesting department | number, request_id, kind, approved, note |
| call_closed | liaisons of the lead department | number, rating, auto |
| call_withdrawn | liaisons of the lead department | number, note |
| call_info_added | the lead department, or dispatchers | number, note, photos |
| nudge | by step (`workflows.sweep`) | number, limit, step, repeat, due, event_id, |
| | | supervision_number |
| undeliverable | dispatchers (`workflows.outbox`) | member, about (the template), reason |
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models import (
    Call,
    CallDepartment,
    CallRequest,
    Event,
    Member,
    OutboxMessage,
    ParticipantRole,
    Role,
)
from workflows.access import DISPATCHER_ROLES
from workflows.lifecycle import Action, transition


def department_contacts(session: Session, department_id: int) -> list[Member]:
    """The department's active liaisons; its head when it has none, so a
    department without a liaison is never silently unreachable."""
    members = list(session.exec(
        select(Member).where(Member.unit_id == department_id, col(Member.active).is_(True))
        .order_by(col(Member.id))
    ))
    liaisons = [m for m in members if m.role is Role.LIAISON]
    return liaisons or [m for m in members if m.role is Role.HEAD]


def dispatchers(session: Session) -> list[Member]:
    """Active dispatchers; admins when there is no dispatcher."""
    members = list(session.exec(
        select(Member).where(col(Member.role).in_(DISPATCHER_ROLES), col(Member.active).is_(True))
        .order_by(col(Member.id))
    ))
    proper = [m for m in members if m.role is Role.DISPATCHER]
    return proper or members


def enqueue(
    session: Session,
    key: str,
    member_id: int,
    template: str,
    now: datetime,
    call_id: int | None = None,
    not_before: datetime | None = None,
    **params: Any,
) -> None:
    """Queue one message unless a message with `key` exists (idempotent)."""
    exists = session.exec(select(OutboxMessage.id).where(OutboxMessage.key == key)).first()
    if exists is not None:
        return
    session.add(OutboxMessage(
        key=key, member_id=member_id, call_id=call_id, template=template, params=params,
        created_at=now, not_before=not_before or now,
    ))


_EVENT = {action: transition(action).event for action in Action}
_PROGRESS = {_EVENT[a] for a in (Action.ACKNOWLEDGE, Action.RESPOND, Action.ASSIGN,
                                 Action.GRANT_EXTENSION, Action.UPHOLD_RETURN,
                                 Action.REFUSE_RETURN)}


def notify(session: Session, call: Call, event: Event) -> None:
    """Queue the messages `event` calls for. `event` must be flushed (has an id)."""
    now = event.at

    def send(members: list[Member], template: str, **params: Any) -> None:
        for member in members:
            enqueue(session, f"event:{event.id}:{member.id}:{template}", member.id or 0,
                    template, now, call_id=call.id, number=call.number, **params)

    def lead_contacts() -> list[Member]:
        return department_contacts(session, call.lead_department_id or 0)

    caller = session.get(Member, call.caller_id)
    # A system member (an Open311 source) has no chat to be told in.
    callers = [caller] if caller is not None and caller.active and not caller.system else []
    kind = event.kind
    if kind in (_EVENT[Action.ROUTE], _EVENT[Action.ASSIGN]) or (
        kind == _EVENT[Action.UPHOLD_RETURN] and call.lead_department_id is not None
    ):
        participants = session.exec(
            select(CallDepartment).where(CallDepartment.call_id == call.id)
        ).all()
        # The lead first: its liaisons are the ones who must act.
        for participant in sorted(participants, key=lambda p: p.role is not ParticipantRole.LEAD):
            send(department_contacts(session, participant.department_id), "call_alert",
                 role=participant.role.value)
    if kind == _EVENT[Action.SEND_TO_DISPATCHER] or (
        kind == _EVENT[Action.UPHOLD_RETURN] and call.lead_department_id is None
    ):
        send(dispatchers(session), "call_pending_dispatch")
    if kind in _PROGRESS:
        send(callers, "call_progress", event=kind, note=event.note)
    if kind == _EVENT[Action.RESOLVE]:
        send(callers, "call_resolved", note=event.note)
    if kind == _EVENT[Action.REJECT_FIX]:
        send(lead_contacts(), "fix_rejected", note=event.note)
    if kind in (_EVENT[Action.REQUEST_EXTENSION], _EVENT[Action.RETURN]):
        request = session.get(CallRequest, event.data.get("request"))
        if request is not None:
            send(dispatchers(session), "request_pending", request_id=request.id,
                 kind=request.kind.value, days=request.days, note=request.reason)
    if kind in (_EVENT[Action.GRANT_EXTENSION], _EVENT[Action.REFUSE_EXTENSION],
                _EVENT[Action.UPHOLD_RETURN], _EVENT[Action.REFUSE_RETURN]):
        request = session.get(CallRequest, event.data.get("request"))
        if request is not None:
            send(department_contacts(session, request.department_id), "request_decided",
                 request_id=request.id, kind=request.kind.value,
                 approved=kind in (_EVENT[Action.GRANT_EXTENSION], _EVENT[Action.UPHOLD_RETURN]),
                 note=event.note)
    if kind in (_EVENT[Action.CONFIRM], _EVENT[Action.AUTO_CLOSE]):
        send(lead_contacts(), "call_closed", rating=event.data.get("rating"),
             auto=kind == _EVENT[Action.AUTO_CLOSE])
        if kind == _EVENT[Action.AUTO_CLOSE]:
            send(callers, "call_progress", event=kind, note=None)
    if kind == _EVENT[Action.ADD_INFO]:
        send(lead_contacts() if call.lead_department_id else dispatchers(session),
             "call_info_added", note=event.note, photos=event.data.get("attachments", []))
    if kind == _EVENT[Action.WITHDRAW] and call.lead_department_id is not None:
        send(lead_contacts(), "call_withdrawn", note=event.note)


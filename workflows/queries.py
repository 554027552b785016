"""Read-only questions the conversations ask: who is this, what is this call,
which calls are mine, overdue, or match some words. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, or_, select

from models import (
    Attachment,
    AttachmentStage,
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    CatalogItem,
    Domain,
    Event,
    Member,
    ParticipantRole,
    Rating,
    RequestStatus,
    SourceEvent,
    Unit,
    UnitKind,
    session_scope,
)
from workflows import access, accounts
from workflows.context import Context
from workflows.errors import NotFound
from workflows.facts import late_calls
from workflows.lifecycle import Action


def member_by_platform(ctx: Context, channel: str, platform_id: str) -> Member | None:
    """The active member behind a platform account: a Telegram user id, a
    WeCom user id, or on the console a member code. None for a stranger."""
    return accounts.member_by_account(ctx, channel, platform_id)


def member(ctx: Context, member_id: int) -> Member | None:
    with session_scope(ctx.engine) as session:
        return session.get(Member, member_id)


def domains(ctx: Context) -> list[Domain]:
    """Domains that have at least one active item, in the order set up."""
    with session_scope(ctx.engine) as session:
        used = select(CatalogItem.domain_id).where(col(CatalogItem.active).is_(True))
        return list(session.exec(
            select(Domain).where(col(Domain.id).in_(used)).order_by(col(Domain.id))
        ))


def domain(ctx: Context, domain_id: int) -> Domain | None:
    with session_scope(ctx.engine) as session:
        return session.get(Domain, domain_id)


def items(ctx: Context, domain_id: int) -> list[CatalogItem]:
    with session_scope(ctx.engine) as session:
        return list(session.exec(
            select(CatalogItem)
            .where(CatalogItem.domain_id == domain_id, col(CatalogItem.active).is_(True))
            .order_by(col(CatalogItem.id))
        ))


def item(ctx: Context, item_id: int) -> CatalogItem | None:
    with session_scope(ctx.engine) as session:
        return session.get(CatalogItem, item_id)


def departments(ctx: Context) -> list[Unit]:
    with session_scope(ctx.engine) as session:
        return list(session.exec(
            select(Unit).where(Unit.kind == UnitKind.DEPARTMENT).order_by(col(Unit.code))
        ))


@dataclass(frozen=True)
class CallView:
    """Everything a message about a call shows, loaded at once."""

    id: int
    number: str
    status: CallStatus
    text: str
    caller_id: int
    caller_name: str
    unit_name: str
    item_name: str | None
    domain_name: str | None
    emergency: bool
    lead_department_id: int | None
    lead_department: str | None
    assisting_departments: tuple[str, ...]
    assisting_department_ids: tuple[int, ...]
    location_text: str | None
    latitude: float | None
    longitude: float | None
    raised_at: datetime
    acknowledge_due: datetime | None
    respond_due: datetime | None
    resolve_due: datetime | None
    supervision_number: str | None
    raise_photos: tuple[str, ...]
    evidence_photos: tuple[str, ...]
    resolution_note: str | None
    rating: str | None
    source: str | None = None  # the system that raised it (Open311), None from chat
    source_media_error: str | None = None  # why its media_url gave no photo


def _unit_name(session: Session, unit_id: int | None) -> str | None:
    unit = session.get(Unit, unit_id) if unit_id is not None else None
    return unit.name if unit is not None else None


def _view(session: Session, call: Call) -> CallView:
    caller = session.get(Member, call.caller_id)
    item_row = session.get(CatalogItem, call.item_id) if call.item_id is not None else None
    domain_row = session.get(Domain, call.domain_id) if call.domain_id is not None else None
    assisting = session.exec(
        select(Unit.id, Unit.name)
        .join(CallDepartment, col(CallDepartment.department_id) == col(Unit.id))
        .where(CallDepartment.call_id == call.id,
               CallDepartment.role == ParticipantRole.ASSISTING)
        .order_by(col(Unit.code))
    ).all()
    photos = session.exec(
        select(Attachment).where(Attachment.call_id == call.id).order_by(col(Attachment.id))
    ).all()
    resolved = session.exec(
        select(Event).where(Event.call_id == call.id, Event.kind == "CallResolved")
        .order_by(col(Event.id).desc())
    ).first()
    rating = session.exec(select(Rating).where(Rating.call_id == call.id)).first()
    media_error = session.exec(
        select(SourceEvent.media_error).where(SourceEvent.call_id == call.id,
                                              col(SourceEvent.media_error).is_not(None))
        .order_by(col(SourceEvent.id))
    ).first() if call.source else None
    return CallView(
        id=call.id or 0,
        number=call.number,
        status=call.status,
        text=call.text,
        caller_id=call.caller_id,
        caller_name=caller.name if caller else "?",
        unit_name=_unit_name(session, call.unit_id) or "?",
        item_name=item_row.name if item_row else None,
        domain_name=domain_row.name if domain_row else None,
        emergency=bool(domain_row and domain_row.emergency),
        lead_department_id=call.lead_department_id,
        lead_department=_unit_name(session, call.lead_department_id),
        assisting_departments=tuple(name for _, name in assisting),
        assisting_department_ids=tuple(sorted(unit_id or 0 for unit_id, _ in assisting)),
        location_text=call.location_text,
        latitude=call.latitude,
        longitude=call.longitude,
        raised_at=call.raised_at,
        acknowledge_due=call.acknowledge_due,
        respond_due=call.respond_due,
        resolve_due=call.resolve_due,
        supervision_number=call.supervision_number,
        raise_photos=tuple(p.sha256 for p in photos if p.stage is AttachmentStage.RAISE),
        evidence_photos=tuple(p.sha256 for p in photos if p.stage is AttachmentStage.EVIDENCE),
        resolution_note=resolved.note if resolved else None,
        rating=rating.level.value if rating else None,
        source=call.source,
        source_media_error=media_error,
    )


def call_view(ctx: Context, call_id: int) -> CallView:
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        return _view(session, call)


def call_by_number(ctx: Context, number: str) -> CallView:
    """A call by its number; the digits at the end are enough (`/assign 12`
    finds BY-2026-000012 when only one call ends so)."""
    text = number.strip().upper()
    with session_scope(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == text)).first()
        if call is None and text.isdigit():
            matches = session.exec(
                select(Call).where(col(Call.number).endswith(f"-{int(text):06d}"))
                .order_by(col(Call.id).desc())
            ).all()
            call = matches[0] if matches else None
        if call is None:
            raise NotFound(f"no call {number!r}", what="call", code=number)
        return _view(session, call)


def calls_of_caller(ctx: Context, member_id: int, limit: int = 10) -> list[CallView]:
    """The member's latest calls, newest first."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(Call).where(Call.caller_id == member_id)
            .order_by(col(Call.id).desc()).limit(limit)
        ).all()
        return [_view(session, call) for call in rows]


def overdue_calls(ctx: Context, now: datetime, limit: int = 30) -> list[CallView]:
    """Calls late now (`workflows.facts.late_now`: open, a deadline passed
    and its step not done), oldest first."""
    with session_scope(ctx.engine) as session:
        return [_view(session, call) for call in late_calls(session, now, limit=limit)]


def find_calls(ctx: Context, words: str, limit: int = 10) -> list[CallView]:
    """Calls whose number ends with `words`, or whose description or place
    contains every word; newest first."""
    terms = [w for w in words.split() if w]
    if not terms:
        return []
    with session_scope(ctx.engine) as session:
        statement = select(Call)
        if len(terms) == 1 and terms[0].replace("-", "").isalnum() and any(
            c.isdigit() for c in terms[0]
        ):
            digits = terms[0].upper()
            statement = statement.where(or_(
                col(Call.number).endswith(digits),
                col(Call.text).contains(terms[0]),
            ))
        else:
            for term in terms:
                statement = statement.where(or_(
                    col(Call.text).contains(term), col(Call.location_text).contains(term)
                ))
        rows = session.exec(statement.order_by(col(Call.id).desc()).limit(limit)).all()
        return [_view(session, call) for call in rows]


def pending_request(ctx: Context, request_id: int) -> CallRequest | None:
    with session_scope(ctx.engine) as session:
        request = session.get(CallRequest, request_id)
        return request if request and request.status is RequestStatus.PENDING else None


def check_may(ctx: Context, call_id: int, member_id: int, action: Action) -> CallView:
    """Refuse, as the use case itself would, unless `member_id` may do
    `action` to the call now — asked before a conversation collects a note
    or photos, so nobody types a reason only to be told no. The answer is
    `workflows.access`'s; this only loads what it needs."""
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        view = _view(session, call)
        access.require(access.actor_in(session, member_id), action, view)
        return view


def participant_role(ctx: Context, call_id: int, department_id: int) -> ParticipantRole | None:
    with session_scope(ctx.engine) as session:
        row = session.get(CallDepartment, (call_id, department_id))
        return row.role if row is not None else None


def event_data(ctx: Context, event_id: int) -> dict[str, Any]:
    """The data of one event of the log (e.g. an accountability dossier)."""
    with session_scope(ctx.engine) as session:
        event = session.get(Event, event_id)
        return dict(event.data) if event is not None else {}

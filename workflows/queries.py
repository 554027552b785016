"""Read-only questions the conversations ask: who is this, what is this call,
which calls are mine, overdue, or match some words. Nothing here writes."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
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
    RatingLevel,
    RequestStatus,
    SourceEvent,
    Unit,
    UnitKind,
    session_scope,
)
from workflows import access, accounts
from workflows.context import Context
from workflows.errors import InvalidInput, NotFound
from workflows.facts import late_calls
from workflows.lifecycle import Action


def member_by_platform(ctx: Context, channel: str, platform_id: str) -> Member | None:
    """The active member behind a platform account: a Telegram user id, a
    WeCom user id, or on the console a member code. None for a stranger."""
    return accounts.member_by_account(ctx, channel, platform_id)


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


    def role_of(self, department_id: int) -> ParticipantRole | None:
        """The department's part in the call: lead, assisting, or None."""
        if department_id == self.lead_department_id:
            return ParticipantRole.LEAD
        if department_id in self.assisting_department_ids:
            return ParticipantRole.ASSISTING
        return None


def views_of(session: Session, calls: Sequence[Call]) -> list[CallView]:
    """The views of `calls`, in their order, in a fixed number of statements
    whatever their number (one per table a view draws on, each `IN (...)`
    over all the calls) — a list of 100 calls costs what a list of one does."""
    ids = [call.id or 0 for call in calls]
    if not ids:
        return []
    caller, unit, lead = aliased(Member), aliased(Unit), aliased(Unit)
    names: dict[int, tuple[Any, ...]] = {row[0]: tuple(row[1:]) for row in session.execute(
        sa_select(col(Call.id), col(caller.name), col(unit.name), col(lead.name),
                  col(CatalogItem.name), col(Domain.name), col(Domain.emergency))
        .outerjoin(caller, col(caller.id) == col(Call.caller_id))
        .outerjoin(unit, col(unit.id) == col(Call.unit_id))
        .outerjoin(lead, col(lead.id) == col(Call.lead_department_id))
        .outerjoin(CatalogItem, col(CatalogItem.id) == col(Call.item_id))
        .outerjoin(Domain, col(Domain.id) == col(Call.domain_id))
        .where(col(Call.id).in_(ids))
    ).all()}
    assisting: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for call_id, unit_id, name in session.exec(
        select(CallDepartment.call_id, Unit.id, Unit.name)
        .join(Unit, col(Unit.id) == col(CallDepartment.department_id))
        .where(col(CallDepartment.call_id).in_(ids),
               CallDepartment.role == ParticipantRole.ASSISTING)
        .order_by(col(Unit.code))
    ).all():
        assisting[call_id].append((unit_id or 0, name))
    photos: dict[tuple[int, AttachmentStage], list[str]] = defaultdict(list)
    for call_id, stage, sha256 in session.exec(
        select(Attachment.call_id, Attachment.stage, Attachment.sha256)
        .where(col(Attachment.call_id).in_(ids)).order_by(col(Attachment.id))
    ).all():
        photos[(call_id, AttachmentStage(stage))].append(sha256)
    resolution_notes: dict[int, str | None] = {}
    for call_id, note in session.exec(
        select(Event.call_id, Event.note)
        .where(col(Event.call_id).in_(ids), Event.kind == "CallResolved")
        .order_by(col(Event.id))
    ).all():
        resolution_notes[call_id] = note  # the latest resolution's note wins
    ratings = {call_id: level for call_id, level in session.exec(
        select(Rating.call_id, Rating.level).where(col(Rating.call_id).in_(ids))
    ).all()}
    media_errors: dict[int, str] = {}
    sourced = [call.id or 0 for call in calls if call.source]
    if sourced:
        for source_call, error in session.exec(
            select(SourceEvent.call_id, SourceEvent.media_error)
            .where(col(SourceEvent.call_id).in_(sourced),
                   col(SourceEvent.media_error).is_not(None))
            .order_by(col(SourceEvent.id).desc())
        ).all():
            if source_call is not None and error is not None:
                media_errors[source_call] = error  # the first (lowest id) wins
    views = []
    for call in calls:
        call_id = call.id or 0
        caller_name, unit_name, lead_name, item_name, domain_name, emergency = names.get(
            call_id, (None, None, None, None, None, None))
        helpers = assisting.get(call_id, [])
        rating = ratings.get(call_id)
        views.append(CallView(
            id=call_id,
            number=call.number,
            status=call.status,
            text=call.text,
            caller_id=call.caller_id,
            caller_name=caller_name or "?",
            unit_name=unit_name or "?",
            item_name=item_name,
            domain_name=domain_name,
            emergency=bool(emergency),
            lead_department_id=call.lead_department_id,
            lead_department=lead_name,
            assisting_departments=tuple(name for _, name in helpers),
            assisting_department_ids=tuple(sorted(unit_id for unit_id, _ in helpers)),
            location_text=call.location_text,
            latitude=call.latitude,
            longitude=call.longitude,
            raised_at=call.raised_at,
            acknowledge_due=call.acknowledge_due,
            respond_due=call.respond_due,
            resolve_due=call.resolve_due,
            supervision_number=call.supervision_number,
            raise_photos=tuple(photos.get((call_id, AttachmentStage.RAISE), ())),
            evidence_photos=tuple(photos.get((call_id, AttachmentStage.EVIDENCE), ())),
            resolution_note=resolution_notes.get(call_id),
            rating=RatingLevel(rating).value if rating is not None else None,
            source=call.source,
            source_media_error=media_errors.get(call_id),
        ))
    return views


def _view(session: Session, call: Call) -> CallView:
    return views_of(session, [call])[0]


def call_view(ctx: Context, call_id: int) -> CallView:
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        return _view(session, call)


def call_by_number(ctx: Context, number: str, reader: access.Actor | None = None) -> CallView:
    """A call by its number. The digits at the end are enough when only one
    call ends so (`/assign 12` finds BY-2026-000012) — counting, for a
    `reader`, only the calls they may read; when several do (BY-2026-000012
    and BY-2027-000012), the number is refused as ambiguous, naming them,
    rather than one of them guessed."""
    text = number.strip().upper()
    with session_scope(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == text)).first()
        if call is None and text.isdigit():
            statement = select(Call).where(col(Call.number).endswith(f"-{int(text):06d}"))
            if reader is not None:
                statement = statement.where(access.readable_calls(reader))
            matches = session.exec(statement.order_by(col(Call.id))).all()
            if len(matches) > 1:
                raise InvalidInput(
                    f"{number!r} matches {len(matches)} calls", reason="ambiguous_number",
                    code=text, candidates=[match.number for match in matches])
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
        return views_of(session, rows)


def overdue_calls(ctx: Context, now: datetime, limit: int = 30) -> list[CallView]:
    """Calls late now (`workflows.facts.late_now`: open, a deadline passed
    and its step not done), oldest first."""
    with session_scope(ctx.engine) as session:
        return views_of(session, late_calls(session, now, limit=limit))


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
        return views_of(session, rows)


def pending_request(ctx: Context, request_id: int) -> CallRequest | None:
    """The request `request_id` while it waits for a decision (the board's
    decide form: which call, which kind), else None."""
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


def event_data(ctx: Context, event_id: int) -> dict[str, Any]:
    """The data of one event of the log (e.g. an accountability dossier)."""
    with session_scope(ctx.engine) as session:
        event = session.get(Event, event_id)
        return dict(event.data) if event is not None else {}

"""What the workflows hand out about a call: `CallView`, a frozen snapshot of
everything a message about a call shows, and `CallRequestView`, a request a
department filed with the call it is about. The use cases (`workflows.calls`)
return them, built inside their own unit of work; the read side
(`workflows.queries`, which re-exports them) returns them too. Neither holds
an ORM row: nothing a caller does with a view goes back to the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

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
    RequestKind,
    RequestStatus,
    SourceEvent,
    Unit,
)


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


def view_of(session: Session, call: Call) -> CallView:
    """The view of one call: `views_of`'s one-element case."""
    return views_of(session, [call])[0]


@dataclass(frozen=True)
class CallRequestView:
    """A request a department filed (an extension or a return), as the use
    case that filed it left it, with the call it is about.

    The request and its call travel together because whoever files a request
    is told both: its number (the dispatcher decides it by that number) and
    the call as it is now, with the buttons for what comes next. Carrying the
    whole `CallView` rather than a bare `call_id` saves the handler a second
    round trip to load it; the request's own fields are the few that a reply
    or a later decision needs."""

    id: int
    kind: RequestKind
    status: RequestStatus
    days: int | None  # the working days an extension asks for; None for a return
    reason: str
    call: CallView

    @property
    def call_id(self) -> int:
        return self.call.id


def request_view_of(session: Session, request: CallRequest, call: Call) -> CallRequestView:
    """The view of `request`, filed on `call`."""
    return CallRequestView(id=request.id or 0, kind=request.kind, status=request.status,
                           days=request.days, reason=request.reason,
                           call=view_of(session, call))

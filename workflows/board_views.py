"""What the dispatch board reads: the open calls as a filtered, sorted,
paginated table, and one call in full. Nothing here writes.

The table is read in a bounded set of statements whatever the number of
calls: one count, one page of rows with every name joined in, and the three
lists the filters offer. Each row's clock is worked out in Python for the
page's rows only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, func, or_, select

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
    Nudge,
    ParticipantRole,
    Rating,
    RequestStatus,
    Unit,
    UnitKind,
    session_scope,
)
from workflows import access
from workflows.board import CallScope
from workflows.context import Context
from workflows.deadlines import is_estimate, working_time_between
from workflows.errors import NotAllowed, NotFound
from workflows.facts import late_now_clause
from workflows.lifecycle import OPEN_STATES, Action

PER_PAGE = 50
MAX_PER_PAGE = 200
MAX_QUERY = 100


class Sort(StrEnum):
    DUE = "due"  # the current clock's deadline, soonest (or latest passed) first
    RAISED = "raised"
    NUMBER = "number"


@dataclass(frozen=True)
class CallFilter:
    """The table's filters; None / False means "any"."""

    department_id: int | None = None
    town_id: int | None = None
    domain_id: int | None = None
    status: CallStatus | None = None
    supervised: bool = False  # 督办件: a supervision order was issued
    overdue: bool = False
    query: str = ""
    sort: Sort = Sort.DUE
    descending: bool = False
    page: int = 1
    per_page: int = PER_PAGE


@dataclass(frozen=True)
class Clock:
    """The running limit of a call: which, when it falls due, and the
    working time left (negative: late by)."""

    limit: str  # acknowledge / respond / resolve
    due: datetime
    left: timedelta

    @property
    def late(self) -> bool:
        return self.left < timedelta(0)


@dataclass(frozen=True)
class CallRow:
    id: int
    number: str
    status: CallStatus
    text: str
    unit_name: str
    town_name: str
    department_name: str | None
    domain_name: str | None
    emergency: bool
    supervision_number: str | None
    raised_at: datetime
    clock: Clock | None


@dataclass(frozen=True)
class Choice:
    id: int
    name: str


@dataclass(frozen=True)
class CallPage:
    rows: list[CallRow]
    total: int
    page: int
    pages: int
    departments: list[Choice]
    towns: list[Choice]
    domains: list[Choice]


def current_clock(ctx: Context, call: Call, emergency: bool, now: datetime) -> Clock | None:
    """The limit now running (the first not yet met) and the time left on it:
    working time for working-day limits, round the clock for emergencies."""
    if call.status not in OPEN_STATES or call.status is CallStatus.RESOLVED:
        return None
    for limit, due, done in (("acknowledge", call.acknowledge_due, call.acknowledged_at),
                             ("respond", call.respond_due, call.responded_at),
                             ("resolve", call.resolve_due, call.resolved_at)):
        if due is not None and done is None:
            left = (due - now if emergency else
                    working_time_between(now, due, ctx.rules.calendar, ctx.rules.policy))
            return Clock(limit, due, left)
    return None


def _running_due() -> Any:
    """The current clock's deadline as SQL, to sort by."""
    return sa.case(
        (col(Call.acknowledged_at).is_(None), col(Call.acknowledge_due)),
        (col(Call.responded_at).is_(None), col(Call.respond_due)),
        else_=col(Call.resolve_due),
    )


def _in_scope(scope: CallScope) -> Any:
    return col(Call.id).in_(
        select(CallDepartment.call_id).where(CallDepartment.department_id == scope.department_id)
    )


def _search(words: str) -> list[Any]:
    """Every word must match the number, the description or the place."""
    conditions = []
    for term in words.split()[:10]:
        conditions.append(or_(col(Call.number).contains(term.upper()),
                              col(Call.text).contains(term),
                              col(Call.location_text).contains(term)))
    return conditions


def open_calls(ctx: Context, scope: CallScope, wanted: CallFilter, now: datetime) -> CallPage:
    """One page of the open calls `scope` may see that match `wanted`."""
    caller_unit = aliased(Unit)
    town = aliased(Unit)
    department = aliased(Unit)
    conditions: list[Any] = [col(Call.status).in_(OPEN_STATES)]
    if not scope.everything:
        conditions.append(_in_scope(scope))
    if wanted.department_id is not None:
        conditions.append(col(Call.lead_department_id) == wanted.department_id)
    if wanted.town_id is not None:
        # A call comes from the town itself or from one of its villages.
        conditions.append(or_(col(caller_unit.id) == wanted.town_id,
                              col(caller_unit.parent_id) == wanted.town_id))
    if wanted.domain_id is not None:
        conditions.append(col(Call.domain_id) == wanted.domain_id)
    if wanted.status is not None:
        conditions.append(col(Call.status) == wanted.status)
    if wanted.supervised:
        conditions.append(col(Call.supervision_number).is_not(None))
    if wanted.overdue:
        conditions.append(late_now_clause(now))
    conditions += _search(wanted.query[:MAX_QUERY])
    per_page = max(1, min(wanted.per_page, MAX_PER_PAGE))
    order: Any = {Sort.DUE: _running_due(), Sort.RAISED: col(Call.raised_at),
                  Sort.NUMBER: col(Call.number)}[wanted.sort]
    order = order.desc() if wanted.descending else order.asc()
    with session_scope(ctx.engine) as session:
        joined = (
            sa.select(Call, caller_unit, town, department, Domain)
            .join(caller_unit, col(caller_unit.id) == col(Call.unit_id))
            .outerjoin(town, col(town.id) == col(caller_unit.parent_id))
            .outerjoin(department, col(department.id) == col(Call.lead_department_id))
            .outerjoin(Domain, col(Domain.id) == col(Call.domain_id))
            .where(*conditions)
        )
        total = session.exec(
            select(func.count()).select_from(
                select(col(Call.id))
                .join(caller_unit, col(caller_unit.id) == col(Call.unit_id))
                .where(*conditions).subquery()
            )
        ).one()
        pages = max(1, math.ceil(total / per_page))
        page = max(1, min(wanted.page, pages))
        found = session.execute(  # five entities: beyond sqlmodel's select() overloads
            joined.order_by(order.nulls_last(), col(Call.id))
            .offset((page - 1) * per_page).limit(per_page)
        ).all()
        rows = []
        for call, unit, parent, lead, domain in found:
            emergency = bool(domain and domain.emergency)
            in_town = unit.kind is UnitKind.VILLAGE and parent is not None
            rows.append(CallRow(
                id=call.id or 0, number=call.number, status=call.status, text=call.text,
                unit_name=unit.name, town_name=parent.name if in_town else unit.name,
                department_name=lead.name if lead else None,
                domain_name=domain.name if domain else None, emergency=emergency,
                supervision_number=call.supervision_number, raised_at=call.raised_at,
                clock=current_clock(ctx, call, emergency, now),
            ))
        return CallPage(rows, total, page, pages, *_choices(session, scope))


def _choices(session: Session, scope: CallScope) -> tuple[list[Choice], list[Choice],
                                                          list[Choice]]:
    def units(kinds: tuple[UnitKind, ...]) -> list[Choice]:
        statement = select(Unit).where(col(Unit.kind).in_(kinds))
        if not scope.everything and UnitKind.DEPARTMENT in kinds:
            statement = statement.where(Unit.id == scope.department_id)
        return [Choice(u.id or 0, u.name) for u in session.exec(statement.order_by(col(Unit.code)))]

    domains = [Choice(d.id or 0, d.name)
               for d in session.exec(select(Domain).order_by(col(Domain.id)))]
    return units((UnitKind.DEPARTMENT,)), units((UnitKind.TOWN, UnitKind.STREET)), domains


# --- one call ----------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str
    actor: str | None
    note: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Photo:
    sha256: str
    content_type: str
    stage: AttachmentStage


@dataclass(frozen=True)
class NudgeSent:
    at: datetime
    limit: str
    step: str
    repeat: int


@dataclass(frozen=True)
class PendingRequest:
    id: int
    kind: str
    department_name: str
    requested_by: str
    days: int | None
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class CallDetail:
    id: int
    number: str
    status: CallStatus
    text: str
    caller_name: str
    unit_name: str
    item_name: str | None
    domain_name: str | None
    emergency: bool
    lead_department: str | None
    assisting_departments: list[str]
    location_text: str | None
    latitude: float | None
    longitude: float | None
    raised_at: datetime
    acknowledge_due: datetime | None
    respond_due: datetime | None
    resolve_due: datetime | None
    clock: Clock | None
    supervision_number: str | None
    supervised_at: datetime | None
    rating: str | None
    timeline: list[TimelineEntry]
    before_photos: list[Photo]
    after_photos: list[Photo]
    nudges: list[NudgeSent]
    requests: list[PendingRequest]
    dossier: dict[str, Any] | None
    dossier_at: datetime | None
    department_ids: frozenset[int] = field(default_factory=frozenset)
    # The lifecycle actions the reader may take on the call now (the policy's answer).
    allowed: frozenset[Action] = field(default_factory=frozenset)
    # A deadline is counted through a year the calendar does not cover
    # (`deadlines.is_estimate`): the page says it is estimated.
    deadlines_estimated: bool = False


def _may_see(session: Session, scope: CallScope, call: Call) -> bool:
    return access.may(scope.actor, access.Permission.READ_CALL, access.facts(session, call))


def call_detail(ctx: Context, scope: CallScope, call_id: int, now: datetime) -> CallDetail:
    """A call in full for the board: refused (NotAllowed) when `scope` does
    not cover it, so a head cannot read another department's call by its id."""
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        subject = access.facts(session, call)
        if not access.may(scope.actor, access.Permission.READ_CALL, subject):
            raise NotAllowed(f"{call.number} is another department's call",
                             number=call.number, action="read")
        names = dict(session.exec(
            select(Member.id, Member.name).where(col(Member.id).in_(
                select(Event.actor_id).where(Event.call_id == call_id).union(
                    select(CallRequest.requested_by).where(CallRequest.call_id == call_id),
                    select(Call.caller_id).where(Call.id == call_id))))
        ).all())
        unit_names = dict(session.exec(select(Unit.id, Unit.name)).all())
        item = session.get(CatalogItem, call.item_id) if call.item_id else None
        domain = session.get(Domain, call.domain_id) if call.domain_id else None
        participants = session.exec(
            select(CallDepartment).where(CallDepartment.call_id == call_id)
        ).all()
        events = session.exec(
            select(Event).where(Event.call_id == call_id).order_by(col(Event.id))
        ).all()
        photos = [Photo(a.sha256, a.content_type, a.stage) for a in session.exec(
            select(Attachment).where(Attachment.call_id == call_id).order_by(col(Attachment.id))
        )]
        nudges = [NudgeSent(n.done_at, n.limit, n.step, n.repeat) for n in session.exec(
            select(Nudge).where(Nudge.call_id == call_id, col(Nudge.sent).is_(True))
            .order_by(col(Nudge.id))
        )]
        requests = [
            PendingRequest(r.id or 0, r.kind.value, unit_names.get(r.department_id, "?"),
                           names.get(r.requested_by, "?"), r.days, r.reason, r.created_at)
            for r in session.exec(
                select(CallRequest).where(CallRequest.call_id == call_id,
                                          CallRequest.status == RequestStatus.PENDING)
                .order_by(col(CallRequest.id)))
        ]
        rating = session.exec(select(Rating).where(Rating.call_id == call_id)).first()
        supervised = next((e for e in events if e.kind == "CallSupervised"), None)
        referral = next((e for e in events if e.kind == "AccountabilityReferred"), None)
        emergency = bool(domain and domain.emergency)
        return CallDetail(
            id=call_id, number=call.number, status=call.status, text=call.text,
            caller_name=names.get(call.caller_id, "?"),
            unit_name=unit_names.get(call.unit_id, "?"),
            item_name=item.name if item else None, domain_name=domain.name if domain else None,
            emergency=emergency,
            lead_department=unit_names.get(call.lead_department_id or 0),
            assisting_departments=sorted(unit_names.get(p.department_id, "?")
                                         for p in participants
                                         if p.role is ParticipantRole.ASSISTING),
            location_text=call.location_text, latitude=call.latitude, longitude=call.longitude,
            raised_at=call.raised_at, acknowledge_due=call.acknowledge_due,
            respond_due=call.respond_due, resolve_due=call.resolve_due,
            clock=current_clock(ctx, call, emergency, now),
            supervision_number=call.supervision_number,
            supervised_at=supervised.at if supervised else None,
            rating=rating.level.value if rating else None,
            timeline=[TimelineEntry(e.at, e.kind, names.get(e.actor_id) if e.actor_id else None,
                                    e.note, dict(e.data)) for e in events],
            before_photos=[p for p in photos if p.stage is AttachmentStage.RAISE],
            after_photos=[p for p in photos if p.stage is AttachmentStage.EVIDENCE],
            nudges=nudges,
            requests=requests,
            dossier=dict(referral.data.get("dossier") or {}) if referral else None,
            dossier_at=referral.at if referral else None,
            department_ids=frozenset(p.department_id for p in participants),
            allowed=frozenset(access.allowed_actions(scope.actor, subject)),
            deadlines_estimated=any(
                due is not None and is_estimate(call.raised_at, due, emergency,
                                                ctx.rules.calendar, ctx.rules.policy)
                for due in (call.acknowledge_due, call.respond_due, call.resolve_due)),
        )


def photo_of_call(ctx: Context, scope: CallScope, sha256: str) -> str | None:
    """The content type of a photo `scope` may see (it belongs to a call in
    scope), or None: photos are served only to who may read their call."""
    with session_scope(ctx.engine) as session:
        for attachment, call in session.exec(
            select(Attachment, Call).join(Call, col(Call.id) == col(Attachment.call_id))
            .where(Attachment.sha256 == sha256)
        ):
            if _may_see(session, scope, call):
                return attachment.content_type
        return None


def last_change(ctx: Context, scope: CallScope) -> int:
    """The id of the newest event on a call `scope` sees (0: none): the live
    updates push a refresh when it grows."""
    with session_scope(ctx.engine) as session:
        statement = select(func.max(Event.id))
        if not scope.everything:
            statement = statement.where(col(Event.call_id).in_(
                select(CallDepartment.call_id)
                .where(CallDepartment.department_id == scope.department_id)))
        return int(session.exec(statement).one() or 0)

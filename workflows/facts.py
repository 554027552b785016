"""The read model of the reports: what each call of a period did, computed
once from the calls, their ratings and their escalation events.

Every figure youhu shows — the text report, `/stats`, `/report`, the head's
daily digest, `/overdue`, the Excel workbook, the chart and the JSON export —
reads these facts, so a call is on time, late or *late now* in one way only:

- a limit (acknowledge 签收, respond 响应, resolve 办结) is **on time** when its
  step was done at or before its deadline, and **late** when it was done after
  it, or is still not done and the deadline has passed (as of `now`);
- a call is **late now** (逾期, what `/overdue` lists and the digest counts)
  when it is still open and a deadline has passed whose step is not done.
  A call that was late but has since been done is *late*, not *late now*.
  `late_now` and `late_now_clause` say the same thing, in Python and in SQL;
- a call **reached 督办** when it holds a supervision order (the escalation
  sweep numbers one on the call's first L2 or L3 step) and **reached 问责**
  when an accountability referral was recorded in its event log. Both count
  per call, not per clock: one order, one referral however many limits were
  missed. (The event log is never pruned, so these hold for old periods.)
- times to acknowledge / respond / resolve run from dispatch (time waiting for
  the command centre is not the department's) and are counted the way the
  call's limits run: **working hours** (`deadlines.working_time_between`, the
  clocks' own measure) — 09:00 to the close of the working day
  (`[workday] end`, 18:00) on working days of the official calendar — for
  working-day limits, and elapsed hours for emergencies, whose limits run
  round the clock.

Deadlines are the ones in force: an approved extension has moved the resolve
deadline already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from models import (
    Call,
    CallStatus,
    CatalogItem,
    Domain,
    Event,
    Rating,
    RatingLevel,
    Unit,
    UnitKind,
)
from workflows.calendar import WorkingDayCalendar
from workflows.deadlines import WorkdayPolicy, working_time_between
from workflows.escalation import LimitName
from workflows.lifecycle import OPEN_STATES

TOWN_KINDS = frozenset({UnitKind.TOWN, UnitKind.STREET})
SATISFIED_LEVELS = frozenset({RatingLevel.SATISFIED, RatingLevel.MOSTLY_SATISFIED})
REFERRAL_EVENT = "AccountabilityReferred"


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


# --- late now: the one definition --------------------------------------------


class Clocks(Protocol):
    """What `late_now` reads of a call: a `Call`, or a row of its columns."""

    @property
    def status(self) -> CallStatus: ...
    @property
    def acknowledge_due(self) -> datetime | None: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def respond_due(self) -> datetime | None: ...
    @property
    def responded_at(self) -> datetime | None: ...
    @property
    def resolve_due(self) -> datetime | None: ...
    @property
    def resolved_at(self) -> datetime | None: ...


def late_now(call: Clocks, now: datetime) -> bool:
    """Whether `call` is late now: open, with a deadline passed whose step is
    not done. (The same rule as `late_now_clause`, for a loaded call.)"""
    if call.status not in OPEN_STATES:
        return False
    pairs = ((call.acknowledge_due, call.acknowledged_at),
             (call.respond_due, call.responded_at),
             (call.resolve_due, call.resolved_at))
    return any(due is not None and done is None and due < now for due, done in pairs)


def late_now_clause(now: datetime) -> ColumnElement[bool]:
    """The SQL condition of `late_now`, for queries that select late calls
    (`/overdue`, the heads' digest) without loading every open call."""
    return and_(
        col(Call.status).in_(OPEN_STATES),
        or_(
            col(Call.acknowledged_at).is_(None) & (col(Call.acknowledge_due) < now),
            col(Call.responded_at).is_(None) & (col(Call.respond_due) < now),
            col(Call.resolved_at).is_(None) & (col(Call.resolve_due) < now),
        ),
    )


# --- the facts -------------------------------------------------------------------


@dataclass(frozen=True)
class LimitFact:
    """One limit of a call: its deadline in force, when its step was done,
    and whether that was on time or late (as of the facts' `now`)."""

    limit: LimitName
    due: datetime | None
    done_at: datetime | None
    on_time: bool
    late: bool
    hours: float | None  # dispatch → done, working hours (elapsed for emergencies)


@dataclass(frozen=True)
class CallFacts:
    """What one call did, as of `as_of`. Codes, not names: a report looks the
    names up (and translates its labels) for each reader."""

    call_id: int
    number: str
    status: CallStatus
    text: str
    item_code: str | None
    domain_code: str | None
    emergency: bool
    department_code: str | None  # the current lead department (None: with the command centre)
    town_code: str | None  # the caller's town/street (a village rolls up into it)
    unit_code: str  # the caller's own unit
    raised_at: datetime
    dispatched_at: datetime | None
    closed_at: datetime | None
    acknowledge: LimitFact
    respond: LimitFact
    resolve: LimitFact
    late_now: bool
    supervision_number: str | None
    referred: bool
    auto_closed: bool
    rating: RatingLevel | None
    rating_score: int | None
    rating_comment: str | None
    as_of: datetime
    source: str | None = None  # the Open311 key that raised it (None: raised in chat)

    @property
    def limits(self) -> tuple[LimitFact, LimitFact, LimitFact]:
        return (self.acknowledge, self.respond, self.resolve)

    @property
    def acknowledged(self) -> bool:
        return self.acknowledge.done_at is not None

    @property
    def responded(self) -> bool:
        return self.respond.done_at is not None

    @property
    def closed(self) -> bool:
        return self.status is CallStatus.CLOSED

    @property
    def late(self) -> bool:
        """Any limit late (done late, or not done by a passed deadline)."""
        return any(limit.late for limit in self.limits)

    @property
    def supervised(self) -> bool:
        """Reached 督办: the call holds a supervision order."""
        return self.supervision_number is not None

    @property
    def satisfied(self) -> bool:
        return self.rating in SATISFIED_LEVELS

    def as_dict(self) -> dict[str, Any]:
        """The facts as JSON-ready values (ISO 8601 UTC times)."""

        def when(moment: datetime | None) -> str | None:
            return moment.astimezone(UTC).isoformat() if moment is not None else None

        return {
            "number": self.number, "status": self.status.value, "item": self.item_code,
            "domain": self.domain_code, "emergency": self.emergency,
            "department": self.department_code, "town": self.town_code,
            "unit": self.unit_code, "raised_at": when(self.raised_at),
            "dispatched_at": when(self.dispatched_at), "closed_at": when(self.closed_at),
            "limits": {
                limit.limit.value: {"due": when(limit.due), "done_at": when(limit.done_at),
                                    "on_time": limit.on_time, "late": limit.late,
                                    "hours": limit.hours}
                for limit in self.limits
            },
            "late": self.late, "late_now": self.late_now,
            "supervision_number": self.supervision_number, "referred": self.referred,
            "auto_closed": self.auto_closed,
            "rating": self.rating.value if self.rating else None,
            "rating_score": self.rating_score, "rating_comment": self.rating_comment,
        }


@dataclass(frozen=True)
class Directory:
    """The small tables a report names things from, by code, in set-up order."""

    district_name: str
    departments: dict[str, str]
    towns: dict[str, str]
    domains: dict[str, str]
    items: dict[str, str]
    units: dict[str, str]


def _limit(limit: LimitName, due: datetime | None, done: datetime | None,
           dispatched: datetime | None, now: datetime, emergency: bool,
           calendar: WorkingDayCalendar, policy: WorkdayPolicy) -> LimitFact:
    on_time = done is not None and due is not None and done <= due
    late = due is not None and (done > due if done is not None else due < now)
    spent: float | None = None
    if done is not None and dispatched is not None:
        elapsed = (done - dispatched if emergency
                   else working_time_between(dispatched, done, calendar, policy))
        spent = max(elapsed / timedelta(hours=1), 0.0)
    return LimitFact(limit, due, done, on_time, late, spent)


def _town_of(unit: Unit | None, units: dict[int, Unit]) -> Unit | None:
    """The town/street a caller's unit belongs to: itself, or an ancestor."""
    seen: set[int] = set()
    while unit is not None and unit.kind not in TOWN_KINDS and unit.id not in seen:
        seen.add(unit.id or 0)
        unit = units.get(unit.parent_id) if unit.parent_id is not None else None
    return unit


def directory(session: Session) -> Directory:
    """Names by code of the departments, towns, domains, items and units."""
    units = list(session.exec(select(Unit).order_by(col(Unit.id))))
    district = next((u.name for u in units if u.kind is UnitKind.DISTRICT), "")
    return Directory(
        district_name=district,
        departments={u.code: u.name for u in sorted(units, key=lambda u: u.code)
                     if u.kind is UnitKind.DEPARTMENT},
        towns={u.code: u.name for u in units if u.kind in TOWN_KINDS},
        domains={d.code: d.name for d in session.exec(select(Domain).order_by(col(Domain.id)))},
        items={i.code: i.name for i in session.exec(select(CatalogItem)
                                                     .order_by(col(CatalogItem.id)))},
        units={u.code: u.name for u in units},
    )


_CALL_COLUMNS = ("id", "number", "status", "text", "item_id", "domain_id",
                 "lead_department_id", "unit_id", "raised_at", "dispatched_at",
                 "acknowledged_at", "responded_at", "resolved_at", "closed_at",
                 "acknowledge_due", "respond_due", "resolve_due", "supervision_number",
                 "auto_closed", "source")


def period_facts(session: Session, start: datetime, end: datetime, now: datetime,
                 calendar: WorkingDayCalendar, policy: WorkdayPolicy) -> list[CallFacts]:
    """The facts of the calls raised in `[start, end)` (withdrawn ones
    excluded), as of `now`, in call order. Three queries: the calls with
    their ratings, the referrals among them, and the small tables."""
    _require_aware("now", now)
    in_period = (col(Call.raised_at) >= start, col(Call.raised_at) < end,
                 col(Call.status) != CallStatus.WITHDRAWN)
    # Columns, not ORM objects: a month of calls is read without building
    # (and tracking) an instance per row, several times faster.
    rows: list[Any] = list(session.execute(
        sa_select(*(col(getattr(Call, name)) for name in _CALL_COLUMNS),
               col(Rating.level), col(Rating.score), col(Rating.comment))
        .join(Rating, col(Rating.call_id) == col(Call.id), isouter=True)
        .where(*in_period)
        .order_by(col(Call.id))
    ).all())
    referred = set(session.exec(
        select(Event.call_id).join(Call, col(Call.id) == col(Event.call_id))
        .where(Event.kind == REFERRAL_EVENT, *in_period).distinct()
    ).all())
    units = {u.id or 0: u for u in session.exec(select(Unit))}
    domains = {d.id: d for d in session.exec(select(Domain))}
    items = {i.id: i.code for i in session.exec(select(CatalogItem))}
    towns: dict[int, str | None] = {}
    facts: list[CallFacts] = []
    for call in rows:
        domain = domains.get(call.domain_id) if call.domain_id is not None else None
        emergency = bool(domain and domain.emergency)
        if call.unit_id not in towns:
            town = _town_of(units.get(call.unit_id), units)
            towns[call.unit_id] = town.code if town is not None else None
        lead = units.get(call.lead_department_id) if call.lead_department_id else None
        caller_unit = units.get(call.unit_id)

        def limit(name: LimitName, due: datetime | None, done: datetime | None,
                  dispatched: datetime | None = call.dispatched_at,
                  emergency: bool = emergency) -> LimitFact:
            return _limit(name, due, done, dispatched, now, emergency, calendar, policy)

        facts.append(CallFacts(
            call_id=call.id or 0,
            number=call.number,
            status=call.status,
            text=call.text,
            item_code=items.get(call.item_id) if call.item_id is not None else None,
            domain_code=domain.code if domain is not None else None,
            emergency=emergency,
            department_code=lead.code if lead is not None else None,
            town_code=towns[call.unit_id],
            unit_code=caller_unit.code if caller_unit is not None else "?",
            raised_at=call.raised_at,
            dispatched_at=call.dispatched_at,
            closed_at=call.closed_at,
            acknowledge=limit(LimitName.ACKNOWLEDGE, call.acknowledge_due,
                              call.acknowledged_at),
            respond=limit(LimitName.RESPOND, call.respond_due, call.responded_at),
            resolve=limit(LimitName.RESOLVE, call.resolve_due, call.resolved_at),
            late_now=late_now(call, now),
            supervision_number=call.supervision_number,
            referred=call.id in referred,
            auto_closed=call.auto_closed,
            rating=call.level,
            rating_score=call.score,
            rating_comment=call.comment,
            as_of=now,
            source=call.source,
        ))
    return facts


def late_calls(session: Session, now: datetime, department_ids: Sequence[int] | None = None,
               limit: int | None = None) -> list[Call]:
    """The calls late now, oldest first; only those of `department_ids` when given."""
    statement = select(Call).where(late_now_clause(now))
    if department_ids is not None:
        statement = statement.where(col(Call.lead_department_id).in_(department_ids))
    statement = statement.order_by(col(Call.raised_at), col(Call.id))
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.exec(statement).all())

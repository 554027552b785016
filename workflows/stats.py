"""Statistics and the two-way evaluation (双向测评) over a period.

A report answers, for one period: how many calls were raised, acknowledged,
responded to and closed ("410 called, 331 answered and closed"), the three
rates of China's 12345 hotlines, average times, overdue calls, and each
department's score and rank — per department, per town/street and per domain,
and for the district as a whole.

Which calls count, and where:

- A period holds the calls *raised* in it, `start <= raised_at < end`. What
  happened to them afterwards counts as of the moment the report is made
  (`now`): a call raised on 30 September and closed on 3 October counts as
  closed in September's report made on 4 October. A report on a past period
  is therefore not frozen; it fills in as late calls are finished.
- Withdrawn calls count nowhere.
- A call counts for its *current* lead department only. An upheld return
  (the department flagged it as misrouted, the dispatcher agreed) moves the
  call, so it leaves the first department's figures entirely — that is the
  brief's "an upheld flag takes the call out of that department's figures".
  Assisting departments of a joint call are not scored on it.
- A call waiting for the dispatcher with no department (raised without a
  catalog item, or returned and not yet reassigned) counts in the district
  total and its town's figures, but in no department's.
- A call raised in a village counts for the village's town/street.
- A call raised without a catalog item has no domain, so the domains' figures
  can add up to less than the total.

Everything is computed in Python from one query for the period's calls (with
their ratings) plus the small unit and domain tables: fine for thousands of
calls a month.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from models import (
    Call,
    CallStatus,
    Domain,
    Rating,
    RatingLevel,
    Unit,
    UnitKind,
    session_scope,
)
from workflows.context import Context, EvaluationWeights

TOWN_KINDS = frozenset({UnitKind.TOWN, UnitKind.STREET})
CHAT = "chat"  # the source of calls the cadres raised themselves
SATISFIED_LEVELS = frozenset({RatingLevel.SATISFIED, RatingLevel.MOSTLY_SATISFIED})
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
# Scores that agree to this many decimals share a rank (float noise is not a lead).
_RANK_DECIMALS = 6


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True)
class Period:
    """A half-open span of time `[start, end)` in aware UTC, with a label for
    people ("2026-10")."""

    start: datetime
    end: datetime
    label: str

    def __post_init__(self) -> None:
        _require_aware("start", self.start)
        _require_aware("end", self.end)
        if self.start >= self.end:
            raise ValueError(f"period {self.label!r} ends before it starts")

    @classmethod
    def month(cls, year: int, month: int, tz: ZoneInfo) -> Period:
        """The calendar month `year-month` as lived in `tz` (its local midnights,
        converted to UTC): 2026-10 in Asia/Shanghai starts 2026-09-30 16:00 UTC."""
        if not 1 <= month <= 12:
            raise ValueError(f"no month {month} in a year")
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        start = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        end = datetime(*following, 1, tzinfo=tz).astimezone(UTC)
        return cls(start, end, f"{year:04d}-{month:02d}")

    @classmethod
    def parse(cls, text: str, tz: ZoneInfo) -> Period:
        """A month written "YYYY-MM" (as in `/stats 2026-10`); anything else
        raises ValueError naming the text."""
        match = _MONTH_RE.match(text.strip())
        if match is None or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls.month(int(match.group(1)), int(match.group(2)), tz)

    @classmethod
    def month_of(cls, moment: datetime, tz: ZoneInfo) -> Period:
        """The month in `tz` that `moment` falls in (for "this month")."""
        _require_aware("moment", moment)
        local = moment.astimezone(tz)
        return cls.month(local.year, local.month, tz)

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class Figures:
    """What happened to a set of calls (one department's, one town's, one
    domain's or the district's), as of the report's `now`.

    - `raised`: calls raised in the period (withdrawn ones excluded).
    - `acknowledged`, `responded`: calls whose current lead department has
      acknowledged (签收) / responded (响应), on time or late.
    - `closed`: calls closed — confirmed by the caller or closed automatically.
    - `overdue`: calls with any deadline missed — a step done after its
      deadline, or a step not done whose deadline is before `now`. A call
      counts once however many steps it missed. Deadlines are the ones in
      force: an approved extension moves the resolve deadline first.
    - `on_time_*`: calls whose step was done at or before its deadline.
    - `rated`, `rating_sum`, `satisfied`: ratings given, the sum of their
      scores (100/80/0), and how many were 满意 or 基本满意.
    - `avg_acknowledge_minutes`: mean time from dispatch to the department
      (current lead department) to its acknowledgement, over acknowledged calls.
    - `avg_resolve_hours`: mean time from dispatch to the (latest) resolution,
      over resolved calls. Both are None when no call qualifies. Time waiting
      for the dispatcher is the dispatcher's, not the department's, so both
      start at dispatch.
    """

    raised: int = 0
    acknowledged: int = 0
    responded: int = 0
    closed: int = 0
    overdue: int = 0
    on_time_acknowledged: int = 0
    on_time_responded: int = 0
    on_time_resolved: int = 0
    rated: int = 0
    rating_sum: int = 0
    satisfied: int = 0
    avg_acknowledge_minutes: float | None = None
    avg_resolve_hours: float | None = None

    @property
    def response_rate(self) -> float | None:
        """响应率, as a fraction: calls acknowledged on time / calls raised
        (in 12345 practice the response is the agency signing for the ticket
        within its limit). None when nothing was raised."""
        return _ratio(self.on_time_acknowledged, self.raised)

    @property
    def resolution_rate(self) -> float | None:
        """解决率, as a fraction: calls resolved and closed / calls raised."""
        return _ratio(self.closed, self.raised)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率, as a fraction: (满意 + 基本满意) / calls rated. None when
        nothing was rated."""
        return _ratio(self.satisfied, self.rated)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _on_time(done: datetime | None, due: datetime | None) -> bool:
    return done is not None and due is not None and done <= due


def _missed(done: datetime | None, due: datetime | None, now: datetime) -> bool:
    if due is None:
        return False
    return done > due if done is not None else due < now


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def tally(rows: Iterable[tuple[Call, Rating | None]], now: datetime) -> Figures:
    """The figures of `rows` (each call with its rating, if any) as of `now`.
    Pure: the caller chooses the calls; withdrawn calls here are skipped."""
    _require_aware("now", now)
    raised = acknowledged = responded = closed = overdue = 0
    ack_on_time = respond_on_time = resolve_on_time = 0
    rated = rating_sum = satisfied = 0
    ack_minutes: list[float] = []
    resolve_hours: list[float] = []
    for call, rating in rows:
        if call.status is CallStatus.WITHDRAWN:
            continue
        raised += 1
        acknowledged += call.acknowledged_at is not None
        responded += call.responded_at is not None
        closed += call.status is CallStatus.CLOSED
        ack_on_time += _on_time(call.acknowledged_at, call.acknowledge_due)
        respond_on_time += _on_time(call.responded_at, call.respond_due)
        resolve_on_time += _on_time(call.resolved_at, call.resolve_due)
        overdue += (
            _missed(call.acknowledged_at, call.acknowledge_due, now)
            or _missed(call.responded_at, call.respond_due, now)
            or _missed(call.resolved_at, call.resolve_due, now)
        )
        if call.dispatched_at is not None:
            if call.acknowledged_at is not None:
                ack_minutes.append(_span(call.dispatched_at, call.acknowledged_at) / 60)
            if call.resolved_at is not None:
                resolve_hours.append(_span(call.dispatched_at, call.resolved_at) / 3600)
        if rating is not None:
            rated += 1
            rating_sum += rating.score
            satisfied += rating.level in SATISFIED_LEVELS
    return Figures(
        raised=raised,
        acknowledged=acknowledged,
        responded=responded,
        closed=closed,
        overdue=overdue,
        on_time_acknowledged=ack_on_time,
        on_time_responded=respond_on_time,
        on_time_resolved=resolve_on_time,
        rated=rated,
        rating_sum=rating_sum,
        satisfied=satisfied,
        avg_acknowledge_minutes=_mean(ack_minutes),
        avg_resolve_hours=_mean(resolve_hours),
    )


def _span(begin: datetime, finish: datetime) -> float:
    return max((finish - begin) / timedelta(seconds=1), 0.0)


# --- the evaluation ------------------------------------------------------------


def department_score(
    figures: Figures, weights: EvaluationWeights
) -> tuple[float | None, float, float]:
    """A department's (rating, performance, score), each 0–100. Pure.

    - rating: the mean score of its ratings (满意 100, 基本满意 80, 不满意 0);
      None when no call was rated.
    - performance: the weighted mean of four rates, each as a percentage of
      the calls raised — acknowledged on time, responded on time, resolved on
      time, closed — with the weights normalised to sum to 1. An open call
      whose deadline is still ahead counts as not (yet) on time. No calls → 0.
    - score: `rating_share` × rating + (1 − `rating_share`) × performance; a
      department nobody rated is scored on performance alone, rather than
      counting the missing half as 0 (which would punish it for callers who
      have not answered) or as 100.

    Raises ValueError for a negative weight, all four performance weights 0,
    or a `rating_share` outside 0–1.
    """
    share = weights.rating_share
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"rating_share must be between 0 and 1, got {share}")
    parts = (
        (weights.on_time_acknowledge, figures.on_time_acknowledged),
        (weights.on_time_respond, figures.on_time_responded),
        (weights.on_time_resolve, figures.on_time_resolved),
        (weights.closure, figures.closed),
    )
    if any(weight < 0 for weight, _ in parts):
        raise ValueError("evaluation weights must not be negative")
    total_weight = sum(weight for weight, _ in parts)
    if total_weight <= 0:
        raise ValueError("at least one performance weight must be above 0")
    rating = figures.rating_sum / figures.rated if figures.rated else None
    if figures.raised:
        performance = (
            sum(weight * 100.0 * count / figures.raised for weight, count in parts) / total_weight
        )
    else:
        performance = 0.0
    score = performance if rating is None else share * rating + (1 - share) * performance
    return rating, performance, score


def competition_ranks(scores: Sequence[float | None]) -> list[int | None]:
    """Ranks for `scores`, best (highest) first, ties sharing a rank and the
    next rank skipping ("1, 2, 2, 4"); None scores get no rank. Scores equal
    to six decimals tie."""
    keyed = sorted(
        (round(score, _RANK_DECIMALS), index)
        for index, score in enumerate(scores)
        if score is not None
    )
    keyed.reverse()
    ranks: list[int | None] = [None] * len(scores)
    previous: float | None = None
    rank = 0
    for position, (score, index) in enumerate(keyed, start=1):
        if score != previous:
            rank, previous = position, score
        ranks[index] = rank
    return ranks


@dataclass(frozen=True)
class DepartmentScore:
    """One department's figures and evaluation for the period.

    A department with no calls in the period is listed with zero figures and
    None for `performance_score`, `score` and `rank`: it is not ranked, since
    a score with nothing behind it would sit either above or below every
    department that did work, and both are wrong.
    """

    department_code: str
    department_name: str
    figures: Figures
    rating_score: float | None
    performance_score: float | None
    score: float | None
    rank: int | None


@dataclass(frozen=True)
class Report:
    """The statistics of one period, as of `as_of`.

    `departments` holds every department, ranked best first (ties share a
    rank, ordered by code), then the unranked ones by code. `towns` is keyed
    by town/street name (villages rolled up into their town) and `domains` by
    domain name, each listing every town and domain — with zeros if quiet — in
    the order they were set up.
    """

    period: Period
    departments: list[DepartmentScore]
    towns: dict[str, Figures]
    domains: dict[str, Figures]
    total: Figures
    as_of: datetime
    # Calls by the system that raised them (Open311 key names; CHAT for the
    # cadres' own), listed when any system raised a call in the period.
    sources: dict[str, Figures] = field(default_factory=dict)

    def headline(self) -> str:
        """The headline, "N calls raised, M answered and closed", where answered
        and closed means closed (English; the conversations translate)."""
        raised, closed = self.total.raised, self.total.closed
        noun = "call" if raised == 1 else "calls"
        return f"{raised} {noun} raised, {closed} answered and closed"


def _town_of(unit_id: int, units: dict[int, Unit]) -> Unit | None:
    """The town/street a caller's unit belongs to: itself, or its parent."""
    unit = units.get(unit_id)
    seen: set[int] = set()
    while unit is not None and unit.kind not in TOWN_KINDS and unit.id not in seen:
        seen.add(unit.id or 0)
        unit = units.get(unit.parent_id) if unit.parent_id is not None else None
    return unit


def _labels(rows: Sequence[tuple[int, str, str]]) -> dict[int, str]:
    """Display names by id; a name two rows share gets its code appended, so
    no two entries of a report collapse into one."""
    counts: dict[str, int] = {}
    for _, name, _ in rows:
        counts[name] = counts.get(name, 0) + 1
    return {
        row_id: name if counts[name] == 1 else f"{name} ({code})" for row_id, name, code in rows
    }


def report(ctx: Context, period: Period, now: datetime) -> Report:
    """The report for `period` as of `now` (see the module docstring for which
    calls count where). Read-only; anyone the conversations let see
    statistics — dispatchers, supervisors, admins — may ask for it."""
    _require_aware("now", now)
    with session_scope(ctx.engine) as session:
        statement = (
            select(Call, Rating)
            .join(Rating, col(Rating.call_id) == col(Call.id), isouter=True)
            .where(
                col(Call.raised_at) >= period.start,
                col(Call.raised_at) < period.end,
                col(Call.status) != CallStatus.WITHDRAWN,
            )
            .order_by(col(Call.id))
        )
        rows: list[tuple[Call, Rating | None]] = [
            (call, rating) for call, rating in session.exec(statement)
        ]
        units = {unit.id or 0: unit for unit in session.exec(select(Unit).order_by(col(Unit.id)))}
        domains = list(session.exec(select(Domain).order_by(col(Domain.id))))

    by_department: dict[int, list[tuple[Call, Rating | None]]] = {}
    by_town: dict[int, list[tuple[Call, Rating | None]]] = {}
    by_domain: dict[int, list[tuple[Call, Rating | None]]] = {}
    by_source: dict[str, list[tuple[Call, Rating | None]]] = {}
    for row in rows:
        by_source.setdefault(row[0].source or CHAT, []).append(row)
        call = row[0]
        if call.lead_department_id is not None:
            by_department.setdefault(call.lead_department_id, []).append(row)
        town = _town_of(call.unit_id, units)
        if town is not None:
            by_town.setdefault(town.id or 0, []).append(row)
        if call.domain_id is not None:
            by_domain.setdefault(call.domain_id, []).append(row)

    departments = sorted(
        (unit for unit in units.values() if unit.kind is UnitKind.DEPARTMENT),
        key=lambda unit: unit.code,
    )
    weights = ctx.rules.weights
    unranked: list[DepartmentScore] = []
    for department in departments:
        figures = tally(by_department.get(department.id or 0, ()), now)
        rating, performance, score = department_score(figures, weights)
        has_calls = figures.raised > 0
        unranked.append(
            DepartmentScore(
                department_code=department.code,
                department_name=department.name,
                figures=figures,
                rating_score=rating,
                performance_score=performance if has_calls else None,
                score=score if has_calls else None,
                rank=None,
            )
        )
    ranks = competition_ranks([entry.score for entry in unranked])
    scored = [replace(entry, rank=rank) for entry, rank in zip(unranked, ranks, strict=True)]
    # Stable sort: equal ranks keep code order; unranked go last, by code.
    scored.sort(key=lambda entry: (entry.rank is None, entry.rank or 0))

    towns = [unit for unit in units.values() if unit.kind in TOWN_KINDS]
    town_names = _labels([(unit.id or 0, unit.name, unit.code) for unit in towns])
    domain_names = _labels([(domain.id or 0, domain.name, domain.code) for domain in domains])
    return Report(
        period=period,
        departments=scored,
        towns={
            town_names[unit.id or 0]: tally(by_town.get(unit.id or 0, ()), now) for unit in towns
        },
        domains={
            domain_names[domain.id or 0]: tally(by_domain.get(domain.id or 0, ()), now)
            for domain in domains
        },
        total=tally(rows, now),
        as_of=now,
        sources={name: tally(by_source[name], now)
                 for name in sorted(by_source, key=lambda n: (n != CHAT, n))}
        if set(by_source) - {CHAT} else {},
    )

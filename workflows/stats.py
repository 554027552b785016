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
- A call raised without a catalog item has no domain: it counts in the
  domains' extra row "no domain", so the domains add up to the total.
- Supervision orders and accountability referrals count for the period of
  the call that drew them (the calls raised in it), like everything else.

Every figure adds up per-call facts (`workflows.facts`: on time, late, late
now, 督办/问责, times in working hours), computed once per report from one
query for the period's calls with their ratings, one for their referrals and
the small unit and domain tables (see bench/README.md for 100,000 calls).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from models import CallStatus, Locale, session_scope
from workflows.context import Context, EvaluationWeights, ReportFile
from workflows.facts import CallFacts, Directory, directory, period_facts

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
    def asked(cls, text: str | None, now: datetime, tz: ZoneInfo) -> Period:
        """The month a reader asked for ("YYYY-MM"), or the month of `now` when
        they named none — what `/stats`, `/report`, `/burden` and the board's
        report page all mean. Raises ValueError for anything else."""
        return cls.parse(text, tz) if text else cls.month_of(now, tz)

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
    domain's or the district's), as of the report's `now`, added up from
    their facts (`workflows.facts`, which defines on time, late and late now).

    - `raised`: calls raised in the period (withdrawn ones excluded).
    - `acknowledged`, `responded`: calls whose current lead department has
      acknowledged (签收) / responded (响应), on time or late.
    - `closed`: calls closed — confirmed by the caller or closed automatically.
    - `late`: calls with any limit late — done after its deadline, or not done
      by a passed deadline; a call counts once however many limits it missed.
    - `overdue`: calls *late now* (逾期): still open with a deadline passed
      whose step is not done. A late call since finished is late, not overdue.
    - `on_time_*`: calls whose step was done at or before its deadline.
    - `supervised`, `referred`: calls that reached 督办 (hold a supervision
      order) / 问责 (were referred for accountability).
    - `rated`, `rating_sum`, `satisfied`: ratings given, the sum of their
      scores (100/80/0), and how many were 满意 or 基本满意.
    - `avg_hours_to_*`: mean time from dispatch to the step, over the calls
      that did it, in working hours (elapsed hours for emergencies); None when
      no call qualifies.
    """

    raised: int = 0
    acknowledged: int = 0
    responded: int = 0
    closed: int = 0
    late: int = 0
    overdue: int = 0
    on_time_acknowledged: int = 0
    on_time_responded: int = 0
    on_time_resolved: int = 0
    supervised: int = 0
    referred: int = 0
    rated: int = 0
    rating_sum: int = 0
    satisfied: int = 0
    avg_hours_to_acknowledge: float | None = None
    avg_hours_to_respond: float | None = None
    avg_hours_to_resolve: float | None = None

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


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def tally(facts: Iterable[CallFacts]) -> Figures:
    """The figures of `facts` (the caller chooses the calls). Pure; withdrawn
    calls, should any be passed, count nowhere."""
    raised = acknowledged = responded = closed = late = overdue = 0
    ack_on_time = respond_on_time = resolve_on_time = supervised = referred = 0
    rated = rating_sum = satisfied = 0
    hours: tuple[list[float], list[float], list[float]] = ([], [], [])
    for fact in facts:
        if fact.status is CallStatus.WITHDRAWN:
            continue
        raised += 1
        acknowledged += fact.acknowledged
        responded += fact.responded
        closed += fact.closed
        late += fact.late
        overdue += fact.late_now
        ack_on_time += fact.acknowledge.on_time
        respond_on_time += fact.respond.on_time
        resolve_on_time += fact.resolve.on_time
        supervised += fact.supervised
        referred += fact.referred
        for spent, limit in zip(hours, fact.limits, strict=True):
            if limit.hours is not None:
                spent.append(limit.hours)
        if fact.rating_score is not None:
            rated += 1
            rating_sum += fact.rating_score
            satisfied += fact.satisfied
    return Figures(
        raised=raised,
        acknowledged=acknowledged,
        responded=responded,
        closed=closed,
        late=late,
        overdue=overdue,
        on_time_acknowledged=ack_on_time,
        on_time_responded=respond_on_time,
        on_time_resolved=resolve_on_time,
        supervised=supervised,
        referred=referred,
        rated=rated,
        rating_sum=rating_sum,
        satisfied=satisfied,
        avg_hours_to_acknowledge=_mean(hours[0]),
        avg_hours_to_respond=_mean(hours[1]),
        avg_hours_to_resolve=_mean(hours[2]),
    )


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
    - score: `rating_share` × rating + (1 − `rating_share`) × performance,
      minus `deduction(figures, weights)` for the supervision orders (督办)
      and accountability referrals (问责) the department drew, never below 0.
      A department nobody rated is scored on performance alone, rather than
      counting the missing half as 0 (which would punish it for callers who
      have not answered) or as 100.

    Raises ValueError for a negative weight or deduction, all four
    performance weights 0, or a `rating_share` outside 0–1.
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
    base = performance if rating is None else share * rating + (1 - share) * performance
    return rating, performance, max(base - deduction(figures, weights), 0.0)


def deduction(figures: Figures, weights: EvaluationWeights) -> float:
    """Points taken off a department's score: `supervision_deduction` for each
    call that reached 督办 and `accountability_deduction` more for each that
    reached 问责 (a referred call holds a supervision order too, so it costs
    both: 5 + 10 by default)."""
    if weights.supervision_deduction < 0 or weights.accountability_deduction < 0:
        raise ValueError("deductions must not be negative")
    return (figures.supervised * weights.supervision_deduction
            + figures.referred * weights.accountability_deduction)


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
    deduction: float
    score: float | None
    rank: int | None


@dataclass(frozen=True)
class Group:
    """One row of a report's town or domain table. `code` is None for the
    calls with no such group (raised as "not sure": no domain); `name` is
    the unit's or domain's own name (data, not translated)."""

    code: str | None
    name: str
    figures: Figures


@dataclass(frozen=True)
class Report:
    """The statistics of one period, as of `as_of`, and the facts they add
    up (so every renderer — text, chat, Excel, chart, JSON — reads one set).

    `departments` holds every department, ranked best first (ties share a
    rank, ordered by code), then the unranked ones by code. `towns` lists
    every town/street (villages rolled up into their town) and `domains`
    every domain — with zeros if quiet — in the order they were set up;
    `domains` ends with a row for the calls with no domain (code None) when
    there are any, so the domains add up to the total.
    """

    period: Period
    departments: list[DepartmentScore]
    towns: list[Group]
    domains: list[Group]
    total: Figures
    as_of: datetime
    district_name: str
    facts: list[CallFacts]
    directory: Directory
    weights: EvaluationWeights
    tz: ZoneInfo
    # Calls by the system that raised them over Open311 (`code`: its key's
    # name; None for the cadres' own calls in chat), listed only when some
    # system raised a call in the period — else empty.
    sources: list[Group] = field(default_factory=list)

    def town(self, code: str) -> Figures:
        return next(g.figures for g in self.towns if g.code == code)

    def domain(self, code: str | None) -> Figures:
        return next(g.figures for g in self.domains if g.code == code)

    def source(self, code: str | None) -> Figures:
        return next(g.figures for g in self.sources if g.code == code)

    def department(self, code: str) -> DepartmentScore:
        return next(d for d in self.departments if d.department_code == code)

    def headline(self) -> str:
        """The headline, "N calls raised, M answered and closed", where answered
        and closed means closed (English; the conversations translate)."""
        raised, closed = self.total.raised, self.total.closed
        noun = "call" if raised == 1 else "calls"
        return f"{raised} {noun} raised, {closed} answered and closed"


def _group(facts: Iterable[CallFacts], key: Callable[[CallFacts], str | None]
           ) -> dict[str | None, list[CallFacts]]:
    grouped: dict[str | None, list[CallFacts]] = {}
    for fact in facts:
        grouped.setdefault(key(fact), []).append(fact)
    return grouped


def build_report(period: Period, facts: list[CallFacts], names: Directory,
                 weights: EvaluationWeights, now: datetime, tz: ZoneInfo,
                 other_deductions: Mapping[str, float] | None = None) -> Report:
    """The report of `facts` (the period's calls). Pure. `other_deductions`:
    points off a department's score (by department code) besides 督办/问责 —
    the form-burden watch's, when configured (`workflows.burden`)."""
    others = other_deductions or {}
    by_department = _group(facts, lambda f: f.department_code)
    by_town = _group(facts, lambda f: f.town_code)
    by_domain = _group(facts, lambda f: f.domain_code)
    by_source = _group(facts, lambda f: f.source)
    unranked: list[DepartmentScore] = []
    for code, name in names.departments.items():
        figures = tally(by_department.get(code, ()))
        rating, performance, score = department_score(figures, weights)
        extra = others.get(code, 0.0)
        score = max(score - extra, 0.0)
        has_calls = figures.raised > 0
        unranked.append(
            DepartmentScore(
                department_code=code,
                department_name=name,
                figures=figures,
                rating_score=rating,
                performance_score=performance if has_calls else None,
                deduction=deduction(figures, weights) + extra,
                score=score if has_calls else None,
                rank=None,
            )
        )
    ranks = competition_ranks([entry.score for entry in unranked])
    scored = [replace(entry, rank=rank) for entry, rank in zip(unranked, ranks, strict=True)]
    # Stable sort: equal ranks keep code order; unranked go last, by code.
    scored.sort(key=lambda entry: (entry.rank is None, entry.rank or 0))
    domains = [Group(code, name, tally(by_domain.get(code, ())))
               for code, name in names.domains.items()]
    if by_domain.get(None):
        domains.append(Group(None, "", tally(by_domain[None])))
    return Report(
        period=period,
        departments=scored,
        towns=[Group(code, name, tally(by_town.get(code, ())))
               for code, name in names.towns.items()],
        domains=domains,
        total=tally(facts),
        as_of=now,
        district_name=names.district_name,
        facts=facts,
        directory=names,
        weights=weights,
        tz=tz,
        sources=[Group(code, code or "", tally(by_source[code]))
                 for code in sorted(by_source, key=lambda c: (c is not None, c or ""))]
        if set(by_source) - {None} else [],
    )


def report(ctx: Context, period: Period, now: datetime) -> Report:
    """The report for `period` as of `now` (see the module docstring for which
    calls count where). Read-only; who may read it is the conversations'
    business (`handlers.reports.may_read`)."""
    _require_aware("now", now)
    with session_scope(ctx.engine) as session:
        facts = period_facts(session, period.start, period.end, now,
                             ctx.rules.calendar, ctx.rules.policy)
        names = directory(session)
    others: dict[str, float] = {}
    burden_rules = ctx.rules.burden
    if burden_rules.deduct_out_of_plan or burden_rules.deduct_duplicate:
        # Imported here: the form-burden watch builds on this module (Period).
        from workflows.burden import burden_deductions

        others = burden_deductions(ctx, period)
    return build_report(period, facts, names, ctx.rules.weights, now, ctx.rules.tz, others)


@dataclass(frozen=True)
class StoredFile:
    """A report file kept in the media store (by SHA-256) for sending."""

    sha256: str
    name: str
    as_photo: bool

    def as_params(self) -> dict[str, object]:
        return {"sha256": self.sha256, "name": self.name, "photo": self.as_photo}


def stored(ctx: Context, files: Sequence[ReportFile]) -> list[StoredFile]:
    """`files` put in the media store, for sending by reference."""
    return [StoredFile(ctx.media.put(file.data), file.name, file.as_photo) for file in files]


def store_files(ctx: Context, result: Report, locale: Locale) -> list[StoredFile]:
    """The report's files for a reader of `locale` (the chart, the workbook),
    put in the media store; none when the context has no exporter."""
    if ctx.exports is None:
        return []
    return stored(ctx, ctx.exports(result, locale))

"""The escalation ladder (提醒 → 催办 → 督办 → 问责) as a pure schedule.

A dispatched call runs three clocks — acknowledge, respond, resolve — each
with its deadline. For every clock `ladder` lists each nudge the brief's
ladder sends and when: a reminder halfway to the deadline and shortly before
it (liaison), the urge when it is missed (L1, liaison and head), supervision
when still missed after `supervise_after` (L2, head and dispatcher) and the
accountability referral after `accountability_after` (L3, supervisor and
dispatcher). `due_steps` picks the steps whose time has come at `now`.

Nothing here reads the database or the wall clock: the scheduler's sweep
loads the open calls, asks `due_steps`, and claims each step through the
outbox by its `key`, so a step is delivered once however often it is asked.

Joint calls (联合呼叫): the acknowledge clock is the lead department's
(`Call.acknowledged_at`). Assisting departments acknowledge separately, per
`CallDepartment.acknowledged_at`; nudging them is not modelled here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from models import Call, CallStatus, Domain, Role
from workflows.calendar import WorkingDayCalendar
from workflows.context import QuietHours, Rules
from workflows.deadlines import (
    DEFAULT_LIMITS,
    CallLimits,
    Limit,
    LimitUnit,
    WorkdayPolicy,
    after_working_days,
    midpoint,
)
from workflows.lifecycle import FINAL_STATES

#: Statuses in which no clock runs: not yet with a department, or over.
NO_CLOCKS = FINAL_STATES | {CallStatus.RAISED, CallStatus.PENDING_DISPATCH}

#: The referral repeats at most this often and this long. Decided, not a limitation:
#: the schedule must be finite, and a call unanswered ten working days after its
#: referral is the discipline commission's case — a daily message nobody answers
#: helps nobody. It stays on /overdue and in the digests (README "Escalation").
MAX_FINAL_REPEATS = 10
MAX_FINAL_SPAN = timedelta(days=30)


class LimitName(StrEnum):
    """The three clocks of a call."""

    ACKNOWLEDGE = "acknowledge"
    RESPOND = "respond"
    RESOLVE = "resolve"


class Step(StrEnum):
    """A rung of the ladder."""

    REMINDER_HALFWAY = "reminder_halfway"  # 提醒
    REMINDER_BEFORE = "reminder_before"  # 提醒
    URGE = "urge"  # L1 催办
    SUPERVISE = "supervise"  # L2 督办
    ACCOUNTABILITY = "accountability"  # L3 问责


RECIPIENTS: dict[Step, frozenset[str]] = {
    Step.REMINDER_HALFWAY: frozenset({Role.LIAISON}),
    Step.REMINDER_BEFORE: frozenset({Role.LIAISON}),
    Step.URGE: frozenset({Role.LIAISON, Role.HEAD}),
    Step.SUPERVISE: frozenset({Role.HEAD, Role.DISPATCHER}),
    Step.ACCOUNTABILITY: frozenset({Role.SUPERVISOR, Role.DISPATCHER}),
}


@dataclass(frozen=True)
class EscalationPolicy:
    """How a domain escalates: the delays of L2 and L3 after a missed deadline,
    its quiet hours (None: any hour), whether it is an emergency (which ignores
    quiet hours), how long before a deadline the liaison is reminded, and how
    often an unanswered nudge repeats."""

    supervise_after: Limit
    accountability_after: Limit
    quiet_hours: QuietHours | None
    emergency: bool = False
    remind_before: timedelta = timedelta(hours=1)
    repeat_every: Limit = field(default_factory=lambda: Limit(1, LimitUnit.WORKING_DAYS))

    @classmethod
    def from_domain(cls, domain: Domain | None, rules: Rules) -> EscalationPolicy:
        """The policy of `domain`; a call without one (routed by the dispatcher
        without a catalog item) gets the brief's routine defaults: 1wd / 3wd and
        the quiet hours of the settings."""
        if domain is None:
            return cls(
                Limit(1, LimitUnit.WORKING_DAYS),
                Limit(3, LimitUnit.WORKING_DAYS),
                rules.quiet_hours,
                repeat_every=rules.repeat_every,
            )
        return cls(
            Limit.parse(domain.supervise_after),
            Limit.parse(domain.accountability_after),
            QuietHours.parse(domain.quiet_hours),
            domain.emergency,
            repeat_every=rules.repeat_every,
        )


@dataclass(frozen=True)
class ClockState:
    """One clock of a call: started at dispatch, due at `due`, met at `met_at`
    (None while nobody has acted); `unit` is what its limit counts (working
    days run in working time, minutes round the clock)."""

    limit: LimitName
    started: datetime
    due: datetime
    met_at: datetime | None
    unit: LimitUnit = LimitUnit.WORKING_DAYS


@dataclass(frozen=True)
class DueStep:
    """One nudge of the ladder: it becomes due `at`, and is sent at `send_at`
    (`at` moved out of quiet hours) to the members of the call's department
    and offices holding one of `recipients` (role names). `repeat` is 0 for
    the first sending and counts the repeats while nobody acts."""

    limit: LimitName
    step: Step
    at: datetime
    send_at: datetime
    recipients: frozenset[str]
    repeat: int = 0

    @property
    def key(self) -> str:
        """The step's identity within its call, for exactly-once delivery."""
        return f"{self.limit}:{self.step}:{self.repeat}"


def clocks(call: Call, limits: CallLimits | None = None) -> list[ClockState]:
    """The clocks of `call` that are running or met, in the order acknowledge,
    respond, resolve. All three start at dispatch (`workflows.calls` sets the
    three deadlines then); a call not with a department, or over, has none.
    `limits` are the call's (`deadlines.limits_of(item)`); None: the defaults
    of a call routed without an item."""
    if call.status in NO_CLOCKS or call.dispatched_at is None:
        return []
    limits = limits or DEFAULT_LIMITS
    started = call.dispatched_at
    states = (
        (LimitName.ACKNOWLEDGE, call.acknowledge_due, call.acknowledged_at, limits.acknowledge),
        (LimitName.RESPOND, call.respond_due, call.responded_at, limits.respond),
        (LimitName.RESOLVE, call.resolve_due, call.resolved_at, limits.resolve),
    )
    return [ClockState(name, started, due, met, limit.unit)
            for name, due, met, limit in states if due is not None]


def ladder(
    clock: ClockState,
    policy: EscalationPolicy,
    calendar: WorkingDayCalendar,
    workday_policy: WorkdayPolicy,
) -> list[DueStep]:
    """Every step `policy` schedules for `clock` if nobody ever acts, by `at`.

    Reminders are sent once; the urge and supervision repeat every
    `repeat_every` until the next step starts; the referral repeats at most
    once a working day, `MAX_FINAL_REPEATS` times within `MAX_FINAL_SPAN`.
    Whether the clock is met is for the caller to judge (see `due_steps`).
    """

    def later(moment: datetime, by: Limit) -> datetime:
        if by.unit is LimitUnit.MINUTES:
            return moment + timedelta(minutes=by.amount)
        return after_working_days(moment, by.amount, calendar, workday_policy)

    def next_referral(moment: datetime) -> datetime:
        return max(
            later(moment, policy.repeat_every),
            after_working_days(moment, 1, calendar, workday_policy),
        )

    started, due = clock.started.astimezone(UTC), clock.due.astimezone(UTC)
    supervise_at = later(due, policy.supervise_after)
    accountability_at = later(due, policy.accountability_after)

    rungs: list[tuple[Step, datetime, int]] = []
    span = due - started
    if span > timedelta(0):
        # A fifth of the limit caps the lead time, so a 15-minute limit is
        # reminded 3 minutes before rather than before it even started (and always
        # after halfway). Working-day limits last at least 18 hours: the full hour.
        before = due - min(policy.remind_before, span / 5)
        middle = midpoint(started, due, clock.unit, calendar, workday_policy)
        rungs.append((Step.REMINDER_HALFWAY, middle, 0))
        rungs.append((Step.REMINDER_BEFORE, before, 0))

    rungs += _repeats(Step.URGE, due, supervise_at, lambda m: later(m, policy.repeat_every))
    rungs += _repeats(
        Step.SUPERVISE, supervise_at, accountability_at, lambda m: later(m, policy.repeat_every)
    )
    rungs += _repeats(
        Step.ACCOUNTABILITY,
        accountability_at,
        accountability_at + MAX_FINAL_SPAN,
        next_referral,
        MAX_FINAL_REPEATS,
    )
    rungs.sort(key=lambda rung: rung[1])  # stable: ties keep the ladder's order
    tz = workday_policy.tz
    return [
        DueStep(clock.limit, step, at, _out_of_quiet_hours(at, policy, tz), RECIPIENTS[step], n)
        for step, at, n in rungs
    ]


def due_steps(call: Call, now: datetime, rules: Rules, domain: Domain | None,
              limits: CallLimits | None = None) -> list[DueStep]:
    """The steps of `call` to send at `now`: those with `send_at` <= `now` on
    clocks nobody has met, ordered by `send_at`. A met clock has nothing due,
    even steps that fell due before it was met: they were sent then, or are
    moot now. Steps already sent come again; the outbox drops them by `key`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    policy = EscalationPolicy.from_domain(domain, rules)
    steps = [
        step
        for clock in clocks(call, limits)
        if clock.met_at is None
        for step in ladder(clock, policy, rules.calendar, rules.policy)
        if step.send_at <= now
    ]
    return sorted(steps, key=lambda step: (step.send_at, step.at))


def _repeats(
    step: Step,
    first: datetime,
    until: datetime,
    every: Callable[[datetime], datetime],
    most: int | None = None,
) -> Iterator[tuple[Step, datetime, int]]:
    """`step` at `first`, then repeated by `every` while before `until` (and at
    most `most` times). Each repeat counts from the previous `at`, not from its
    deferred sending, so quiet hours do not make the series drift."""
    yield step, first, 0
    at, n = every(first), 1
    while at < until and (most is None or n <= most):
        yield step, at, n
        at, n = every(at), n + 1


def _out_of_quiet_hours(at: datetime, policy: EscalationPolicy, tz: ZoneInfo) -> datetime:
    """`at`, or the end of the quiet hours it falls in (local time), in UTC."""
    quiet = policy.quiet_hours
    if policy.emergency or quiet is None:
        return at
    local = at.astimezone(tz)
    if not quiet.contains(local.time()):
        return at
    # Inside quiet hours that wrap midnight, the evening part ends tomorrow morning.
    day = local.date() if local.time() < quiet.end else local.date() + timedelta(days=1)
    return datetime.combine(day, quiet.end, tzinfo=tz).astimezone(UTC)

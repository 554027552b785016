"""Tests for workflows.escalation: the ladder of one clock, what is due when,
quiet hours, repeats, and calls that have no clocks. Calls are built in
memory; time is a parameter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from models import Call, CallStatus, Domain
from workflows.calendar import WorkingDayCalendar
from workflows.context import QuietHours, Rules
from workflows.deadlines import SHANGHAI, CallLimits, Limit, LimitUnit, WorkdayPolicy, due_at
from workflows.escalation import (
    MAX_FINAL_REPEATS,
    MAX_FINAL_SPAN,
    ClockState,
    DueStep,
    EscalationPolicy,
    LimitName,
    Step,
    clocks,
    due_steps,
    ladder,
)

CALENDAR = WorkingDayCalendar()
POLICY = WorkdayPolicy()
RULES = Rules(calendar=CALENDAR, policy=POLICY)  # quiet 22:00-07:00, repeat every 1wd
ROUTINE = Domain(code="enforcement", name="综合执法", supervise_after="1wd",
                 accountability_after="3wd", quiet_hours="22:00-07:00")
EMERGENCY = Domain(code="emergency", name="应急处置", emergency=True,
                   supervise_after="30m", accountability_after="2h")
LIAISON = frozenset({"liaison"})


def sh(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    """A moment in Asia/Shanghai."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


def call(
    at: datetime, ack: str = "1wd", respond: str = "2wd", resolve: str = "5wd", **changes: Any
) -> Call:
    """A call raised and dispatched at `at` with the given limits, nobody acting."""

    def due(limit: str) -> datetime:
        return due_at(at, Limit.parse(limit), CALENDAR, POLICY)

    fields: dict[str, Any] = dict(
        number="BY-2025-000001", caller_id=1, unit_id=1, text="x",
        status=CallStatus.DISPATCHED, raised_at=at, dispatched_at=at,
        acknowledge_due=due(ack), respond_due=due(respond), resolve_due=due(resolve),
    )
    return Call(**(fields | changes))


def table(steps: list[DueStep]) -> list[tuple[str, datetime, datetime]]:
    return [(step.key, step.at, step.send_at) for step in steps]


NATIONAL_DAY = sh(2025, 9, 30, 16, 50)  # Tuesday, the day before the holiday


def test_the_national_day_ladder() -> None:
    # The brief's drain: raised and dispatched 2025-09-30 16:50, acknowledge in
    # 1 working day; 10-01..10-08 are the holiday, so it is due 10-09 18:00.
    clock = clocks(call(NATIONAL_DAY))[0]
    assert (clock.limit, clock.due) == (LimitName.ACKNOWLEDGE, sh(2025, 10, 9, 18))
    steps = ladder(clock, EscalationPolicy.from_domain(ROUTINE, RULES), CALENDAR, POLICY)

    # Halfway is counted in working time: 10h10m of it (1h10m on 9-30, 9h on
    # 10-09), half is 5h05m → 10-09 12:55, not 10-05 05:25 in the holiday.
    # Supervision is 1 working day after the miss: Fri 10-10 18:00.
    # Accountability is 3 working days after 10-09: Fri 10-10 (1), the make-up
    # Saturday 10-11 (2), Sunday 10-12 is off, Mon 10-13 (3) — 10-13 18:00, not 10-14.
    # The urge's repeat a working day later would be 10-10 18:00, when supervision
    # starts, so it is not sent; supervision repeats once, on the make-up Saturday.
    assert not CALENDAR.is_working_day(sh(2025, 10, 5).date())
    assert CALENDAR.is_working_day(sh(2025, 10, 11).date())
    assert table(steps)[:6] == [
        ("acknowledge:reminder_halfway:0", sh(2025, 10, 9, 12, 55), sh(2025, 10, 9, 12, 55)),
        ("acknowledge:reminder_before:0", sh(2025, 10, 9, 17), sh(2025, 10, 9, 17)),
        ("acknowledge:urge:0", sh(2025, 10, 9, 18), sh(2025, 10, 9, 18)),
        ("acknowledge:supervise:0", sh(2025, 10, 10, 18), sh(2025, 10, 10, 18)),
        ("acknowledge:supervise:1", sh(2025, 10, 11, 18), sh(2025, 10, 11, 18)),
        ("acknowledge:accountability:0", sh(2025, 10, 13, 18), sh(2025, 10, 13, 18)),
    ]
    # The referral then repeats each working day: Tue 10-14, Wed 10-15, …
    referrals = [s for s in steps if s.step is Step.ACCOUNTABILITY]
    assert [s.at for s in referrals[1:3]] == [sh(2025, 10, 14, 18), sh(2025, 10, 15, 18)]
    # The decided bound (README "Escalation"): ten repeats within thirty days.
    assert len(referrals) == 1 + MAX_FINAL_REPEATS
    assert referrals[-1].at - referrals[0].at <= MAX_FINAL_SPAN
    assert not [s for s in due_steps(call(NATIONAL_DAY), sh(2026, 3, 1), RULES, ROUTINE)
                if s.step is Step.ACCOUNTABILITY and s.repeat > MAX_FINAL_REPEATS]
    assert {s.step: s.recipients for s in steps} == {
        Step.REMINDER_HALFWAY: LIAISON,
        Step.REMINDER_BEFORE: LIAISON,
        Step.URGE: {"liaison", "head"},
        Step.SUPERVISE: {"head", "dispatcher"},
        Step.ACCOUNTABILITY: {"supervisor", "dispatcher"},
    }
    assert all(step.at.tzinfo is UTC and step.send_at.tzinfo is UTC for step in steps)
    assert len({step.key for step in steps}) == len(steps)


def test_due_steps_grow_with_time_and_stop_when_acknowledged() -> None:
    # Acknowledge 1wd (10-09 18:00), respond 2wd (10-10 18:00), resolve 5wd (10-14 18:00).
    untouched = call(NATIONAL_DAY)

    def keys(c: Call, now: datetime) -> list[str]:
        return [step.key for step in due_steps(c, now, RULES, ROUTINE)]

    assert keys(untouched, sh(2025, 9, 30, 17)) == []
    assert keys(untouched, sh(2025, 10, 8, 23, 59)) == []  # nothing in the holiday
    assert keys(untouched, sh(2025, 10, 9, 12, 55)) == ["acknowledge:reminder_halfway:0"]
    # Respond halfway: 10h10m + 9h of working time / 2 → 10-09 17:25; resolve
    # (10h10m + 4 × 9h) / 2 → 10-11 12:55 (a make-up Saturday), not yet.
    assert keys(untouched, sh(2025, 10, 9, 18)) == [
        "acknowledge:reminder_halfway:0",
        "acknowledge:reminder_before:0",
        "respond:reminder_halfway:0",
        "acknowledge:urge:0",
    ]
    steps = due_steps(untouched, sh(2025, 10, 10, 18), RULES, ROUTINE)
    assert [s.send_at for s in steps] == sorted(s.send_at for s in steps)
    assert {"respond:urge:0", "acknowledge:supervise:0"} <= {s.key for s in steps}

    # Acknowledged late, on 10-09 19:00: nothing of the acknowledge clock is due
    # any more, not even what fell due before; the respond clock goes on.
    acknowledged = call(
        NATIONAL_DAY, status=CallStatus.ACKNOWLEDGED, acknowledged_at=sh(2025, 10, 9, 19)
    )
    assert keys(acknowledged, sh(2025, 10, 10, 18)) == [
        "respond:reminder_halfway:0",
        "respond:reminder_before:0",
        "respond:urge:0",
    ]


def test_emergency_steps_go_out_at_night() -> None:
    # Raised 23:50 in an emergency domain: 15 minutes to acknowledge (due 00:05),
    # reminded a fifth of the limit (3 min) before; L2 after 30 min, L3 after 2 h.
    flood = call(sh(2025, 10, 20, 23, 50), ack="15m", respond="1h", resolve="8h")
    minutes = CallLimits(Limit.parse("15m"), Limit.parse("1h"), Limit.parse("8h"))
    policy = EscalationPolicy.from_domain(EMERGENCY, RULES)
    assert policy == EscalationPolicy(
        Limit.parse("30m"), Limit.parse("2h"), None, emergency=True, repeat_every=Limit.parse("1wd")
    )
    steps = ladder(clocks(flood, minutes)[0], policy, CALENDAR, POLICY)
    assert [(step.key, step.at) for step in steps[:5]] == [
        ("acknowledge:reminder_halfway:0", sh(2025, 10, 20, 23, 57, 30)),
        ("acknowledge:reminder_before:0", sh(2025, 10, 21, 0, 2)),
        ("acknowledge:urge:0", sh(2025, 10, 21, 0, 5)),
        ("acknowledge:supervise:0", sh(2025, 10, 21, 0, 35)),
        ("acknowledge:accountability:0", sh(2025, 10, 21, 2, 5)),
    ]
    assert all(step.send_at == step.at for step in steps)  # no deferral at night
    # Even with quiet hours set, an emergency ignores them.
    quiet_emergency = replace(policy, quiet_hours=QuietHours.parse("22:00-07:00"))
    assert ladder(clocks(flood, minutes)[0], quiet_emergency, CALENDAR, POLICY) == steps

    now = sh(2025, 10, 21, 2, 5)
    due = {step.key for step in due_steps(flood, now, RULES, EMERGENCY, minutes)}
    # Respond (due 00:50) runs alongside and is under supervision since 01:20; resolve
    # (due 07:50) reaches its halfway reminder only at 03:50.
    assert {"acknowledge:accountability:0", "respond:supervise:0"} <= due
    assert not any(key.startswith("resolve:") for key in due)


def test_a_step_in_quiet_hours_waits_for_the_morning() -> None:
    quiet = QuietHours.parse("22:00-07:00")
    policy = EscalationPolicy(Limit.parse("30m"), Limit.parse("2h"), quiet)
    clock = ClockState(LimitName.RESPOND, sh(2025, 10, 20, 18), sh(2025, 10, 20, 23), None,
                       LimitUnit.MINUTES)
    sent = {step.key: step.send_at for step in ladder(clock, policy, CALENDAR, POLICY)}
    assert sent["respond:reminder_halfway:0"] == sh(2025, 10, 20, 20, 30)  # evening: not quiet
    assert sent["respond:reminder_before:0"] == sh(2025, 10, 21, 7)  # 22:00 is quiet
    assert sent["respond:urge:0"] == sh(2025, 10, 21, 7)  # 23:00 → 07:00 next morning
    assert sent["respond:supervise:0"] == sh(2025, 10, 21, 7)  # 23:30
    assert sent["respond:accountability:0"] == sh(2025, 10, 21, 7)  # 01:00 → the same morning
    assert sent["respond:accountability:1"] == sh(2025, 10, 22, 7)  # repeats a working day on


def test_nudges_repeat_until_the_next_step_or_until_met() -> None:
    rules = replace(RULES, repeat_every=Limit.parse("2h"))
    untouched = call(NATIONAL_DAY)
    steps = ladder(clocks(untouched)[0], EscalationPolicy.from_domain(ROUTINE, rules),
                   CALENDAR, POLICY)
    urges = [s for s in steps if s.step is Step.URGE]
    # Every 2 h from 10-09 18:00 until supervision starts at 10-10 18:00: 16:00 is the
    # last; those in the night all wait for 07:00 but keep their own `at`.
    assert [s.repeat for s in urges] == list(range(12))
    assert urges[1].at == sh(2025, 10, 9, 20)
    assert urges[-1].at == sh(2025, 10, 10, 16)
    assert [s.send_at for s in urges[2:6]] == [sh(2025, 10, 10, 7)] * 4
    supervisions = [s for s in steps if s.step is Step.SUPERVISE]
    assert supervisions[-1].at == sh(2025, 10, 13, 16)  # before the referral at 18:00
    # The referral still repeats no more than once a working day.
    referrals = [s.at for s in steps if s.step is Step.ACCOUNTABILITY]
    assert referrals[:3] == [sh(2025, 10, 13, 18), sh(2025, 10, 14, 18), sh(2025, 10, 15, 18)]

    def urge_keys(c: Call, now: datetime) -> list[str]:
        return [s.key for s in due_steps(c, now, rules, ROUTINE) if s.step is Step.URGE]

    assert urge_keys(untouched, sh(2025, 10, 9, 21)) == ["acknowledge:urge:0", "acknowledge:urge:1"]
    acknowledged = call(
        NATIONAL_DAY, status=CallStatus.ACKNOWLEDGED, acknowledged_at=sh(2025, 10, 9, 21)
    )
    assert urge_keys(acknowledged, sh(2025, 10, 10, 12)) == []


@pytest.mark.parametrize(
    "status",
    [CallStatus.CLOSED, CallStatus.WITHDRAWN, CallStatus.RAISED, CallStatus.PENDING_DISPATCH],
)
def test_calls_without_running_clocks_have_no_steps(status: CallStatus) -> None:
    c = call(NATIONAL_DAY, status=status)
    assert clocks(c) == []
    assert due_steps(c, sh(2025, 12, 31), RULES, ROUTINE) == []


def test_a_resolved_call_has_met_clocks_and_nothing_due() -> None:
    c = call(
        NATIONAL_DAY, status=CallStatus.RESOLVED, acknowledged_at=sh(2025, 10, 9, 9),
        responded_at=sh(2025, 10, 9, 10), resolved_at=sh(2025, 10, 9, 11),
    )
    assert [clock.limit for clock in clocks(c)] == list(LimitName)
    assert all(clock.met_at is not None for clock in clocks(c))
    assert due_steps(c, sh(2025, 12, 31), RULES, ROUTINE) == []


def test_a_clock_with_no_time_at_all_gets_no_reminders() -> None:
    # Not made by the workflows (a reopened call keeps its dispatch as start),
    # but a deadline at or before the start must not produce reminders in the past.
    moment = sh(2025, 10, 20, 10)
    clock = ClockState(LimitName.RESOLVE, moment, moment, None)
    steps = ladder(clock, EscalationPolicy.from_domain(ROUTINE, RULES), CALENDAR, POLICY)
    assert steps[0].key == "resolve:urge:0"
    assert steps[0].at == moment


def test_a_call_without_a_domain_gets_the_routine_defaults() -> None:
    policy = EscalationPolicy.from_domain(None, RULES)
    assert policy == EscalationPolicy(
        Limit.parse("1wd"), Limit.parse("3wd"), RULES.quiet_hours, emergency=False
    )
    assert policy.remind_before == timedelta(hours=1)


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        due_steps(call(NATIONAL_DAY), datetime(2025, 10, 9, 18), RULES, ROUTINE)

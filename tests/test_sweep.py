"""The escalation sweep: the whole ladder for an untouched call, exactly once,
stopped by acting; emergencies at night; the cost follows the due calls."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from models import Call, Event, Nudge, OutboxMessage
from tests.conftest import POSTGRES_URL, T0, Org
from workflows import calls
from workflows.context import Context
from workflows.sweep import sweep

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def run_clock(ctx: Context, start: datetime, end: datetime, every: timedelta) -> None:
    """Sweep as the scheduler would, every `every` from `start` to `end`."""
    now = start
    while now <= end:
        sweep(ctx, now)
        now += every


def sent(ctx: Context, call_id: int) -> list[tuple[str, str, int, str]]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(Nudge).where(Nudge.call_id == call_id, col(Nudge.sent))
                            .order_by(col(Nudge.id)))
        return [(n.limit, n.step, n.repeat, n.done_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"))
                for n in rows]


def recipients(ctx: Context, call_id: int, step: str, limit: str = "acknowledge") -> set[int]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.call_id == call_id,
                                                        OutboxMessage.template == "nudge"))
        return {m.member_id for m in rows
                if m.params["step"] == step and m.params["limit"] == limit
                and m.params["repeat"] == 0}


def test_untouched_call_climbs_the_whole_ladder_across_national_day(
    ctx: Context, org: Org
) -> None:
    call = calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    cid = call.id or 0
    # The scheduler sweeps on the half hour.
    run_clock(ctx, local("2025-09-30 17:00"), local("2025-10-14 12:00"), timedelta(minutes=30))
    ack = [s for s in sent(ctx, cid) if s[0] == "acknowledge"]
    assert ack[:5] == [
        # Halfway in working time: 10-09 12:55, never in the holiday; the sweep
        # on the half hour sends it at 13:00.
        ("acknowledge", "reminder_halfway", 0, "10-09 13:00"),
        ("acknowledge", "reminder_before", 0, "10-09 17:00"),
        ("acknowledge", "urge", 0, "10-09 18:00"),
        # One working day later.
        ("acknowledge", "supervise", 0, "10-10 18:00"),
        # The 1wd repeat of supervision: Saturday 10-11 is a make-up working day.
        ("acknowledge", "supervise", 1, "10-11 18:00"),
    ]
    # Three working days after 10-09: 10-10, 10-11 (make-up), 10-13.
    assert ("acknowledge", "accountability", 0, "10-13 18:00") in ack
    assert recipients(ctx, cid, "reminder_before") == {org.water_liaison}
    assert recipients(ctx, cid, "urge") == {org.water_liaison, org.water_head}
    assert recipients(ctx, cid, "supervise") == {org.water_head, org.dispatcher}
    assert recipients(ctx, cid, "accountability") == {org.supervisor, org.dispatcher}
    with Session(ctx.engine) as session:
        stored = session.get(Call, cid)
        assert stored is not None and stored.supervision_number == "BY-DB-2025-0001"
        referral = session.exec(select(Event).where(
            Event.call_id == cid, Event.kind == "AccountabilityReferred")).all()
    # Only the acknowledge clock got that far: respond (due 10-10) refers on 10-14 18:00.
    assert len(referral) == 1
    dossier = referral[0].data["dossier"]
    assert [e["event"] for e in dossier["timeline"]][:2] == ["CallRaised", "CallDispatched"]
    assert {"limit": "acknowledge", "step": "urge", "repeat": 0} in [
        {k: n[k] for k in ("limit", "step", "repeat")} for n in dossier["nudges"]]
    # Sweeping again at the same moment changes nothing.
    before = sent(ctx, cid)
    sweep(ctx, local("2025-10-14 12:00"))
    assert sent(ctx, cid) == before


def test_nothing_is_sent_in_quiet_hours_except_emergencies(ctx: Context, org: Org) -> None:
    start = local("2025-10-20 23:40")
    flood = calls.raise_call(ctx, org.caller, start, "积水过膝", item_code="flood").id or 0
    run_clock(ctx, start, local("2025-10-21 03:00"), timedelta(minutes=1))
    steps = sent(ctx, flood)
    # 15 minutes to acknowledge: reminded 3 minutes before, urged at 23:55,
    # supervised 30 minutes later, referred after 2 hours — all at night.
    assert ("acknowledge", "urge", 0, "10-20 23:55") in steps
    assert ("acknowledge", "supervise", 0, "10-21 00:25") in steps
    assert ("acknowledge", "accountability", 0, "10-21 01:55") in steps
    with Session(ctx.engine) as session:
        times = [n.done_at.astimezone(SHANGHAI).time() for n in session.exec(select(Nudge))]
    assert any(t.hour < 7 for t in times)


def test_acting_stops_the_clock(ctx: Context, org: Org) -> None:
    cid = calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain").id or 0
    run_clock(ctx, local("2025-09-30 17:00"), local("2025-10-09 18:30"), timedelta(hours=1))
    calls.acknowledge(ctx, cid, org.water_liaison, local("2025-10-09 19:00"))
    calls.respond(ctx, cid, org.water_liaison, local("2025-10-09 19:05"), "已派人")
    run_clock(ctx, local("2025-10-09 19:30"), local("2025-10-20 12:00"), timedelta(hours=1))
    late = [s for s in sent(ctx, cid) if s[3] > "10-09 19:00"]
    assert all(s[0] == "resolve" for s in late)
    calls.resolve(ctx, cid, org.water_liaison, local("2025-10-20 12:30"), "已疏通")
    with Session(ctx.engine) as session:
        stored = session.get(Call, cid)
        assert stored is not None
    run_clock(ctx, local("2025-10-20 13:00"), local("2025-10-30 13:00"), timedelta(hours=6))
    assert [s for s in sent(ctx, cid) if s[3] > "10-20 12:30"] == []


def test_sweep_reads_only_calls_falling_due(ctx: Context, org: Org) -> None:
    for _ in range(5):
        calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    assert sweep(ctx, T0).calls == 5  # new calls: looked at once to plan
    assert sweep(ctx, T0 + timedelta(minutes=1)).calls == 0  # nothing due yet
    assert sweep(ctx, local("2025-10-05 07:00")).calls == 0  # the holiday: nothing due
    result = sweep(ctx, local("2025-10-09 13:00"))  # the halfway reminders
    assert (result.calls, result.sent) == (5, 5)


def test_after_downtime_only_the_most_advanced_step_is_sent(ctx: Context, org: Org) -> None:
    cid = calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain").id or 0
    sweep(ctx, T0)
    result = sweep(ctx, local("2025-10-10 18:30"))  # the service was down all holiday
    ack = [s for s in sent(ctx, cid) if s[0] == "acknowledge"]
    assert ack == [("acknowledge", "supervise", 0, "10-10 18:30")]
    assert result.superseded >= 3


@pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL")
def test_two_workers_sweep_a_backlog_once(ctx: Context, org: Org) -> None:
    ids = [calls.raise_call(ctx, org.caller, T0, f"积水{i}", item_code="drain").id
           for i in range(200)]
    sweep(ctx, T0)
    moment = local("2025-10-09 18:05")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            sweep(ctx, moment, batch=20)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with Session(ctx.engine) as session:
        urges = session.exec(select(OutboxMessage).where(OutboxMessage.template == "nudge")).all()
    keys = [m.key for m in urges]
    assert len(keys) == len(set(keys))
    # Each call: the urge to liaison and head (reminders superseded).
    assert len([m for m in urges if m.params["step"] == "urge"]) == 2 * len(ids)
    assert all(m.created_at == moment.astimezone(UTC) for m in urges)

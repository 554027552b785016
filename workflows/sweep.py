"""The escalation sweep: which reminders and ladder steps are due now, each
recorded once (a `Nudge` row) and queued in the outbox for the right people.

The database says what is due: `Call.next_nudge_at` is the earliest moment
the sweep has anything to do for a call, so a sweep reads only the calls
falling due — its cost follows the due work, not the number of open calls.
Calls are claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
workers sweep side by side without doubling a step; SQLite runs one worker.

After downtime several steps of one clock may be due at once; only the most
advanced is sent, the others are recorded as superseded, so a liaison gets
one urgent message rather than a backlog of stale ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from models import (
    Attachment,
    Call,
    Domain,
    Event,
    Member,
    Nudge,
    Role,
    next_counter,
    session_scope,
)
from workflows.context import Context
from workflows.escalation import (
    DueStep,
    EscalationPolicy,
    Step,
    clocks,
    ladder,
)
from workflows.lifecycle import OPEN_STATES
from workflows.notifications import department_contacts, dispatchers, enqueue

StepId = tuple[str, datetime, str, int]  # limit, clock due, step, repeat

EVENT_OF_STEP = {
    Step.URGE: "CallUrged",
    Step.SUPERVISE: "CallSupervised",
    Step.ACCOUNTABILITY: "AccountabilityReferred",
}


@dataclass(frozen=True)
class SweepResult:
    calls: int  # calls looked at
    sent: int  # steps sent (each to one or more people)
    superseded: int  # steps recorded but not sent


@dataclass(frozen=True)
class _Planned:
    step: DueStep
    clock_due: datetime

    @property
    def id(self) -> StepId:
        return (self.step.limit.value, self.clock_due, self.step.step.value, self.step.repeat)


def _plan(call: Call, ctx: Context, domain: Domain | None) -> list[_Planned]:
    """Every step of the call's unmet clocks, whenever it falls."""
    policy = EscalationPolicy.from_domain(domain, ctx.rules)
    return [
        _Planned(step, clock.due)
        for clock in clocks(call)
        if clock.met_at is None
        for step in ladder(clock, policy, ctx.rules.calendar, ctx.rules.policy)
    ]


def _recipients(session: Session, call: Call, roles: frozenset[str]) -> list[Member]:
    department = call.lead_department_id or 0
    found: dict[int, Member] = {}

    def add(members: list[Member]) -> None:
        for member in members:
            found.setdefault(member.id or 0, member)

    if "liaison" in roles:
        add(department_contacts(session, department))
    if "head" in roles:
        add(list(session.exec(select(Member).where(
            Member.unit_id == department, Member.role == Role.HEAD,
            col(Member.active).is_(True)))))
    if "dispatcher" in roles:
        add(dispatchers(session))
    if "supervisor" in roles:
        add(list(session.exec(select(Member).where(
            Member.role == Role.SUPERVISOR, col(Member.active).is_(True)))))
    return [found[k] for k in sorted(found)]


def dossier(session: Session, call: Call) -> dict[str, Any]:
    """What an accountability referral carries: the timeline, the nudges sent
    and the evidence (attachment hashes by stage)."""
    names = {m.id: m.name for m in session.exec(select(Member))}
    events = session.exec(select(Event).where(Event.call_id == call.id).order_by(col(Event.id)))
    nudges = session.exec(select(Nudge).where(Nudge.call_id == call.id, col(Nudge.sent).is_(True))
                          .order_by(col(Nudge.id)))
    attachments = session.exec(select(Attachment).where(Attachment.call_id == call.id))
    return {
        "timeline": [
            {"at": e.at.isoformat(), "event": e.kind,
             "by": names.get(e.actor_id) if e.actor_id else None, "note": e.note}
            for e in events
        ],
        "nudges": [{"at": n.done_at.isoformat(), "limit": n.limit, "step": n.step,
                    "repeat": n.repeat} for n in nudges],
        "evidence": [{"stage": a.stage.value, "sha256": a.sha256} for a in attachments],
    }


def _record_step(
    ctx: Context, session: Session, call: Call, planned: _Planned, now: datetime
) -> None:
    """Send one step: the nudge row, the call's mark and event, the messages."""
    step = planned.step
    session.add(Nudge(call_id=call.id or 0, limit=step.limit.value, clock_due=planned.clock_due,
                      step=step.step.value, repeat=step.repeat, due_at=step.at, done_at=now))
    session.flush()
    extra: dict[str, Any] = {}
    if step.step in (Step.SUPERVISE, Step.ACCOUNTABILITY) and call.supervision_number is None:
        # The supervision order (督办单) is numbered per year, like calls.
        year = now.astimezone(ctx.rules.tz).year
        sequence = next_counter(session, f"supervision-{year}")
        call.supervision_number = f"{ctx.rules.call_prefix}-DB-{year}-{sequence:04d}"
        session.add(call)
    if step.step in EVENT_OF_STEP and step.repeat == 0:
        data: dict[str, Any] = {"limit": step.limit.value, "due": planned.clock_due.isoformat()}
        if step.step is Step.SUPERVISE:
            data["supervision_number"] = call.supervision_number
        if step.step is Step.ACCOUNTABILITY:
            data["dossier"] = dossier(session, call)
        event = Event(call_id=call.id or 0, kind=EVENT_OF_STEP[step.step], at=now,
                      from_status=call.status, to_status=call.status, data=data)
        session.add(event)
        session.flush()
        extra["event_id"] = event.id
    for member in _recipients(session, call, step.recipients):
        limit, due, name, repeat = planned.id
        enqueue(
            session, f"nudge:{call.id}:{limit}:{due.isoformat()}:{name}:{repeat}:{member.id}",
            member.id or 0, "nudge", now, call_id=call.id, number=call.number,
            limit=limit, step=name, repeat=repeat, due=due.isoformat(),
            supervision_number=call.supervision_number, **extra,
        )


def _sweep_call(
    ctx: Context, session: Session, call: Call, domain: Domain | None, now: datetime
) -> tuple[int, int]:
    plan = _plan(call, ctx, domain)
    done: set[StepId] = {
        (n.limit, n.clock_due, n.step, n.repeat)
        for n in session.exec(select(Nudge).where(Nudge.call_id == call.id))
    }
    due = [p for p in plan if p.step.send_at <= now and p.id not in done]
    sent = superseded = 0
    by_clock: dict[tuple[str, datetime], list[_Planned]] = {}
    for planned in due:
        by_clock.setdefault((planned.step.limit.value, planned.clock_due), []).append(planned)
    for steps in by_clock.values():
        latest = max(steps, key=lambda p: (p.step.at, p.step.repeat))
        for planned in steps:
            if planned is latest:
                _record_step(ctx, session, call, planned, now)
                sent += 1
            else:
                step = planned.step
                session.add(Nudge(call_id=call.id or 0, limit=step.limit.value,
                                  clock_due=planned.clock_due, step=step.step.value,
                                  repeat=step.repeat, due_at=step.at, done_at=now, sent=False))
                superseded += 1
            done.add(planned.id)
    later = [p.step.send_at for p in plan if p.id not in done]
    call.next_nudge_at = min(later) if later else None
    session.add(call)
    return sent, superseded


def sweep(ctx: Context, now: datetime, batch: int = 500) -> SweepResult:
    """Record and queue every reminder and ladder step due at `now`.

    Works in batches of `batch` calls, one transaction each; a crash loses at
    most the batch in progress, which the next sweep redoes (nothing of it
    was committed)."""
    looked = sent = superseded = 0
    domains: dict[int | None, Domain | None] = {None: None}
    while True:
        with session_scope(ctx.engine) as session:
            if len(domains) == 1:
                domains.update({d.id: d for d in session.exec(select(Domain))})
            due_calls = session.exec(
                select(Call)
                .where(col(Call.next_nudge_at) <= now, col(Call.status).in_(OPEN_STATES))
                .order_by(col(Call.next_nudge_at))
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for call in due_calls:
                s, x = _sweep_call(ctx, session, call, domains.get(call.domain_id), now)
                sent, superseded = sent + s, superseded + x
            session.commit()
        looked += len(due_calls)
        if len(due_calls) < batch:
            return SweepResult(looked, sent, superseded)

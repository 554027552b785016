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

import sqlalchemy as sa
from sqlmodel import Session, col, select

from models import (
    Attachment,
    Call,
    CatalogItem,
    Domain,
    Event,
    Member,
    Nudge,
    OutboxMessage,
    OutboxStatus,
    Role,
    next_counter,
    unit_of_work,
)
from workflows.burden import remind_due
from workflows.context import Context
from workflows.deadlines import CallLimits, limits_of
from workflows.escalation import (
    DueStep,
    EscalationPolicy,
    Step,
    clocks,
    ladder,
)
from workflows.lifecycle import OPEN_STATES
from workflows.notifications import department_contacts, dispatchers

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
    data_reminders: int = 0  # towns reminded of data requests (workflows.burden)


@dataclass(frozen=True)
class _Planned:
    step: DueStep
    clock_due: datetime

    @property
    def id(self) -> StepId:
        return (self.step.limit.value, self.clock_due, self.step.step.value, self.step.repeat)


def _plan(call: Call, ctx: Context, domain: Domain | None,
          limits: CallLimits | None) -> list[_Planned]:
    """Every step of the call's unmet clocks, whenever it falls."""
    policy = EscalationPolicy.from_domain(domain, ctx.rules)
    return [
        _Planned(step, clock.due)
        for clock in clocks(call, limits)
        if clock.met_at is None
        for step in ladder(clock, policy, ctx.rules.calendar, ctx.rules.policy)
    ]


class _Batch:
    """What one batch of calls shares: the people to nudge, looked up once
    per department and role rather than once per call, and the steps
    already done for every call of the batch, read in one query."""

    def __init__(self, session: Session, call_ids: list[int]) -> None:
        self.session = session
        self.nudges: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self._contacts: dict[tuple[int, str], list[Member]] = {}
        self.done: dict[int, set[StepId]] = {call_id: set() for call_id in call_ids}
        for n in session.exec(select(Nudge).where(col(Nudge.call_id).in_(call_ids))):
            self.done[n.call_id].add((n.limit, n.clock_due, n.step, n.repeat))

    def _role(self, department: int, role: str) -> list[Member]:
        key = (department if role in ("liaison", "head") else 0, role)
        if key not in self._contacts:
            session = self.session
            if role == "liaison":
                found = department_contacts(session, department)
            elif role == "dispatcher":
                found = dispatchers(session)
            else:
                query = select(Member).where(col(Member.active).is_(True))
                if role == "head":
                    query = query.where(Member.role == Role.HEAD, Member.unit_id == department)
                else:
                    query = query.where(Member.role == Role.SUPERVISOR)
                found = list(session.exec(query))
            self._contacts[key] = found
        return self._contacts[key]

    def nudge(self, call: Call, planned: _Planned, now: datetime, sent: bool = True) -> None:
        step = planned.step
        self.nudges.append({"call_id": call.id, "limit": step.limit.value,
                            "clock_due": planned.clock_due, "step": step.step.value,
                            "repeat": step.repeat, "due_at": step.at, "done_at": now,
                            "sent": sent})

    def write(self) -> None:
        """Insert the rows gathered so far, in bulk (thousands of ORM objects
        cost more than the database work)."""
        if self.nudges:
            self.session.execute(sa.insert(Nudge), self.nudges)
            self.nudges = []
        if self.messages:
            self.session.execute(sa.insert(OutboxMessage), self.messages)
            self.messages = []

    def recipients(self, call: Call, roles: frozenset[str]) -> list[Member]:
        """The members holding `roles` for `call`, each once, by id."""
        found = {m.id or 0: m for role in sorted(roles)
                 for m in self._role(call.lead_department_id or 0, role)}
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
    ctx: Context, batch: _Batch, call: Call, planned: _Planned, now: datetime
) -> None:
    """Send one step: the nudge row, the call's mark and event, the messages.
    Rows are added without flushing one by one (the batch commits them
    together); the call's row lock and the nudge's unique key make the
    outbox keys new, so they need no look-up first."""
    session, step = batch.session, planned.step
    batch.nudge(call, planned, now)
    extra: dict[str, Any] = {}
    if step.step in (Step.SUPERVISE, Step.ACCOUNTABILITY) and call.supervision_number is None:
        # The supervision order (督办单) is numbered per year, like calls.
        year = now.astimezone(ctx.rules.tz).year
        sequence = next_counter(session, f"supervision-{year}")
        call.supervision_number = f"{ctx.rules.call_prefix}-DB-{year}-{sequence:04d}"
    if step.step in EVENT_OF_STEP and step.repeat == 0:
        data: dict[str, Any] = {"limit": step.limit.value, "due": planned.clock_due.isoformat()}
        if step.step is Step.SUPERVISE:
            data["supervision_number"] = call.supervision_number
        if step.step is Step.ACCOUNTABILITY:
            batch.write()  # the dossier lists the nudges sent so far
            data["dossier"] = dossier(session, call)
        event = Event(call_id=call.id or 0, kind=EVENT_OF_STEP[step.step], at=now,
                      from_status=call.status, to_status=call.status, data=data)
        session.add(event)
        if step.step is Step.ACCOUNTABILITY:
            session.flush()  # the referral's message points at its dossier
            extra["event_id"] = event.id
    limit, due, name, repeat = planned.id
    for member in batch.recipients(call, step.recipients):
        batch.messages.append({
            "key": f"nudge:{call.id}:{limit}:{due.isoformat()}:{name}:{repeat}:{member.id}",
            "member_id": member.id, "call_id": call.id, "template": "nudge",
            "created_at": now, "not_before": now, "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "params": {"number": call.number, "limit": limit, "step": name, "repeat": repeat,
                       "due": due.isoformat(), "supervision_number": call.supervision_number,
                       **extra},
        })


def _sweep_call(
    ctx: Context, batch: _Batch, call: Call, domain: Domain | None,
    limits: CallLimits | None, now: datetime,
) -> tuple[int, int]:
    plan = _plan(call, ctx, domain, limits)
    done = batch.done[call.id or 0]
    due = [p for p in plan if p.step.send_at <= now and p.id not in done]
    sent = superseded = 0
    by_clock: dict[tuple[str, datetime], list[_Planned]] = {}
    for planned in due:
        by_clock.setdefault((planned.step.limit.value, planned.clock_due), []).append(planned)
    for steps in by_clock.values():
        latest = max(steps, key=lambda p: (p.step.at, p.step.repeat))
        for planned in steps:
            if planned is latest:
                _record_step(ctx, batch, call, planned, now)
                sent += 1
            else:
                batch.nudge(call, planned, now, sent=False)
                superseded += 1
            done.add(planned.id)
    later = [p.step.send_at for p in plan if p.id not in done]
    call.next_nudge_at = min(later) if later else None
    batch.session.add(call)
    return sent, superseded


def sweep(ctx: Context, now: datetime, batch: int = 500) -> SweepResult:
    """Record and queue every reminder and ladder step due at `now`, then the
    towns' gentle reminders of unanswered data requests (`workflows.burden`).

    Works in batches of `batch` calls, one transaction each; a crash loses at
    most the batch in progress, which the next sweep redoes (nothing of it
    was committed)."""
    looked = sent = superseded = 0
    domains: dict[int | None, Domain | None] = {None: None}
    limits: dict[int | None, CallLimits] = {}
    while True:
        with unit_of_work(ctx.engine) as session:
            if len(domains) == 1:
                domains.update({d.id: d for d in session.exec(select(Domain))})
                limits.update({i.id: limits_of(i) for i in session.exec(select(CatalogItem))})
            due_calls = session.exec(
                # Only the next_nudge_at index: a call that ends has it cleared
                # (workflows.calls._shared.move), so filtering on status too would only
                # tempt SQLite into scanning the open calls by status.
                select(Call)
                .where(col(Call.next_nudge_at) <= now)
                .order_by(col(Call.next_nudge_at))
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            batch_of = _Batch(session, [c.id or 0 for c in due_calls])
            with session.no_autoflush:
                for call in due_calls:
                    if call.status not in OPEN_STATES:  # defensive: nothing is due on it
                        call.next_nudge_at = None
                        continue
                    s, x = _sweep_call(ctx, batch_of, call, domains.get(call.domain_id),
                                       limits.get(call.item_id), now)
                    sent, superseded = sent + s, superseded + x
                batch_of.write()
            session.commit()
        looked += len(due_calls)
        if len(due_calls) < batch:
            return SweepResult(looked, sent, superseded, remind_due(ctx, now))

"""The daily and monthly routine, run by every sweep and made idempotent by
outbox keys, so it needs no job store: a restart or a second worker neither
skips nor doubles a digest.

- auto-close resolved calls nobody confirmed (`calls.auto_close_due`);
- on working days after `digest_at` (local): each department head gets a
  digest of the department's open and overdue calls;
- from the 1st of a month after `digest_at`: the command centre gets the
  previous month's report, and the supervision office the month's form
  burden report (`workflows.burden`);
- every day after `digest_at`: admins are warned when the working-day
  calendar does not cover the next 60 days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import Call, Member, OutboxMessage, Role, Unit, UnitKind, session_scope
from workflows.calls import auto_close_due
from workflows.context import Context
from workflows.lifecycle import OPEN_STATES
from workflows.notifications import enqueue
from workflows.stats import Period, report

Row = tuple[str, int, str, dict[str, Any]]  # key, member id, template, params


@dataclass(frozen=True)
class RoutineResult:
    auto_closed: int
    digests: int
    reports: int
    calendar_warnings: int
    burden_reports: int = 0  # to the supervision office (workflows.burden)


def _active(session: Session, *roles: Role) -> list[Member]:
    return list(session.exec(select(Member).where(col(Member.role).in_(roles),
                                                  col(Member.active).is_(True))))


def _queue(ctx: Context, build: list[Row], now: datetime) -> int:
    """Enqueue (key, member, template, params) rows; a key another worker
    wrote first is simply skipped."""
    queued = 0
    for key, member_id, template, params in build:
        try:
            with session_scope(ctx.engine) as session:
                enqueue(session, key, member_id, template, now, **params)
                session.commit()
                queued += 1
        except IntegrityError:
            continue
    return queued


def _digests(ctx: Context, now: datetime, day: str) -> list[Row]:
    rows: list[Row] = []
    with session_scope(ctx.engine) as session:
        open_calls = session.exec(select(Call).where(col(Call.status).in_(OPEN_STATES),
                                                     col(Call.lead_department_id).is_not(None)))
        by_department: dict[int, list[Call]] = {}
        for call in open_calls:
            by_department.setdefault(call.lead_department_id or 0, []).append(call)
        for head in _active(session, Role.HEAD):
            mine = by_department.get(head.unit_id, [])
            overdue = [c.number for c in mine if _overdue(c, now)]
            rows.append((f"digest:{day}:{head.id}", head.id or 0, "daily_digest",
                         {"day": day, "open": [c.number for c in mine][:50],
                          "open_count": len(mine), "overdue": overdue[:50],
                          "overdue_count": len(overdue)}))
    return rows


def _overdue(call: Call, now: datetime) -> bool:
    pairs = ((call.acknowledge_due, call.acknowledged_at), (call.respond_due, call.responded_at),
             (call.resolve_due, call.resolved_at))
    return any(due is not None and met is None and due < now for due, met in pairs)


def _queued(ctx: Context, prefix: str) -> bool:
    """Whether messages keyed `prefix…` exist: the day's work is done, so a
    sweep every 30 seconds does not recompute it."""
    with session_scope(ctx.engine) as session:
        found = session.exec(select(OutboxMessage.id).where(
            col(OutboxMessage.key).startswith(prefix))).first()
    return found is not None


def routine(ctx: Context, now: datetime, digest_at: time = time(8, 30)) -> RoutineResult:
    """Run what is due today (see the module docstring); safe to call often."""
    closed = len(auto_close_due(ctx, now))
    local = now.astimezone(ctx.rules.tz)
    digests = reports = warnings = burden_reports = 0
    if local.time() >= digest_at:
        day = local.date().isoformat()
        if ctx.rules.calendar.is_working_day(local.date()) and not _queued(
            ctx, f"digest:{day}:"
        ):
            digests = _queue(ctx, _digests(ctx, now, day), now)
        last_month = local.replace(day=1) - timedelta(days=1)
        period = Period.month(last_month.year, last_month.month, ctx.rules.tz)
        key = f"report:{period.label}"
        if not _queued(ctx, key + ":"):
            with session_scope(ctx.engine) as session:
                centre = [m for m in _active(session, Role.DISPATCHER, Role.ADMIN)
                          if (unit := session.get(Unit, m.unit_id)) is not None
                          and unit.kind is UnitKind.COMMAND_CENTRE]
            total = report(ctx, period, now).total if centre else None
            reports = _queue(ctx, [(f"{key}:{m.id}", m.id or 0, "monthly_report",
                                    {"period": period.label,
                                     "raised": total.raised if total else 0,
                                     "closed": total.closed if total else 0})
                                   for m in centre], now)
        burden_key = f"burden-report:{period.label}"
        if not _queued(ctx, burden_key + ":"):
            with session_scope(ctx.engine) as session:
                readers = _active(session, Role.SUPERVISOR)
            burden_reports = _queue(ctx, [(f"{burden_key}:{m.id}", m.id or 0, "burden_report",
                                     {"period": period.label}) for m in readers], now)
        uncovered = ctx.rules.calendar.uncovered_days(local.date())
        if uncovered and not _queued(ctx, f"calendar:{day}:"):
            with session_scope(ctx.engine) as session:
                admins = _active(session, Role.ADMIN)
            params: dict[str, Any] = {"years": sorted({d.year for d in uncovered}),
                                      "first_day": min(uncovered).isoformat()}
            warnings = _queue(ctx, [(f"calendar:{day}:{m.id}", m.id or 0, "calendar_warning",
                                     params) for m in admins], now)
    return RoutineResult(closed, digests, reports, warnings, burden_reports)

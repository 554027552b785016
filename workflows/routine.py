"""The daily and monthly routine, run by every sweep. It needs no job store:
what is done is recorded in the database, so a restart or a second worker
neither skips nor doubles a message.

- auto-close resolved calls nobody confirmed (`calls.auto_close_due`);
- on working days after `digest_at` (local): each department head gets a
  digest of the department's open calls and those late now;
- from the 1st of a month after `digest_at`: the command centre (its
  dispatchers and admins) and the supervision office get the previous
  month's report, with its chart and workbook when the context can render
  them (`Context.exports`), and the supervision office also the month's
  form burden report (`workflows.burden`);
- every day after `digest_at`: admins are warned when the working-day
  calendar does not cover the next 60 days;
- every day: history older than the retention is pruned (`workflows.retention`).

"Already done?" is a `RoutineRun` row per (routine, day): one primary-key
look-up per sweep, not a scan of the outbox. The row is written before the
messages and marked finished after the last one; each recipient's message is
its own transaction with its own outbox key, so a crash midway leaves a run
unfinished, and the next sweep queues the rest — never a message twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models import (
    Call,
    Locale,
    Member,
    OutboxMessage,
    Role,
    RoutineRun,
    Unit,
    UnitKind,
    session_scope,
)
from workflows.calls import auto_close_due
from workflows.context import Context
from workflows.facts import late_now
from workflows.lifecycle import OPEN_STATES
from workflows.notifications import enqueue
from workflows.retention import DEFAULT_KEEP, prune_history
from workflows.stats import Period, Report, StoredFile, report, store_files

Row = tuple[str, int, str, dict[str, Any]]  # key, member id, template, params
MAX_LISTED = 50


@dataclass(frozen=True)
class RoutineResult:
    auto_closed: int
    digests: int
    reports: int
    calendar_warnings: int
    burden_reports: int = 0  # to the supervision office (workflows.burden)


def _active(session: Session, *roles: Role) -> list[Member]:
    return list(session.exec(select(Member).where(col(Member.role).in_(roles),
                                                  col(Member.active).is_(True))
                             .order_by(col(Member.id))))


def _finished(ctx: Context, routine: str, day: str) -> bool:
    with session_scope(ctx.engine) as session:
        run = session.get(RoutineRun, (routine, day))
        return run is not None and run.finished_at is not None


def _start(ctx: Context, routine: str, day: str, now: datetime) -> None:
    try:
        with session_scope(ctx.engine) as session:
            session.add(RoutineRun(routine=routine, day=day, started_at=now))
            session.commit()
    except IntegrityError:
        pass  # another worker, or an earlier run cut short: carry on where it stopped


def _finish(ctx: Context, routine: str, day: str, now: datetime, recipients: int) -> None:
    with session_scope(ctx.engine) as session:
        run = session.get(RoutineRun, (routine, day))
        if run is not None and run.finished_at is None:
            run.finished_at, run.recipients = now, recipients
            session.add(run)
            session.commit()


def _run(ctx: Context, routine: str, day: str, now: datetime,
         build: Callable[[], list[Row]]) -> int:
    """Run `routine` for `day` unless it finished: queue each row in its own
    transaction (a key queued before is skipped), then mark the run done.
    Returns how many messages this call queued."""
    if _finished(ctx, routine, day):
        return 0
    _start(ctx, routine, day, now)
    rows = build()
    queued = 0
    for key, member_id, template, params in rows:
        try:
            with session_scope(ctx.engine) as session:
                if session.exec(select(OutboxMessage.id).where(
                        OutboxMessage.key == key)).first() is not None:
                    continue  # queued before the crash (a unique-key look-up)
                enqueue(session, key, member_id, template, now, **params)
                session.commit()
                queued += 1
        except IntegrityError:
            continue
    _finish(ctx, routine, day, now, len(rows))
    return queued


def _digests(ctx: Context, now: datetime, day: str) -> list[Row]:
    rows: list[Row] = []
    with session_scope(ctx.engine) as session:
        open_calls = session.exec(select(Call).where(col(Call.status).in_(OPEN_STATES),
                                                     col(Call.lead_department_id).is_not(None))
                                  .order_by(col(Call.raised_at), col(Call.id)))
        by_department: dict[int, list[Call]] = {}
        for call in open_calls:
            by_department.setdefault(call.lead_department_id or 0, []).append(call)
        for head in _active(session, Role.HEAD):
            mine = by_department.get(head.unit_id, [])
            overdue = [c.number for c in mine if late_now(c, now)]
            rows.append((f"digest:{day}:{head.id}", head.id or 0, "daily_digest",
                         {"day": day, "open": [c.number for c in mine][:MAX_LISTED],
                          "open_count": len(mine), "overdue": overdue[:MAX_LISTED],
                          "overdue_count": len(overdue)}))
    return rows


def report_recipients(session: Session) -> list[Member]:
    """Who gets the monthly report: the command centre's dispatchers and
    admins, and the supervision office's supervisors."""
    offices = {u.id: u.kind for u in session.exec(select(Unit).where(
        col(Unit.kind).in_((UnitKind.COMMAND_CENTRE, UnitKind.SUPERVISION))))}
    return [m for m in _active(session, Role.DISPATCHER, Role.ADMIN, Role.SUPERVISOR)
            if offices.get(m.unit_id) is UnitKind.COMMAND_CENTRE
            or (m.role is Role.SUPERVISOR and offices.get(m.unit_id) is UnitKind.SUPERVISION)]


def report_params(result: Report, files: list[StoredFile]) -> dict[str, Any]:
    """The monthly report's outbox parameters: the headline figures and the
    stored files (rendered once per language, not once per reader)."""
    total = result.total
    return {"period": result.period.label, "raised": total.raised, "closed": total.closed,
            "overdue": total.overdue, "supervised": total.supervised,
            "referred": total.referred, "response_rate": total.response_rate,
            "resolution_rate": total.resolution_rate,
            "satisfaction_rate": total.satisfaction_rate,
            "documents": [f.as_params() for f in files]}


def _monthly(ctx: Context, now: datetime, period: Period) -> list[Row]:
    with session_scope(ctx.engine) as session:
        readers = report_recipients(session)
    if not readers:
        return []
    result = report(ctx, period, now)
    by_locale: dict[Locale, list[StoredFile]] = {}
    rows: list[Row] = []
    for reader in readers:
        if reader.locale not in by_locale:
            by_locale[reader.locale] = store_files(ctx, result, reader.locale)
        rows.append((f"report:{period.label}:{reader.id}", reader.id or 0, "monthly_report",
                     report_params(result, by_locale[reader.locale])))
    return rows


def _burden(ctx: Context, period: Period) -> list[Row]:
    with session_scope(ctx.engine) as session:
        readers = _active(session, Role.SUPERVISOR)
    return [(f"burden-report:{period.label}:{m.id}", m.id or 0, "burden_report",
             {"period": period.label}) for m in readers]


def _calendar(ctx: Context, day: str, uncovered: list[Any]) -> list[Row]:
    with session_scope(ctx.engine) as session:
        admins = _active(session, Role.ADMIN)
    params: dict[str, Any] = {"years": sorted({d.year for d in uncovered}),
                              "first_day": min(uncovered).isoformat()}
    return [(f"calendar:{day}:{m.id}", m.id or 0, "calendar_warning", params) for m in admins]


def routine(ctx: Context, now: datetime, digest_at: time = time(8, 30),
            keep: timedelta = DEFAULT_KEEP) -> RoutineResult:
    """Run what is due today (see the module docstring); safe to call often."""
    closed = len(auto_close_due(ctx, now))
    local = now.astimezone(ctx.rules.tz)
    day = local.date().isoformat()
    digests = reports = warnings = burden_reports = 0
    if not _finished(ctx, "prune", day):
        _start(ctx, "prune", day, now)
        prune_history(ctx, now, keep)
        _finish(ctx, "prune", day, now, 0)
    if local.time() >= digest_at:
        if ctx.rules.calendar.is_working_day(local.date()):
            digests = _run(ctx, "digest", day, now, lambda: _digests(ctx, now, day))
        last_month = local.replace(day=1) - timedelta(days=1)
        period = Period.month(last_month.year, last_month.month, ctx.rules.tz)
        reports = _run(ctx, "report", period.label, now, lambda: _monthly(ctx, now, period))
        burden_reports = _run(ctx, "burden-report", period.label, now,
                              lambda: _burden(ctx, period))
        uncovered = ctx.rules.calendar.uncovered_days(local.date())
        if uncovered:
            warnings = _run(ctx, "calendar", day, now, lambda: _calendar(ctx, day, uncovered))
    return RoutineResult(closed, digests, reports, warnings, burden_reports)

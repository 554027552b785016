"""The monthly report over many calls (issue 11): the time and the number of
queries of `workflows.stats.report` — the per-call facts and every figure of
the report — and of its renderers (text, workbook, chart, JSON), against a
plain `SELECT count(*)` over the same rows, measured in the same run.

On PostgreSQL when --database-url or YOUHU_BENCH_POSTGRES_URL names one
(EVERY youhu TABLE IN IT IS EMPTIED), else on a temporary SQLite file.

The rows are bulk-inserted (SQLAlchemy Core executemany), on the example org
and catalog, with deadlines computed by youhu's own `workflows.deadlines`:
`--calls` (default 100,000) raised in October 2025 (Shanghai) and a quarter
as many again in September and November, so the period's range matters.
Each call is raised on a working day 09:00–17:59 by one of the example
callers for an item of the catalog, and is by its number: closed and rated
(60 %; a fifth of them late), resolved waiting for the caller (10 %),
in progress (10 %), dispatched and never acknowledged (12 %, late now),
waiting for the command centre without an item (5 %) or withdrawn (3 %).
Every call has its raise and dispatch events, plus one per step done; one
in twenty of the ignored calls holds a supervision order, half of those an
accountability referral (its event). The report is made as of 2025-11-05.

Printed: the median of `--rounds` (default 5) runs of each step, after one
warm-up run, with its queries (counted by a SQLAlchemy cursor hook) and its
ratio to the COUNT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import _support
import sqlalchemy as sa
from _support import (
    describe_url,
    empty_database,
    insert_many,
    is_postgres,
    load_example,
    postgres_url_from,
    sqlite_url,
    table,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from bot.exports.chart import chart_png
from bot.exports.json import report_json
from bot.exports.xlsx import workbook_bytes
from bot.report import render_report
from handlers.i18n import Translator
from models import (
    CallStatus,
    CatalogItem,
    Domain,
    Locale,
    MediaStore,
    Member,
    RatingLevel,
    Role,
    make_engine,
)
from workflows.context import Context, Rules
from workflows.deadlines import Limit, due_at
from workflows.stats import Period, report

assert _support.ROOT  # the import puts the repository on sys.path

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = Period.month(2025, 10, SHANGHAI)
AS_OF = datetime(2025, 11, 5, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)
MONTHS = ((2025, 9), (2025, 10), (2025, 11))
LEVELS = (RatingLevel.SATISFIED, RatingLevel.SATISFIED, RatingLevel.SATISFIED,
          RatingLevel.MOSTLY_SATISFIED, RatingLevel.DISSATISFIED)


class QueryCounter:
    """Counts the statements an engine sends."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def working_days(year: int, month: int, rules: Rules) -> list[datetime]:
    day = datetime(year, month, 1, tzinfo=SHANGHAI)
    days = []
    while day.month == month:
        if rules.calendar.is_working_day(day.date()):
            days.append(day)
        day += timedelta(days=1)
    return days


class Population:
    """Call, rating and event rows, built with youhu's deadline code."""

    def __init__(self, engine: Engine, rules: Rules) -> None:
        self.rules = rules
        with Session(engine) as session:
            emergency = {d.id for d in session.exec(select(Domain)) if d.emergency}
            self.items = [i for i in session.exec(select(CatalogItem).order_by(
                col(CatalogItem.id))) if i.domain_id not in emergency]
            self.callers = [(m.id or 0, m.unit_id) for m in session.exec(
                select(Member).where(Member.role == Role.CALLER).order_by(col(Member.id)))]
            self.liaison = session.exec(select(Member).where(Member.role == Role.LIAISON)
                                        ).first().id  # type: ignore[union-attr]
        self._dues: dict[tuple[int, datetime], tuple[datetime, datetime, datetime]] = {}

    def dues(self, item: CatalogItem, raised: datetime) -> tuple[datetime, datetime, datetime]:
        key = (item.id or 0, raised.replace(minute=0))
        found = self._dues.get(key)
        if found is None:
            limits = (item.acknowledge_limit, item.respond_limit, item.resolve_limit)
            found = tuple(due_at(raised, Limit.parse(limit), self.rules.calendar,  # type: ignore[assignment]
                                 self.rules.policy) for limit in limits)
            self._dues[key] = found  # type: ignore[assignment]
        return found  # type: ignore[return-value]

    def rows(self, calls: int) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]],
                                               dict[str, Any] | None]]:
        """(call, its events, its rating) for `calls` October calls and a
        quarter as many in each neighbouring month."""
        plan = [(2025, 10, calls)] + [(y, m, calls // 4) for y, m in MONTHS if m != 10]
        call_id = 0
        for year, month, count in plan:
            days = working_days(year, month, self.rules)
            for n in range(count):
                call_id += 1
                yield self.call(call_id, days[n % len(days)] + timedelta(
                    minutes=9 * 60 + (n * 7919) % (9 * 60)))

    def call(self, call_id: int, raised: datetime
             ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
        kind = call_id % 100
        item = self.items[call_id % len(self.items)]
        caller, unit = self.callers[call_id % len(self.callers)]
        raised = raised.astimezone(UTC)
        ack_due, respond_due, resolve_due = self.dues(item, raised)
        row: dict[str, Any] = {
            "id": call_id, "number": f"BY-2025-{call_id:07d}", "caller_id": caller,
            "unit_id": unit, "item_id": item.id, "domain_id": item.domain_id,
            "lead_department_id": item.lead_department_id,
            "text": f"压测呼叫 {call_id}：村口排水管堵塞", "status": CallStatus.DISPATCHED,
            "raised_at": raised, "dispatched_at": raised, "acknowledge_due": ack_due,
            "respond_due": respond_due, "resolve_due": resolve_due, "auto_closed": False,
            # executemany wants every row to name the same columns
            "acknowledged_at": None, "responded_at": None, "resolved_at": None,
            "closed_at": None, "supervision_number": None, "next_nudge_at": None,
        }
        events = [self.event(call_id, "CallRaised", raised),
                  self.event(call_id, "CallDispatched", raised)]
        rating = None
        late = kind % 5 == 0
        if kind < 80:  # acknowledged, responded: closed (60), resolved (10), in progress (10)
            ack = (ack_due + timedelta(hours=2)) if late else raised + timedelta(hours=1)
            row.update(acknowledged_at=ack, responded_at=ack + timedelta(hours=1),
                       status=CallStatus.IN_PROGRESS)
            events += [self.event(call_id, "CallAcknowledged", ack),
                       self.event(call_id, "CallResponded", ack + timedelta(hours=1))]
        if kind < 70:
            done = (resolve_due + timedelta(hours=3)) if late else raised + timedelta(days=2)
            row.update(resolved_at=done, status=CallStatus.RESOLVED)
            events.append(self.event(call_id, "CallResolved", done))
        if kind < 60:
            closed = row["resolved_at"] + timedelta(hours=5)
            row.update(closed_at=closed, status=CallStatus.CLOSED)
            events.append(self.event(call_id, "CallClosed", closed))
            level = LEVELS[call_id % len(LEVELS)]
            rating = {"call_id": call_id, "by_id": caller, "level": level,
                      "score": level.score, "comment": None, "at": closed}
        elif 80 <= kind < 92:  # nobody acknowledges; some reach 督办 and 问责
            if call_id % 20 == 0:
                row["supervision_number"] = f"BY-DB-2025-{call_id:07d}"
                if call_id % 40 == 0:
                    events.append(self.event(call_id, "AccountabilityReferred",
                                             ack_due + timedelta(days=5)))
        elif 92 <= kind < 97:  # not sure: waiting for the command centre
            row.update(item_id=None, domain_id=None, lead_department_id=None,
                       dispatched_at=None, acknowledge_due=None, respond_due=None,
                       resolve_due=None, status=CallStatus.PENDING_DISPATCH)
        elif kind >= 97:
            row["status"] = CallStatus.WITHDRAWN
        return row, events, rating

    @staticmethod
    def event(call_id: int, kind: str, at: datetime) -> dict[str, Any]:
        return {"call_id": call_id, "kind": kind, "at": at, "data": {}, "actor_id": None,
                "from_status": None, "to_status": None, "note": None}


def populate(engine: Engine, rules: Rules, calls: int) -> int:
    tables = SQLModel.metadata.tables
    population = Population(engine, rules)
    call_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    rating_rows: list[dict[str, Any]] = []
    for call, events, rating in population.rows(calls):
        call_rows.append(call)
        event_rows += events
        if rating is not None:
            rating_rows.append(rating)
    insert_many(engine, tables["call"], call_rows)
    insert_many(engine, tables["event"], event_rows)
    insert_many(engine, tables["rating"], rating_rows)
    return len(call_rows)


def measure(step: Callable[[], object], counter: QueryCounter, rounds: int
            ) -> tuple[float, int]:
    step()  # warm-up: caches, plans, imports
    times: list[float] = []
    queries = 0
    for _ in range(rounds):
        before = counter.count
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
        queries = counter.count - before
    return statistics.median(times), queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (or YOUHU_BENCH_POSTGRES_URL); "
                        "EVERY youhu TABLE IN IT IS EMPTIED. Default: a temporary SQLite file")
    parser.add_argument("--calls", type=int, default=100_000, help="calls in the month")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 calls, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.rounds = 10_000, 2
    with tempfile.TemporaryDirectory(prefix="youhu-bench-report-") as scratch:
        url = postgres_url_from(args.database_url) or sqlite_url(Path(scratch) / "bench.db")
        print(f"database: {describe_url(url)}; {args.calls:,} calls in {PERIOD.label}, "
              f"{args.rounds} rounds")
        empty_database(url)
        engine = make_engine(url)
        rules = Rules()
        load_example(engine, AS_OF - timedelta(days=90))
        started = time.perf_counter()
        total = populate(engine, rules, args.calls)
        print(f"populated {total:,} calls in {time.perf_counter() - started:.1f} s")
        if is_postgres(url):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(sa.text("VACUUM ANALYZE"))
        ctx = Context(engine=engine, media=MediaStore(Path(scratch) / "media"), rules=rules)
        counter = QueryCounter(engine)
        count_sql = sa.text(
            'SELECT count(*) FROM "call" WHERE raised_at >= :start AND raised_at < :end '
            "AND status != 'withdrawn'")

        def plain_count() -> int:
            with engine.connect() as connection:
                return int(connection.execute(count_sql, {"start": PERIOD.start,
                                                          "end": PERIOD.end}).scalar_one())

        counted = plain_count()
        result = report(ctx, PERIOD, AS_OF)
        if result.total.raised != counted:
            print(f"MISMATCH: the report counts {result.total.raised:,}, COUNT {counted:,}")
            return 1
        t = Translator(Locale.ZH_HANS, SHANGHAI)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("plain COUNT (baseline)", plain_count),
            ("report (facts + figures)", lambda: report(ctx, PERIOD, AS_OF)),
            ("text render", lambda: render_report(result, t)),
            ("JSON export", lambda: report_json(result)),
            ("Excel workbook", lambda: workbook_bytes(result, t)),
            ("chart (PNG)", lambda: chart_png(result, t)),
        ]
        rows = []
        baseline = 0.0
        for name, step in steps:
            if name.startswith("Excel") and args.rounds > 2:
                seconds, queries = measure(step, counter, 2)
            else:
                seconds, queries = measure(step, counter, args.rounds)
            baseline = baseline or seconds
            rows.append((name, seconds * 1000, queries, f"{seconds / baseline:,.1f}×"))
        print(table(rows, ["step", "median ms", "queries", "× COUNT"]))
        f = result.total
        print(f"\nthe month: {f.raised:,} raised, {f.closed:,} closed, {f.late:,} late, "
              f"{f.overdue:,} overdue now, {f.supervised:,} 督办, {f.referred:,} 问责; "
              f"{len(result.facts):,} facts")
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The escalation sweep with the same due work among few and many open calls
(issue 5a): its cost should follow the due calls, not the open ones.

Two configurations per database: D due calls (default 10,000) among D open
calls, and the same D due calls among N open calls (default 1,000,000). On
SQLite, and on PostgreSQL when --postgres-url or YOUHU_BENCH_POSTGRES_URL
names a database (EVERY youhu TABLE IN IT IS EMPTIED).

The rows are bulk-inserted (SQLAlchemy Core executemany in chunks), not
raised one by one, and look like what youhu itself leaves behind, computed
with youhu's own deadline and ladder code (`workflows.deadlines`,
`workflows.escalation`), on the example org and catalog:

- every call is `dispatched`, to the lead department of a catalog item (the
  14 working-day items; the emergency items' minute limits cannot stay
  undue among a million calls), raised by one of the example callers;
- a due call was dispatched on Tuesday 2026-06-09 (09:00–17:59, Shanghai), so
  its acknowledge limit ran out on Wednesday at 18:00; the sweep runs at
  18:00:10. The steps that fell due before the previous sweep (18:00:10 less
  30 s: the halfway and one-hour reminders…) are recorded as `Nudge` rows, as
  that sweep would have, and `next_nudge_at` is the next step, the urge (L1),
  due now. Each due call thus has its urge to send (to the department's
  liaisons and head), and, for items with a one-day respond limit, the
  respond clock's urge too;
- every other open call was dispatched on Wednesday 09:00–17:59, nothing is
  due yet, and `next_nudge_at` is its first reminder, in the future.

`CallDepartment` rows are not written: the sweep finds the recipients from
`Call.lead_department_id` and the department's members.

Each measurement times one `sweep(ctx, now)` — the whole due backlog, in
batches of 500 calls, one transaction each — on a fresh copy of the
populated database: a copy of the SQLite file, or, on PostgreSQL, the same
database reset to the due state (what the sweep wrote deleted, each due
call's `next_nudge_at` put back, then VACUUM ANALYZE). A tiny sweep on a
throwaway database warms up the process first. Printed: the time of each
configuration and the ratio (N open / D open) per database; and the time of
an idle sweep — a second one at the same moment, with nothing left due, what
every 30-second tick costs — and the database's plan for the due-calls query.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
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

from models import (
    Call,
    CallStatus,
    CatalogItem,
    Domain,
    MediaStore,
    Member,
    Role,
    make_engine,
)
from workflows.context import Context, Rules
from workflows.deadlines import Limit, due_at
from workflows.escalation import EscalationPolicy, clocks, ladder
from workflows.sweep import SweepResult, sweep

assert _support.ROOT  # the import puts the repository on sys.path

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 10, 18, 0, 10, tzinfo=SHANGHAI).astimezone(UTC)  # a Wednesday
PREVIOUS_SWEEP = NOW - timedelta(seconds=30)
DUE_DAY = datetime(2026, 6, 9, 9, 0, tzinfo=SHANGHAI)  # dispatched the day before
OPEN_DAY = datetime(2026, 6, 10, 9, 0, tzinfo=SHANGHAI)  # dispatched today
WORKING_MINUTES = 9 * 60  # dispatch times spread over 09:00–17:59
FROM_CALL = re.compile(r'^\s*SELECT\b.*\bFROM "?call"?(\s|$)', re.IGNORECASE | re.DOTALL)


# --- rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """What every call of one item dispatched at one moment has in common."""

    item_id: int
    domain_id: int
    department_id: int
    dispatched_at: datetime
    acknowledge_due: datetime
    respond_due: datetime
    resolve_due: datetime
    next_nudge_at: datetime
    done: tuple[dict[str, Any], ...]  # Nudge rows of the steps sent before (call_id unset)


class Population:
    """Builds call rows from the example catalog with youhu's deadline and ladder code."""

    def __init__(self, engine: Engine, rules: Rules) -> None:
        self.rules = rules
        with Session(engine) as session:
            domains = {d.id: d for d in session.exec(select(Domain))}
            self.items = [i for i in session.exec(select(CatalogItem).order_by(col(CatalogItem.id)))
                          if not domains[i.domain_id].emergency]
            self.domains = domains
            self.callers = [(m.id or 0, m.unit_id) for m in session.exec(
                select(Member).where(Member.role == Role.CALLER).order_by(col(Member.id)))]
        self._templates: dict[tuple[int, datetime], Template] = {}

    def template(self, item: CatalogItem, dispatched: datetime) -> Template:
        key = (item.id or 0, dispatched)
        found = self._templates.get(key)
        if found is not None:
            return found
        rules = self.rules
        dues = [due_at(dispatched, Limit.parse(limit), rules.calendar, rules.policy)
                for limit in (item.acknowledge_limit, item.respond_limit, item.resolve_limit)]
        call = Call(number="-", caller_id=0, unit_id=0, text="-", status=CallStatus.DISPATCHED,
                    raised_at=dispatched, dispatched_at=dispatched, acknowledge_due=dues[0],
                    respond_due=dues[1], resolve_due=dues[2])
        policy = EscalationPolicy.from_domain(self.domains[item.domain_id], rules)
        steps = [(clock, step) for clock in clocks(call)
                 for step in ladder(clock, policy, rules.calendar, rules.policy)]
        done = tuple(
            {"limit": step.limit.value, "clock_due": clock.due, "step": step.step.value,
             "repeat": step.repeat, "due_at": step.at, "done_at": step.send_at, "sent": True}
            for clock, step in steps if step.send_at <= PREVIOUS_SWEEP)
        later = [step.send_at for _, step in steps if step.send_at > PREVIOUS_SWEEP]
        found = Template(item.id or 0, item.domain_id, item.lead_department_id,
                         dispatched.astimezone(UTC), dues[0], dues[1], dues[2], min(later), done)
        self._templates[key] = found
        return found

    def of_call(self, call_id: int, day: datetime) -> Template:
        """Call `call_id`'s item and dispatch time on `day` (09:00–17:59), spread
        deterministically."""
        item = self.items[call_id % len(self.items)]
        minute = (call_id * 7919) % WORKING_MINUTES
        return self.template(item, day + timedelta(minutes=minute))

    def calls(self, first_id: int, count: int, day: datetime) -> Iterator[dict[str, Any]]:
        """Call rows with ids from `first_id`, dispatched on `day`."""
        for call_id in range(first_id, first_id + count):
            template = self.of_call(call_id, day)
            caller, unit = self.callers[call_id % len(self.callers)]
            yield {
                "id": call_id, "number": f"BY-2026-{call_id:07d}", "caller_id": caller,
                "unit_id": unit, "item_id": template.item_id, "domain_id": template.domain_id,
                "lead_department_id": template.department_id,
                "text": f"压测呼叫 {call_id}：村口排水管堵塞，污水漫到路面",
                "status": CallStatus.DISPATCHED, "raised_at": template.dispatched_at,
                "dispatched_at": template.dispatched_at,
                "acknowledge_due": template.acknowledge_due, "respond_due": template.respond_due,
                "resolve_due": template.resolve_due, "auto_closed": False,
                "next_nudge_at": template.next_nudge_at,
            }

    def nudges(self, first_id: int, count: int, day: datetime) -> Iterator[dict[str, Any]]:
        for call_id in range(first_id, first_id + count):
            for done in self.of_call(call_id, day).done:
                yield {"call_id": call_id, **done}


def tables() -> dict[str, sa.Table]:
    return dict(SQLModel.metadata.tables)


def populate_due(engine: Engine, rules: Rules, due: int) -> dict[int, datetime]:
    """The due calls (ids 1…due) and the nudges sent before; returns each due
    call's next_nudge_at (to restore it)."""
    population = Population(engine, rules)
    rows = list(population.calls(1, due, DUE_DAY))
    bad = [r["id"] for r in rows if r["next_nudge_at"] > NOW]
    if bad:
        raise RuntimeError(f"{len(bad)} 'due' calls are not due at {NOW}: check the dates")
    insert_many(engine, tables()["call"], rows)
    insert_many(engine, tables()["nudge"], population.nudges(1, due, DUE_DAY))
    return {r["id"]: r["next_nudge_at"] for r in rows}


def populate_open(engine: Engine, rules: Rules, first_id: int, count: int) -> None:
    """`count` open calls with nothing due yet (ids from `first_id`)."""
    population = Population(engine, rules)

    def checked() -> Iterator[dict[str, Any]]:
        for row in population.calls(first_id, count, OPEN_DAY):
            if row["next_nudge_at"] <= NOW:
                raise RuntimeError(f"open call {row['id']} is due at {NOW}: check the dates")
            yield row

    insert_many(engine, tables()["call"], checked(), chunk=10_000)
    if is_postgres(str(engine.url)):
        with engine.begin() as connection:
            connection.execute(sa.text(
                "SELECT setval(pg_get_serial_sequence('call', 'id'), (SELECT max(id) FROM call))"))


def populating_engine(url: str) -> Engine:
    """An engine for bulk loading: on SQLite without an fsync per chunk."""
    engine = make_engine(url)
    if not is_postgres(url):

        @sa.event.listens_for(engine, "connect")
        def _no_sync(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA synchronous=OFF")
            cursor.close()

    return engine


def analyze(url: str) -> None:
    engine = make_engine(url)
    try:
        if is_postgres(url):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(sa.text("VACUUM ANALYZE"))
        else:
            with engine.begin() as connection:
                connection.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))
    finally:
        engine.dispose()


class DueQuery:
    """Catches the sweep's query of due calls (the first SELECT from the call
    table it sends), to show how the database reads it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.statement: str | None = None
        self.parameters: Any = None

    def __enter__(self) -> DueQuery:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, parameters: Any,
              _context: Any, _executemany: bool) -> None:
        if self.statement is None and FROM_CALL.search(statement):
            self.statement, self.parameters = statement, parameters

    def plan(self) -> str:
        if self.statement is None:
            return "(not seen)"
        sqlite = self.engine.dialect.name == "sqlite"
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql(explain + self.statement, self.parameters).all()
        if sqlite:
            return "; ".join(str(r[-1]) for r in rows)
        return "; ".join(str(r[0]).strip() for r in rows[:4])


# --- measuring ------------------------------------------------------------------------------


@dataclass
class Measured:
    database: str
    open_calls: int
    due_calls: int
    runs: list[Run]

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def idle(self) -> float:
        return statistics.median(r.idle for r in self.runs)


def count_rows(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(
            sa.select(sa.func.count()).select_from(tables()[name])).scalar_one())


@dataclass(frozen=True)
class Run:
    seconds: float  # the sweep of the due backlog
    result: SweepResult
    outbox: int  # outbox rows it queued
    idle: float  # a second sweep at the same moment, with nothing left due
    plan: str  # how the database reads the sweep's due calls


def timed_sweep(url: str, workdir: Path) -> Run:
    engine = make_engine(url)
    ctx = Context(engine=engine, media=MediaStore(workdir / "media"))
    try:
        outbox_before = count_rows(engine, "outboxmessage")
        started = time.perf_counter()
        result = sweep(ctx, NOW)
        seconds = time.perf_counter() - started
        outbox = count_rows(engine, "outboxmessage") - outbox_before
        with DueQuery(engine) as query:
            started = time.perf_counter()
            again = sweep(ctx, NOW)
            idle = time.perf_counter() - started
        if again.calls:
            raise RuntimeError(f"a second sweep found {again.calls} calls still due")
        return Run(seconds, result, outbox, idle, query.plan())
    finally:
        engine.dispose()


class SqliteBench:
    """The populated database as a file; each run sweeps a fresh copy."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.path = workdir / "populated.db"
        self.url = sqlite_url(self.path)
        self.name = "SQLite"

    def prepare(self) -> None:
        empty_database(self.url)

    def snapshot(self) -> None:
        analyze(self.url)

    def run(self) -> Run:
        copy = self.workdir / "run.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.path, copy)
        try:
            return timed_sweep(sqlite_url(copy), self.workdir)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{copy}{suffix}").unlink(missing_ok=True)


class PostgresBench:
    """The populated database itself; after each run it is reset to the due state."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.name = "PostgreSQL"
        self.due_state: dict[int, datetime] = {}
        self._marks: dict[str, int] = {}
        self._counters: list[dict[str, Any]] = []

    def prepare(self) -> None:
        empty_database(self.url)

    def snapshot(self) -> None:
        engine = make_engine(self.url)
        try:
            with engine.connect() as connection:
                for name in ("nudge", "outboxmessage", "event"):
                    self._marks[name] = int(connection.execute(
                        sa.select(sa.func.coalesce(sa.func.max(tables()[name].c.id), 0))
                    ).scalar_one())
                self._counters = [dict(r._mapping) for r in connection.execute(
                    sa.select(tables()["counter"]))]
        finally:
            engine.dispose()
        analyze(self.url)

    def run(self) -> Run:
        try:
            return timed_sweep(self.url, self.workdir)
        finally:
            self.reset()

    def reset(self) -> None:
        """Undo the sweep: delete what it wrote, put the due calls back."""
        t = tables()
        engine = make_engine(self.url)
        try:
            with engine.begin() as connection:
                connection.execute(sa.delete(t["delivery"]).where(
                    t["delivery"].c.message_id > self._marks["outboxmessage"]))
                for name in ("outboxmessage", "nudge", "event"):
                    connection.execute(sa.delete(t[name]).where(t[name].c.id > self._marks[name]))
                connection.execute(sa.delete(t["counter"]))
                if self._counters:
                    connection.execute(sa.insert(t["counter"]), self._counters)
                call = t["call"]
                connection.execute(
                    sa.update(call).where(call.c.id == sa.bindparam("call_id"))
                    .values(next_nudge_at=sa.bindparam("due"), supervision_number=None),
                    [{"call_id": k, "due": v} for k, v in self.due_state.items()])
        finally:
            engine.dispose()
        analyze(self.url)


def measure(bench: SqliteBench | PostgresBench, due: int, opens: int, runs: int,
            rules: Rules) -> list[Measured]:
    bench.prepare()
    engine = populating_engine(bench.url)
    measured = []
    try:
        load_example(engine, NOW)
        started = time.perf_counter()
        due_state = populate_due(engine, rules, due)
        if isinstance(bench, PostgresBench):
            bench.due_state = due_state
        print(f"{bench.name}: {due:,} due calls written in {time.perf_counter() - started:.1f} s",
              flush=True)
        existing = due
        for total in (due, opens):
            if total > existing:
                started = time.perf_counter()
                populate_open(engine, rules, existing + 1, total - existing)
                existing = total
                print(f"{bench.name}: open calls up to {total:,} in "
                      f"{time.perf_counter() - started:.1f} s", flush=True)
            bench.snapshot()
            done = []
            for _ in range(runs):
                run = bench.run()
                if run.result.calls != due:
                    raise RuntimeError(f"the sweep looked at {run.result.calls} calls, "
                                       f"expected {due}")
                done.append(run)
                print(f"{bench.name}: sweep of {due:,} due among {total:,} open: "
                      f"{run.seconds:.2f} s ({run.result.sent:,} steps sent, {run.outbox:,} "
                      f"outbox rows); idle sweep {run.idle * 1000:.0f} ms", flush=True)
            measured.append(Measured(bench.name, total, due, done))
    finally:
        engine.dispose()
    return measured


def warm_up(workdir: Path, rules: Rules) -> None:
    """A tiny sweep first, so imports and caches are not charged to the first measurement."""
    url = sqlite_url(workdir / "warmup.db")
    empty_database(url)
    engine = populating_engine(url)
    try:
        load_example(engine, NOW)
        populate_due(engine, rules, 50)
    finally:
        engine.dispose()
    timed_sweep(url, workdir)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The escalation sweep with the same due calls among few and among many "
                    "open calls, on SQLite and PostgreSQL (issue 5a).")
    parser.add_argument("--due", type=int, default=10_000,
                        help="due calls, which are also the open calls of the small "
                             "configuration (default 10,000)")
    parser.add_argument("--open", type=int, default=1_000_000, dest="opens",
                        help="open calls of the large configuration (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=1,
                        help="sweeps per configuration, each on a fresh copy; the median is "
                             "printed (default 1)")
    parser.add_argument("--postgres-url",
                        help="a PostgreSQL database to measure too (or set "
                             "YOUHU_BENCH_POSTGRES_URL); EVERY youhu TABLE IN IT IS EMPTIED")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to check it works: 1,000 due among 1,000 and 100,000")
    args = parser.parse_args(argv)
    if args.quick:
        args.due, args.opens = 1_000, 100_000
    if args.due < 1 or args.opens < args.due or args.runs < 1:
        parser.error("need 1 <= --due <= --open and --runs >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    postgres = postgres_url_from(args.postgres_url)
    if postgres is not None and not is_postgres(postgres):
        raise SystemExit("--postgres-url must be a PostgreSQL URL (postgresql+psycopg://…)")
    rules = Rules()
    measured: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="youhu-bench-") as tmp:
        workdir = Path(tmp)
        warm_up(workdir, rules)
        if not args.no_sqlite:
            print(f"SQLite: files in {workdir}", flush=True)
            measured += measure(SqliteBench(workdir), args.due, args.opens, args.runs, rules)
        if postgres is None:
            print("PostgreSQL: skipped (give --postgres-url or set YOUHU_BENCH_POSTGRES_URL)")
        else:
            print(f"PostgreSQL: {describe_url(postgres)}", flush=True)
            measured += measure(PostgresBench(postgres, workdir), args.due, args.opens,
                                args.runs, rules)
    print()
    print(f"sweep at {NOW.astimezone(SHANGHAI):%Y-%m-%d %H:%M:%S} Shanghai, "
          f"median of {args.runs} run(s) each")
    rows = [[m.database, m.open_calls, m.due_calls, m.median, m.median / m.due_calls * 1000,
             m.runs[-1].result.sent, m.runs[-1].result.superseded, m.runs[-1].outbox,
             f"{m.idle * 1000:.1f}"]
            for m in measured]
    print(table(rows, ["database", "open calls", "due calls", "seconds", "ms/due call",
                       "steps sent", "superseded", "outbox rows", "idle sweep ms"]))
    print()
    for name in dict.fromkeys(m.database for m in measured):
        small, large = [m for m in measured if m.database == name]
        print(f"{name}: ratio {large.open_calls:,} open / {small.open_calls:,} open = "
              f"{large.median / small.median:.2f} (idle sweep: "
              f"{large.idle / small.idle:.1f})")
        print(f"  due-calls query plan at {large.open_calls:,} open: {large.runs[-1].plan}")


if __name__ == "__main__":
    main(sys.argv[1:])

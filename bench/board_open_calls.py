"""The dispatch board's open-calls page among few and many open calls
(issue 12, item 5): it must render in a bounded set of queries, whatever
the number of open calls, and its time should grow with the page, not the
table.

The page is fetched whole, through the board's real routes (Starlette's test
client, a signed-in dispatcher's cookie, Jinja2 rendering), from a database
with B open calls (the baseline, default 100) and with N (default 10,000),
on SQLite, and on PostgreSQL when --postgres-url or YOUHU_BENCH_POSTGRES_URL
names a database (EVERY youhu TABLE IN IT IS EMPTIED).

Each call is bulk-inserted as youhu leaves it: dispatched (some acknowledged,
some in progress, some pending dispatch) to the lead department of an
example catalog item, raised by an example caller, with its deadlines from
youhu's own deadline code and its `CallDepartment` rows; one in twenty
carries a supervision number, and a third are overdue at the moment of the
request. Printed per database and page variant (the default page; overdue
only; a word search; page 50 sorted by raise time; a department head's
page): the SQL statements one request executes (counted by a
`before_cursor_execute` listener) at B and at N, and the median time of
`--rounds` requests at B and at N with their ratio.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _support
import sqlalchemy as sa
from _support import describe_url, empty_database, insert_many, load_example, table
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient  # the board in process, over its routes

from bot.board import Board
from models import (
    Call,
    CallDepartment,
    CallStatus,
    CatalogItem,
    MediaStore,
    Member,
    ParticipantRole,
    Role,
    make_engine,
)
from workflows import board
from workflows.context import Context
from workflows.deadlines import Limit, WorkdayPolicy, due_at

NOW = datetime(2026, 6, 17, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Wednesday
URL = "http://board.bench"


def _calls(engine: Engine, count: int) -> Iterator[dict[str, Any]]:
    from workflows.calendar import WorkingDayCalendar

    calendar, policy = WorkingDayCalendar(), WorkdayPolicy()
    with Session(engine) as session:
        callers = session.exec(select(Member).where(Member.role == Role.CALLER)).all()
        items = session.exec(select(CatalogItem).where(CatalogItem.resolve_limit.endswith("wd")))  # type: ignore[attr-defined]
        items = list(items)
    statuses = [CallStatus.DISPATCHED, CallStatus.ACKNOWLEDGED, CallStatus.IN_PROGRESS,
                CallStatus.PENDING_DISPATCH]
    for n, caller, item in zip(range(count), itertools.cycle(callers), itertools.cycle(items),
                               strict=False):
        status = statuses[n % len(statuses)]
        # A third raised 12 working days back (overdue now), the rest this morning.
        raised = NOW - (timedelta(days=16) if n % 3 == 0 else timedelta(hours=1, minutes=n % 59))
        routed = status is not CallStatus.PENDING_DISPATCH
        yield {
            "number": f"BY-2026-{n + 1:06d}", "caller_id": caller.id, "unit_id": caller.unit_id,
            "item_id": item.id if routed else None, "domain_id": item.domain_id if routed else None,
            "lead_department_id": item.lead_department_id if routed else None,
            "text": f"第{n}号呼叫：排水管网堵塞，路面积水 {n % 97}",
            "location_text": None, "latitude": None, "longitude": None,
            "status": status.value, "raised_at": raised,
            "dispatched_at": raised if routed else None,
            "acknowledged_at": raised + timedelta(minutes=5)
            if status in (CallStatus.ACKNOWLEDGED, CallStatus.IN_PROGRESS) else None,
            "responded_at": raised + timedelta(minutes=9)
            if status is CallStatus.IN_PROGRESS else None,
            "resolved_at": None, "closed_at": None,
            "acknowledge_due": due_at(raised, Limit.parse(item.acknowledge_limit), calendar,
                                      policy) if routed else None,
            "respond_due": due_at(raised, Limit.parse(item.respond_limit), calendar, policy)
            if routed else None,
            "resolve_due": due_at(raised, Limit.parse(item.resolve_limit), calendar, policy)
            if routed else None,
            "supervision_number": f"BY-DB-2026-{n:04d}" if n % 20 == 0 else None,
            "auto_closed": False, "next_nudge_at": None,
        }


def populate(url: str, count: int) -> None:
    empty_database(url)
    engine = make_engine(url)
    try:
        load_example(engine, NOW - timedelta(days=30))
        insert_many(engine, Call.__table__, _calls(engine, count))  # type: ignore[attr-defined]
        with engine.begin() as connection:
            rows = connection.execute(sa.select(Call.id, Call.lead_department_id).where(  # type: ignore[call-overload]
                Call.lead_department_id.is_not(None))).all()  # type: ignore[union-attr]
        insert_many(engine, CallDepartment.__table__,  # type: ignore[attr-defined]
                    ({"call_id": cid, "department_id": dept, "role": ParticipantRole.LEAD.value,
                      "acknowledged_at": None, "acknowledged_by": None} for cid, dept in rows))
        if url.startswith("postgresql"):
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(sa.text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


class Counter:
    def __init__(self, engine: Engine) -> None:
        self.statements = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_args: Any) -> None:
        self.statements += 1


def signed_in_client(ctx: Context, member_code: str) -> TestClient:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == member_code)).one()
    token = board.issue_link(ctx, member.id or 0, NOW)
    new = board.redeem_link(ctx, token, NOW)
    app = Starlette(routes=Board(ctx, lambda: NOW, secure=False).routes())
    client = TestClient(app, base_url=URL)
    client.cookies.set("youhu_board", new.token, domain="board.bench", path="/board")
    return client


VARIANTS = [
    ("default page (by deadline)", "zheng-yu", "/board/"),
    ("overdue now", "zheng-yu", "/board/?overdue=1"),
    ("search one word", "zheng-yu", "/board/?q=%E5%A0%B5%E5%A1%9E+96"),
    ("page 50, by raise time", "zheng-yu", "/board/?sort=raised&order=desc&page=50"),
    ("a head (own department)", "zhou-guoqiang", "/board/"),
]


def measure(url: str, count: int, rounds: int) -> dict[str, tuple[int, float, int]]:
    """Per variant: statements per request, median seconds, open calls shown in total."""
    populate(url, count)
    engine = make_engine(url)
    ctx = Context(engine=engine, media=MediaStore(Path(tempfile.mkdtemp())), board_url=URL)
    counter = Counter(engine)
    results: dict[str, tuple[int, float, int]] = {}
    try:
        for name, who, path in VARIANTS:
            client = signed_in_client(ctx, who)
            answer = client.get(path)  # warm-up (templates compiled, caches filled)
            assert answer.status_code == 200, answer.text[:500]
            before = counter.statements
            client.get(path)
            statements = counter.statements - before
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                answer = client.get(path)
                times.append(time.perf_counter() - start)
                assert answer.status_code == 200
            shown = answer.text.count("/board/calls/")
            results[name] = (statements, statistics.median(times), shown)
    finally:
        engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--postgres-url")
    parser.add_argument("--quick", action="store_true", help="1,000 calls, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds = 1_000, 3
    urls = []
    with tempfile.TemporaryDirectory() as folder:
        urls.append(_support.sqlite_url(Path(folder) / "bench.db"))
        postgres = _support.postgres_url_from(args.postgres_url)
        if postgres:
            urls.append(postgres)
        for url in urls:
            small = measure(url, args.baseline, args.rounds)
            large = measure(url, args.calls, args.rounds)
            rows = []
            for name, _who, _path in VARIANTS:
                s_statements, s_time, _shown = small[name]
                l_statements, l_time, l_shown = large[name]
                rows.append([name, s_statements, l_statements, l_shown,
                             s_time * 1000, l_time * 1000, f"{l_time / s_time:.2f}×"])
            print(f"\n{describe_url(url)}: {args.baseline:,} vs {args.calls:,} open calls, "
                  f"median of {args.rounds} requests")
            print(table(rows, ["page", f"SQL @{args.baseline:,}", f"SQL @{args.calls:,}",
                               "rows shown", f"ms @{args.baseline:,}", f"ms @{args.calls:,}",
                               "time ratio"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A burst of nudges delivered to Telegram at its rate limits (issue 5b).

N nudges (default 10,000) fall due at once for M liaisons (default 1,000, so
10 each), each about its own overdue call. They are queued as the sweep
queues them (`workflows.notifications.enqueue`, template "nudge": number,
limit, step, repeat, due), in a shuffled order (or --order grouped: each
member's nudges one after the other, the worst case for the per-chat limit).

They are delivered by youhu's `Deliverer` (with its defaults, as `youhu run`
builds it; --concurrency and --batch change them) through youhu's
`TelegramChannel` (PTB 22 with AIORateLimiter, paced per chat) to the fake
Bot API server (`tests/fakes/telegram_api.py`) enforcing Telegram's limits:
30 messages a second overall and 1 a second per chat, answering 429 with
retry_after beyond them. Delivery rounds start every --interval seconds (5,
the scheduler's `deliver_seconds`) until nothing is pending.

Printed: the achieved rate (accepted sends per second from the first round to
the last accepted send) and its fraction of the 30/s limit, the steady rate
over the middle 80 % of the sends, the 429s received, and the outbox at the
end (delivered, undeliverable; each nudge must reach its chat exactly once).

At 30/s, 10,000 nudges take at least 5 min 33 s; --quick sends 600 to 60.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import logging
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _support
from _support import (
    describe_url,
    empty_database,
    fake_telegram,
    insert_many,
    is_postgres,
    load_example,
    sqlite_url,
    table,
)
from pydantic import SecretStr
from sqlmodel import Session, SQLModel, col, func, select

from bot.delivery import Deliverer
from bot.settings import TelegramSettings
from bot.telegram import TelegramChannel
from models import (
    CallStatus,
    CatalogItem,
    MediaStore,
    Member,
    OutboxMessage,
    OutboxStatus,
    Role,
    make_engine,
)
from tests.fakes.telegram_api import FakeTelegram
from workflows import accounts
from workflows.context import Context
from workflows.notifications import enqueue

assert _support.ROOT  # the import puts the repository on sys.path

FIRST_USER_ID = 820_000_000
GLOBAL_LIMIT = 30
PER_CHAT_LIMIT = 1
PROBE_USER = 829_999_999
PROBE_EVERY = 2.0  # seconds the probe user takes to read a reply before the next /help
DELIVERER_DEFAULTS = {name: parameter.default for name, parameter in
                      inspect.signature(Deliverer.__init__).parameters.items()
                      if name in ("concurrency", "batch")}


def now() -> datetime:
    return datetime.now(UTC)


def prepare(ctx: Context, count: int, members: int, order: str, seed: int) -> None:
    """`members` liaisons with Telegram ids, one overdue call per nudge, and
    `count` nudges queued in the outbox."""
    engine = ctx.engine
    at = now()
    load_example(engine, at)
    with Session(engine) as session:
        items = list(session.exec(select(CatalogItem).order_by(col(CatalogItem.id))))
        caller = session.exec(select(Member).where(Member.role == Role.CALLER)
                              .order_by(col(Member.id))).first()
        assert caller is not None
        departments = sorted({i.lead_department_id for i in items})
        item_of: dict[int, tuple[int, int]] = {}  # a department's first item, its domain
        for i in items:
            item_of.setdefault(i.lead_department_id, (i.id or 0, i.domain_id))
        liaisons = []
        for n in range(members):
            member = Member(code=f"bench-liaison-{n}", name=f"压测联络员{n}", role=Role.LIAISON,
                            unit_id=departments[n % len(departments)], created_at=at)
            session.add(member)
            session.flush()
            accounts.bind(session, member.id or 0, "telegram", FIRST_USER_ID + n)
            liaisons.append(member)
        # The --probe user: a caller who asks /help while the burst goes out.
        probe = Member(code="bench-probe", name="压测探针", role=Role.CALLER,
                       unit_id=caller.unit_id, created_at=at)
        session.add(probe)
        session.flush()
        accounts.bind(session, probe.id or 0, "telegram", PROBE_USER)
        session.commit()
        member_ids = [m.id or 0 for m in liaisons]
        caller_id, caller_unit = caller.id or 0, caller.unit_id

    # Nudge n goes to member n % members, about call n + 1 of the member's department.
    dispatched = at - timedelta(days=2)
    due = at - timedelta(hours=1)
    rows = []
    for n in range(count):
        department = departments[(n % members) % len(departments)]
        item_id, domain_id = item_of[department]
        rows.append({
            "id": n + 1, "number": f"BY-2026-{n + 1:06d}", "caller_id": caller_id,
            "unit_id": caller_unit, "item_id": item_id, "domain_id": domain_id,
            "lead_department_id": department, "text": f"压测呼叫 {n + 1}：村口排水管堵塞",
            "status": CallStatus.DISPATCHED, "raised_at": dispatched,
            "dispatched_at": dispatched, "acknowledge_due": due,
            "respond_due": due + timedelta(days=1), "resolve_due": due + timedelta(days=5),
            "auto_closed": False, "next_nudge_at": at + timedelta(days=1),
        })
    insert_many(engine, SQLModel.metadata.tables["call"], rows)

    numbers = list(range(count))
    if order == "shuffled":
        random.Random(seed).shuffle(numbers)
    else:  # grouped: each member's nudges one after the other
        numbers.sort(key=lambda n: (n % members, n))
    with Session(engine) as session:
        for position, n in enumerate(numbers, 1):
            call_id = n + 1
            member_id = member_ids[n % members]
            enqueue(session, f"nudge:{call_id}:acknowledge:{due.isoformat()}:urge:0:{member_id}",
                    member_id, "nudge", at, call_id=call_id, number=f"BY-2026-{call_id:06d}",
                    limit="acknowledge", step="urge", repeat=0, due=due.isoformat())
            if position % 1000 == 0:
                session.commit()
        session.commit()


class LogCounter(logging.Handler):
    """Counts warnings and errors by logger instead of printing their tracebacks
    (each 429 that PTB's limiter gives up on is logged with one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.name} ({record.levelname.lower()})"] += 1


def classify_429s(tg: FakeTelegram) -> tuple[int, int]:
    """The 429s, split into those for the per-chat limit (the chat had an
    accepted send in the second before) and those for the overall limit."""
    last: dict[object, list[float]] = {}
    for sent in tg.accepted:
        last.setdefault(sent.chat_id, []).append(sent.at)
    per_chat = overall = 0
    for call in tg.requests:
        if call.status != 429:
            continue
        times = last.get(call.params.get("chat_id"), [])
        if any(call.at - 1.0 < t <= call.at for t in times):
            per_chat += 1
        else:
            overall += 1
    return per_chat, overall


def closest_gap(tg: FakeTelegram) -> float:
    """The shortest time between two accepted sends to one chat."""
    by_chat: dict[object, list[float]] = {}
    for sent in tg.accepted:
        by_chat.setdefault(sent.chat_id, []).append(sent.at)
    gaps = [b - a for times in by_chat.values() for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else float("nan")


def outbox_status(ctx: Context) -> Counter[str]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage.status, func.count())
                            .group_by(col(OutboxMessage.status))).all()
    return Counter({str(OutboxStatus(status).value): int(n) for status, n in rows})


async def probe(tg: FakeTelegram, latencies: list[float]) -> None:
    """A member using the bot during the burst: /help, the reply timed (read
    from the fake's records every 20 ms), PROBE_EVERY seconds to read it, again."""
    while True:
        since = len(tg.sent)
        started = time.monotonic()
        tg.user_sends_command(PROBE_USER, "/help")
        for _ in range(3000):  # 60 s at most: a safety net, not a limit measured
            await asyncio.sleep(0.02)
            if any(m.chat_id == PROBE_USER and m.method == "sendMessage"
                   for m in tg.sent[since:]):
                latencies.append(time.monotonic() - started)
                break
        await asyncio.sleep(PROBE_EVERY)


async def deliver(ctx: Context, interval: float, max_rounds: int, concurrency: int,
                  batch: int, latencies: list[float] | None) -> tuple[FakeTelegram, float, int]:
    async with fake_telegram(limit_global_per_sec=GLOBAL_LIMIT,
                             limit_per_chat_per_sec=PER_CHAT_LIMIT) as tg:
        settings = TelegramSettings(token=SecretStr(tg.token), base_url=tg.base_url,
                                    base_file_url=tg.base_file_url)
        channel = TelegramChannel(ctx, settings, now)
        await channel.start()
        deliverer = Deliverer(ctx, [channel], now, concurrency=concurrency, batch=batch)
        started = time.monotonic()
        rounds = 0
        probing = (asyncio.get_running_loop().create_task(probe(tg, latencies))
                   if latencies is not None else None)
        try:
            for rounds in range(1, max_rounds + 1):
                round_started = time.monotonic()
                await deliverer.run_once()
                pending = (await asyncio.to_thread(outbox_status, ctx))["pending"]
                if not pending:
                    break
                print(f"  round {rounds}: {len(tg.accepted):,} sent, {pending:,} pending "
                      f"(retries wait for their time), {tg.too_many_requests:,} 429s so far",
                      flush=True)
                await asyncio.sleep(max(0.0, round_started + interval - time.monotonic()))
            else:
                print(f"stopped after {max_rounds} rounds with messages still pending")
        finally:
            if probing is not None:
                probing.cancel()
                await asyncio.gather(probing, return_exceptions=True)
            await channel.stop()
        return tg, started, rounds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="N nudges due at once delivered by youhu's Deliverer and TelegramChannel to "
                    "a fake Telegram enforcing 30 messages/s overall and 1/s per chat (issue 5b).")
    parser.add_argument("--count", type=int, default=10_000,
                        help="nudges due at once (default 10,000: at least 5.6 min at 30/s)")
    parser.add_argument("--members", type=int, default=None,
                        help="liaisons (chats) they go to (default count / 10, i.e. 1,000)")
    parser.add_argument("--order", choices=("shuffled", "grouped"), default="shuffled",
                        help="outbox order: shuffled (default), or grouped by member")
    parser.add_argument("--interval", type=float, default=5.0,
                        help="seconds between the starts of delivery rounds (default 5, the "
                             "scheduler's deliver_seconds)")
    parser.add_argument("--concurrency", type=int, default=DELIVERER_DEFAULTS["concurrency"],
                        help="the Deliverer's messages in flight (default: the Deliverer's, "
                             "as in youhu run: %(default)s)")
    parser.add_argument("--batch", type=int, default=DELIVERER_DEFAULTS["batch"],
                        help="the Deliverer's claim size (default: the Deliverer's: "
                             "%(default)s)")
    parser.add_argument("--max-rounds", type=int, default=1000,
                        help="give up after this many rounds (default 1000)")
    parser.add_argument("--database-url",
                        help="a PostgreSQL URL instead of a SQLite file in a temporary "
                             "directory; EVERY youhu TABLE IN IT IS EMPTIED")
    parser.add_argument("--probe", action="store_true",
                        help="also have a member send /help during the burst, 2 s after each "
                             "reply, and print how long the replies took (they share the "
                             "overall rate limit)")
    parser.add_argument("--seed", type=int, default=5, help="shuffle seed (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to check it works: 600 nudges to 60 members")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.members = 600, 60
    if args.members is None:
        args.members = max(1, args.count // 10)
    if args.count < 1 or not 1 <= args.members <= args.count or args.interval <= 0:
        parser.error("need 1 <= --members <= --count and --interval > 0")
    if args.concurrency < 1 or args.batch < 1:
        parser.error("--concurrency and --batch must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logs = LogCounter()
    logging.basicConfig(level=logging.WARNING, handlers=[logs])
    if args.database_url and not is_postgres(args.database_url):
        raise SystemExit("--database-url must be a PostgreSQL URL (postgresql+psycopg://…)")
    with tempfile.TemporaryDirectory(prefix="youhu-bench-") as tmp:
        workdir = Path(tmp)
        url = args.database_url or sqlite_url(workdir / "youhu.db")
        empty_database(url)
        engine = make_engine(url)
        ctx = Context(engine=engine, media=MediaStore(workdir / "media"))
        print(f"database: {describe_url(url)}")
        print(f"{args.count:,} nudges to {args.members:,} chats, {args.order}; fake Telegram "
              f"limits {GLOBAL_LIMIT}/s overall, {PER_CHAT_LIMIT}/s per chat; Deliverer "
              f"concurrency {args.concurrency}, batch {args.batch}", flush=True)
        prepare(ctx, args.count, args.members, args.order, args.seed)
        latencies: list[float] | None = [] if args.probe else None
        tg, started, rounds = asyncio.run(deliver(ctx, args.interval, args.max_rounds,
                                                  args.concurrency, args.batch, latencies))
        status = outbox_status(ctx)
        engine.dispose()

    accepted = sorted((a for a in tg.accepted if a.chat_id != PROBE_USER), key=lambda a: a.at)
    per_chat_429, overall_429 = classify_429s(tg)
    per_chat = Counter(a.chat_id for a in accepted)
    seconds = (accepted[-1].at - started) if accepted else 0.0
    rate = len(accepted) / seconds if seconds > 0 else 0.0
    middle = accepted[len(accepted) // 10: len(accepted) - len(accepted) // 10]
    steady = ((len(middle) - 1) / (middle[-1].at - middle[0].at)
              if len(middle) > 1 and middle[-1].at > middle[0].at else 0.0)
    expected = {FIRST_USER_ID + m: len(range(m, args.count, args.members))
                for m in range(args.members)}
    wrong = {chat: n for chat, n in per_chat.items()
             if not isinstance(chat, int) or expected.get(chat) != n}
    wrong.update({chat: 0 for chat in expected if chat not in per_chat})
    print()
    print(table([
        ["nudges", args.count],
        ["chats", args.members],
        ["delivery rounds", rounds],
        ["accepted sends", len(accepted)],
        ["seconds (first round to last send)", seconds],
        ["achieved rate, sends/s", rate],
        [f"fraction of the {GLOBAL_LIMIT}/s limit", f"{rate / GLOBAL_LIMIT:.1%}"],
        ["steady rate (middle 80 % of sends), /s", steady],
        ["429 Too Many Requests received", tg.too_many_requests],
        ["  of which per-chat (chat had a send < 1 s before)", per_chat_429],
        ["  of which overall (30/s)", overall_429],
        ["shortest gap between two sends to a chat, s", closest_gap(tg)],
        ["outbox delivered", status.get("delivered", 0)],
        ["outbox undeliverable", status.get("undeliverable", 0)],
        ["outbox pending", status.get("pending", 0)],
        ["chats with a wrong number of messages", len(wrong)],
    ], ["", "value"]))
    print(f"\nlower bound at {GLOBAL_LIMIT}/s: {args.count / GLOBAL_LIMIT:.1f} s")
    if latencies is not None:
        ordered = sorted(latencies) or [float("nan")]
        print(f"probe: {len(ordered)} replies to /help during the burst: median "
              f"{statistics.median(ordered):.2f} s, p95 {ordered[int(0.95 * len(ordered))]:.2f} "
              f"s, max {ordered[-1]:.2f} s")
    if logs.counts:
        print("warnings and errors logged: " + ", ".join(
            f"{name}: {n:,}" for name, n in sorted(logs.counts.items())))


if __name__ == "__main__":
    main(sys.argv[1:])

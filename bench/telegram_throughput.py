"""Updates per second the Telegram pipeline sustains, raising calls end to end,
against a bare python-telegram-bot echo bot in the same run (issue 4).

youhu: K caller members, each a Telegram user of the fake Bot API server
(`tests/fakes/telegram_api.py`), raise M calls each through the whole /call
dialog — /call, domain button, item button, description, location (which
skips the photos), confirm: six updates per call. Each update is received by
youhu's `TelegramChannel` (PTB 22, long polling, as `youhu run` wires it),
handled by the conversations on the database (a SQLite file in a temporary
directory, or PostgreSQL with --database-url) and answered through the fake.
Each user sends its next update only once the reply to the last one came.
Before measuring, each user raises --warmup calls (all at once: the
year's first calls, which take the call-number counter together).

echo: a fresh fake server and a bare PTB `Application` whose one
`MessageHandler` sends every text back, driven the same way: K users, the
same number of updates, each waiting for its reply before sending the next.

youhu runs twice: as deployed, where `bot.pace` paces every message to a
chat — replies included — to Telegram's overall limit of about 30 a
second, and with the limits lifted (`overall_interval=None` and the
per-chat intervals 0; nothing else changes),
which shows what the pipeline itself sustains. Once K users keep more than
~30 replies a second waiting, the first measures the limit, not youhu.

Both run on one event loop in this process (the fake server has its own
thread); replies are watched by a thread that waits on the fake's records,
so waiting never blocks the loop. Printed: updates, seconds, updates/s and
reply latency for each, and the ratio youhu/echo. The machine is shared:
compare the ratio, not the seconds.

The notices a raised call queues (alerts to the department) are written to
the outbox in the same transaction, but no deliverer runs here: delivery is
what `bench/nudge_delivery.py` measures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import _support
from _support import (
    describe_url,
    empty_database,
    fake_telegram,
    is_postgres,
    load_example,
    sqlite_url,
    table,
)
from pydantic import SecretStr
from sqlalchemy import event as sa_event
from sqlmodel import Session, col, func, select
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.pace import OVERALL_INTERVAL
from bot.settings import TelegramSettings
from bot.telegram import TelegramChannel
from models import Call, MediaStore, Member, Role, Unit, UnitKind, make_engine
from tests.fakes.telegram_api import FakeTelegram, SentMessage
from workflows import accounts
from workflows.context import Context

assert _support.ROOT  # the import puts the repository on sys.path

FIRST_USER_ID = 810_000_000
SEND_METHODS = frozenset({"sendMessage", "sendPhoto", "sendMediaGroup"})
UPDATES_PER_CALL = 5  # /call, description, item, location, send
REPLY_TIMEOUT = 120.0  # a safety net against a stuck pipeline, not a measured limit
CALL_NUMBER = re.compile(r"[A-Z]+-\d{4}-\d{6}")


def now() -> datetime:
    return datetime.now(UTC)


# --- watching the fake's records ----------------------------------------------


class Replies:
    """Routes what the bot sends to per-chat queues on the event loop.

    A thread waits on the fake's records (`FakeTelegram.wait_for`, which
    sleeps on a condition variable) and hands new messages to the loop, so
    the users' coroutines await a queue instead of polling.
    """

    def __init__(self, tg: FakeTelegram) -> None:
        self.tg = tg
        self.queues: dict[int, asyncio.Queue[SentMessage]] = {}
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._watch, args=(len(self.tg.sent),),
                                        name="bench-replies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self, seen: int) -> None:
        assert self._loop is not None
        while not self._stop.is_set():
            try:
                self.tg.wait_for(since=seen, timeout=0.25)
            except TimeoutError:
                continue
            new = self.tg.sent[seen:]
            seen += len(new)
            self._loop.call_soon_threadsafe(self._route, new)

    def _route(self, new: list[SentMessage]) -> None:
        for message in new:
            if message.method in SEND_METHODS and isinstance(message.chat_id, int):
                self._queue(message.chat_id).put_nowait(message)

    def _queue(self, chat: int) -> asyncio.Queue[SentMessage]:
        return self.queues.setdefault(chat, asyncio.Queue())

    async def ask(self, chat: int, act: Callable[[], object],
                  expect: Callable[[SentMessage], bool], what: str) -> SentMessage:
        """Do `act` (a user's update) and return the bot's reply to `chat`,
        which must satisfy `expect`."""
        queue = self._queue(chat)
        if not queue.empty():
            extra = queue.get_nowait()
            raise RuntimeError(f"user {chat}: an unexpected message before {what}: "
                               f"{extra.text or extra.caption!r}")
        started = time.perf_counter()
        act()
        try:
            reply = await asyncio.wait_for(queue.get(), REPLY_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"user {chat}: no reply to {what} within {REPLY_TIMEOUT:.0f} s "
                               "(the pipeline is stuck; see the log above)") from None
        self.latencies.append(time.perf_counter() - started)
        if not expect(reply):
            raise RuntimeError(f"user {chat}: unexpected reply to {what}: "
                               f"{reply.text or reply.caption!r} {reply.buttons}")
        return reply


def has_button(pattern: str) -> Callable[[SentMessage], bool]:
    regex = re.compile(pattern)
    return lambda m: any(regex.search(str(b.get("callback_data", ""))) for b in m.buttons)


def asks_location(message: SentMessage) -> bool:
    """The photos-or-location question: a reply keyboard sharing the location."""
    keys = [key for row in (message.reply_markup or {}).get("keyboard") or [] for key in row]
    return any(isinstance(key, dict) and key.get("request_location") for key in keys)


def buttons(message: SentMessage, pattern: str) -> list[str]:
    regex = re.compile(pattern)
    return [str(b["callback_data"]) for b in message.buttons
            if regex.search(str(b.get("callback_data", "")))]


# --- youhu ----------------------------------------------------------------------


class SqlStats:
    """Statements (by their first word), their time, and commits, on an
    engine (SQLAlchemy's cursor and transaction events). On SQLite the time
    of `BEGIN IMMEDIATE` and of the first write of a transaction is mostly
    waiting for the writer lock (the busy handler)."""

    def __init__(self, engine: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.commits = 0
        self._lock = threading.Lock()
        sa_event.listen(engine, "before_cursor_execute", self._before)
        sa_event.listen(engine, "after_cursor_execute", self._after)
        sa_event.listen(engine, "commit", self._commit)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        took = time.perf_counter() - conn.info["bench_started"].pop()
        verb = " ".join(statement.split()[:2]) if statement.startswith(("BEGIN", "RELEASE")) \
            else statement.split(None, 1)[0].upper()
        with self._lock:
            self.counts[verb] += 1
            self.seconds[verb] += took
            self.statements[" ".join(statement.split())[:110]] += 1

    def _commit(self, conn: Any) -> None:
        with self._lock:
            self.commits += 1

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.seconds.clear()
            self.statements.clear()
            self.commits = 0

    def summary(self, updates: int) -> str:
        lines = [f"per update: {sum(self.counts.values()) / updates:.1f} statements, "
                 f"{self.commits / updates:.2f} commits (SQLAlchemy commit events; a "
                 "pysqlite COMMIT is not a statement here)"]
        for verb, n in self.counts.most_common():
            lines.append(f"  {verb:<18} {n / updates:6.2f}/update  "
                         f"{self.seconds[verb] * 1000 / updates:7.2f} ms/update")
        lines.append("the most frequent statements:")
        for text, n in self.statements.most_common(30):
            lines.append(f"  {n / updates:5.2f}/update  {text}")
        return "\n".join(lines)



@dataclass
class Result:
    name: str
    updates: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.updates / self.seconds if self.seconds > 0 else 0.0

    def latency(self, quantile: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000


def add_callers(ctx: Context, count: int) -> list[int]:
    """`count` caller members in the example org's villages, each with a
    Telegram user id (as if bound by an invite); returns the Telegram ids."""
    with Session(ctx.engine) as session:
        villages = session.exec(select(Unit).where(Unit.kind == UnitKind.VILLAGE)
                                .order_by(col(Unit.id))).all()
        ids = []
        for n in range(count):
            telegram_id = FIRST_USER_ID + n
            member = Member(code=f"bench-caller-{n}", name=f"压测{n}号", role=Role.CALLER,
                            unit_id=villages[n % len(villages)].id or 0, created_at=now())
            session.add(member)
            session.flush()
            accounts.bind(session, member.id or 0, "telegram", telegram_id)
            ids.append(telegram_id)
        session.commit()
    return ids


async def raise_calls(tg: FakeTelegram, replies: Replies, user: int, calls: int,
                      seed: int) -> int:
    """One user raises `calls` calls through the /call dialog; returns the updates sent."""
    sent = 0
    for n in range(calls):
        await replies.ask(user, lambda: tg.user_sends_command(user, "/call"),
                          has_button(r":x$"), "/call")
        text = f"压测呼叫 {user}-{n}：村口排水管堵塞，污水漫到路面"
        items = await replies.ask(user, partial(tg.user_sends_text, user, text),
                                  has_button(r":i\d+$"), "the description")
        choices = buttons(items, r":i\d+$")
        item = choices[(seed * 7 + n) % len(choices)]
        await replies.ask(user, partial(tg.user_presses, user, items.message_id or 0, item),
                          asks_location, "the item button")
        summary = await replies.ask(user, lambda: tg.user_sends_location(user, 23.392, 113.41),
                                    has_button(r":ok$"), "the location")
        confirm = buttons(summary, r":ok$")[0]
        await replies.ask(
            user, partial(tg.user_presses, user, summary.message_id or 0, confirm),
            lambda m: CALL_NUMBER.search(m.text or "") is not None, "the confirm button")
        sent += UPDATES_PER_CALL
    return sent


async def run_youhu(url: str, workdir: Path, users: int, calls: int, warmup: int,
                    capped: bool, count_sql: bool = False) -> Result:
    empty_database(url)
    engine = make_engine(url)
    stats = SqlStats(engine) if count_sql else None
    ctx = Context(engine=engine, media=MediaStore(workdir / "media"))
    load_example(engine, now())
    user_ids = add_callers(ctx, users)
    async with fake_telegram() as tg:
        settings = TelegramSettings(token=SecretStr(tg.token), base_url=tg.base_url,
                                    base_file_url=tg.base_file_url)
        # Lifted: the bot's overall pace (bot.pace) is off …
        channel = TelegramChannel(ctx, settings, now,
                                  overall_interval=None if not capped else OVERALL_INTERVAL)
        if not capped:
            # Lifted: the per-chat pace too (each user waits for its reply, so
            # one reply a second per chat would bound the run at K updates a
            # second, measuring the limit and not the pipeline). The pace's
            # reservations still run, one short transaction per send.
            channel.pace.private_interval = channel.pace.group_interval = 0.0
        await channel.start()
        replies = Replies(tg)
        replies.start()
        try:
            if warmup:
                await asyncio.gather(*(raise_calls(tg, replies, u, warmup, n)
                                       for n, u in enumerate(user_ids)))
            replies.latencies.clear()
            if stats is not None:
                stats.reset()
            started = time.perf_counter()
            counts = await asyncio.gather(*(raise_calls(tg, replies, u, calls, n + warmup)
                                            for n, u in enumerate(user_ids)))
            seconds = time.perf_counter() - started
        finally:
            replies.stop()
            await channel.stop()
    with Session(engine) as session:
        raised = session.exec(select(func.count()).select_from(Call)).one()
    engine.dispose()
    expected = users * (calls + warmup)
    if raised != expected:
        raise RuntimeError(f"{raised} calls in the database, expected {expected}")
    name = "youhu, as deployed" if capped else "youhu, overall limit lifted"
    if stats is not None:
        print(f"{name}: " + stats.summary(sum(counts)), flush=True)
    return Result(name, sum(counts), seconds, replies.latencies,
                  f"{raised} calls raised in the database ({users * warmup} before measuring)")


# --- the bare echo bot ----------------------------------------------------------------


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text is not None:
        await context.bot.send_message(message.chat_id, message.text)


def is_echo(text: str, message: SentMessage) -> bool:
    return message.text == text


async def echo_texts(tg: FakeTelegram, replies: Replies, user: int, count: int) -> int:
    for n in range(count):
        text = f"你好 {user} {n}"
        await replies.ask(user, partial(tg.user_sends_text, user, text),
                          partial(is_echo, text), "a text")
    return count


async def run_echo(users: int, updates_per_user: int, warmup_per_user: int,
                   concurrency: int) -> Result:
    async with fake_telegram() as tg:
        builder: Any = (Application.builder().token(tg.token).base_url(tg.base_url)
                        .base_file_url(tg.base_file_url).job_queue(None))
        if concurrency > 1:
            builder = builder.concurrent_updates(concurrency)
        app = builder.build()
        app.add_handler(MessageHandler(filters.TEXT, echo))
        await app.initialize()
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=20)
        replies = Replies(tg)
        replies.start()
        user_ids = [FIRST_USER_ID + n for n in range(users)]
        try:
            if warmup_per_user:
                await asyncio.gather(*(echo_texts(tg, replies, u, warmup_per_user)
                                       for u in user_ids))
            replies.latencies.clear()
            started = time.perf_counter()
            counts = await asyncio.gather(*(echo_texts(tg, replies, u, updates_per_user)
                                            for u in user_ids))
            seconds = time.perf_counter() - started
        finally:
            replies.stop()
            await app.updater.stop()
            await app.stop()
            await app.shutdown()
    mode = f"concurrent_updates({concurrency})" if concurrency > 1 else "sequential"
    return Result("bare PTB echo bot", sum(counts), seconds, replies.latencies,
                  f"PTB Application, one MessageHandler, {mode}, no rate limiter")


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Updates/s of youhu's Telegram pipeline raising calls end to end, "
                    "against a bare python-telegram-bot echo bot in the same run (issue 4).")
    parser.add_argument("--users", type=int, default=20,
                        help="concurrent users K (default 20)")
    parser.add_argument("--calls", type=int, default=10,
                        help="calls each user raises, M (default 10; 6 updates per call)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="calls per user raised before measuring (default 1)")
    parser.add_argument("--database-url",
                        help="a PostgreSQL URL to use instead of a SQLite file in a temporary "
                             "directory; EVERY youhu TABLE IN IT IS EMPTIED")
    parser.add_argument("--echo-concurrency", type=int, default=64,
                        help="the echo bot's concurrent_updates; 64 as youhu's TelegramChannel "
                             "(default), 1 for PTB's default of one update at a time")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat echo, youhu, youhu this many times, interleaved, and print "
                             "the median ratios (default 1)")
    parser.add_argument("--only", choices=("deployed", "lifted"), default=None,
                        help="run youhu only as deployed or only with the overall limit "
                             "lifted (default both)")
    parser.add_argument("--count-sql", action="store_true",
                        help="print youhu's statements, their time and commits per update")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to check it works: 5 users × 2 calls")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.calls, args.warmup = 5, 2, 1
    if args.users < 1 or args.calls < 1 or args.warmup < 0 or args.rounds < 1:
        parser.error("--users, --calls and --rounds must be at least 1, --warmup at least 0")
    return args


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="youhu-bench-") as tmp:
        workdir = Path(tmp)
        if args.database_url and not is_postgres(args.database_url):
            raise SystemExit("--database-url must be a PostgreSQL URL (postgresql+psycopg://…)")

        def url(n: int) -> str:
            return args.database_url or sqlite_url(workdir / f"run{n}" / "youhu.db")

        where = (f"{describe_url(args.database_url)}, emptied before each youhu run"
                 if args.database_url else f"a new SQLite file per youhu run in {workdir}")
        print(f"database: {where}")
        print(f"{args.users} users × {args.calls} calls × {UPDATES_PER_CALL} updates "
              f"(+ {args.warmup} call per user to warm up)", flush=True)
        per_user = args.calls * UPDATES_PER_CALL
        rows = []
        ratios: dict[str, list[float]] = {}
        for round_ in range(1, args.rounds + 1):
            echo_result = await run_echo(args.users, per_user, args.warmup * UPDATES_PER_CALL,
                                         args.echo_concurrency)
            pipelines = [capped for capped in (True, False) if args.only is None
                         or args.only == ("deployed" if capped else "lifted")]
            results = [await run_youhu(url(n), workdir / f"run{round_}-{n}", args.users,
                                       args.calls, args.warmup, capped, args.count_sql)
                       for n, capped in enumerate(pipelines)]
            for r in [*results, echo_result]:
                ratio = r.rate / echo_result.rate
                if r is not echo_result:
                    ratios.setdefault(r.name, []).append(ratio)
                rows.append([round_, r.name, r.updates, r.seconds, r.rate,
                             f"{r.latency(0.5):.1f}", f"{r.latency(0.95):.1f}", f"{ratio:.3f}"])
    print()
    print(table(rows, ["round", "pipeline", "updates", "seconds", "updates/s", "p50 ms",
                       "p95 ms", "/ echo"]))
    print()
    print(f"youhu: {results[0].note}, each run")
    print(f"echo:  {echo_result.note}")
    for name, values in ratios.items():
        print(f"ratio youhu/echo ({name}): {statistics.median(values):.3f}"
              + (f" (median of {len(values)} rounds)" if len(values) > 1 else ""))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    asyncio.run(main_async(args))
    print(f"(whole run, set-up included: {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Two `youhu run` workers on one PostgreSQL database deliver a burst of
nudges at Telegram's limits (issue 10).

N nudges (default 10,000) for M liaisons (default N / 10), queued as the
sweep queues them (`bench/nudge_delivery.prepare`), are delivered by W real
`youhu run` processes (default 2, subprocesses of this script, polling the
fake) sharing one PostgreSQL database: its outbox (fenced claims), its
inbox and its pace (`bot.pace`: the overall 30/s and the per-chat 1/s are
the bot's, handed out through the database). The fake Bot API
(`tests/fakes/telegram_api.py`) runs in this process on loopback and
enforces Telegram's limits strictly: 30 accepted sends in any second
overall, one per second per chat, 429 with retry_after beyond them.

Meanwhile a probe (callers with Telegram ids) sends `/help` every
--probe-every seconds (0.5), each from the next of --probe-users (4) members
in turn — so no probe chat asks more than once every 2 s and the per-chat
limit (one reply a second) is not what is measured; the reply's latency is
the time from the update being queued at the fake to the reply arriving
there. Replies ride the pace's priority lane, ahead of the nudges.

Runs (--runs, default all three): `grouped` (each member's nudges one after
the other in the outbox), `shuffled`, and `kill` (shuffled; one worker is
killed with SIGKILL when --kill-at of the nudges are out; its claims wait
for their lease to run out, then the other worker sends them). Each run
starts from an emptied database and a fresh fake.

Printed per run: the nudges' accepted sends per second together (first send
to last) and that as a ratio of 30/s; the fake's 429s (overall limit, per
chat); duplicates (a nudge accepted twice: its call number seen twice);
nudges never delivered; the probe's replies (median, p95, max); for `kill`,
the sends in flight when the worker died (accepted by the fake but not yet
recorded as a copy in the database, counted a moment after the kill: an
upper bound of what can be sent twice); and how long the surviving workers
took to stop on SIGTERM.

Real Telegram answers 409 to a second concurrent getUpdates; the fake lets
both workers poll, each stores every update and the inbox keeps one (its
unique channel + update id), so the probe's updates are handled once, by
whichever worker claims them. A deployment of several workers uses the
webhook behind a load balancer; the shared inbox, outbox and pace are the
same either way.

Needs a PostgreSQL URL (--database-url or YOUHU_BENCH_POSTGRES_URL): EVERY
YOUHU TABLE IN IT IS EMPTIED. At 30/s, 10,000 nudges take at least 5 min
33 s per run; --quick sends 600 to 60.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import _support
from _support import (
    _start_fake,
    describe_url,
    empty_database,
    is_postgres,
    postgres_url_from,
    table,
)
from nudge_delivery import FIRST_USER_ID, outbox_status, prepare
from sqlmodel import Session, col, select

from models import Delivery, MediaStore, Member, OutboxMessage, Role, make_engine
from tests.fakes.telegram_api import FakeTelegram
from workflows.context import Context

GLOBAL_LIMIT = 30
PER_CHAT_LIMIT = 1
PROBE_FIRST_USER = 829_000_000
NUMBER = re.compile(r"BY-2026-\d{6}")
RUNS = ("grouped", "shuffled", "kill")


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Result:
    run: str
    nudges: int
    seconds: float = 0.0
    rate: float = 0.0
    overall_429: int = 0
    per_chat_429: int = 0
    duplicates: int = 0
    missing: int = 0
    latencies: list[float] = field(default_factory=list)
    probe_unanswered: int = 0
    in_flight_at_kill: int | None = None
    stop_seconds: list[float] = field(default_factory=list)
    too_many_at: list[float] = field(default_factory=list)  # s after the first nudge send
    tightest_30: float = 0.0  # the shortest time 30 consecutive accepted sends took
    killed_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


def add_probe_members(ctx: Context, users: int) -> list[int]:
    with Session(ctx.engine) as session:
        caller = session.exec(select(Member).where(Member.role == Role.CALLER)
                              .order_by(col(Member.id))).first()
        assert caller is not None
        ids = [PROBE_FIRST_USER + n for n in range(users)]
        for n, telegram_id in enumerate(ids):
            session.add(Member(code=f"bench-probe-{n}", name=f"压测探针{n}", role=Role.CALLER,
                               unit_id=caller.unit_id, telegram_id=telegram_id,
                               created_at=now()))
        session.commit()
    return ids


def recorded_numbers(ctx: Context) -> set[str]:
    """The call numbers of the nudges with a copy recorded in the database."""
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage.params).join(
            Delivery, col(Delivery.message_id) == col(OutboxMessage.id))).all()
    return {str(params.get("number")) for params in rows}


def nudge_numbers(tg: FakeTelegram, probes: set[int]) -> Counter[str]:
    """How often each nudge (by its call number) was accepted by the fake."""
    seen: Counter[str] = Counter()
    for message in tg.sent:
        if message.method != "sendMessage" or message.chat_id in probes:
            continue
        match = NUMBER.search(message.text or "")
        if match:
            seen[match.group(0)] += 1
    return seen


class Worker:
    """One `youhu run` subprocess, its output in files."""

    def __init__(self, number: int, workdir: Path, env: dict[str, str]) -> None:
        self.number = number
        self.log = workdir / f"worker-{number}.log"
        youhu = Path(sys.executable).with_name("youhu")
        command = ([str(youhu)] if youhu.exists()
                   else [sys.executable, "-c", "import sys; from bot.cli import main; "
                                               "sys.exit(main(sys.argv[1:]))"])
        self._out = self.log.open("wb")
        self.process = subprocess.Popen([*command, "run"], cwd=workdir, env=env,
                                        stdout=self._out, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return b"youhu is running" in self.log.read_bytes()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> float:
        """SIGTERM; the seconds until it exited."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return time.monotonic() - started

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._out.close()


def worker_env(url: str, tg: FakeTelegram, workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YOUHU_")}
    env.update({
        "YOUHU_DATABASE__URL": url,
        "YOUHU_MEDIA__DIR": str(workdir / "media"),
        "YOUHU_TELEGRAM__TOKEN": tg.token,
        "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
        "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
        "PYTHONPATH": str(_support.ROOT),
    })
    return env


async def probe(tg: FakeTelegram, users: list[int], every: float, latencies: list[float],
                unanswered: list[int]) -> None:
    """`/help` every `every` seconds from the next probe member in turn; each
    reply's latency measured on the fake's clock (queued → reply arrived)."""
    pending: dict[int, float] = {}  # probe user → when its /help was queued
    checked = 0

    async def watch() -> None:
        nonlocal checked
        while True:
            await asyncio.sleep(0.01)
            new = tg.sent_since(checked)
            for message in new:
                if message.chat_id in pending and message.method == "sendMessage":
                    latencies.append(message.at - pending.pop(message.chat_id))
            checked += len(new)

    watching = asyncio.get_running_loop().create_task(watch())
    try:
        turn = 0
        while True:
            user = users[turn % len(users)]
            turn += 1
            if user in pending:  # its last /help still unanswered: skip its turn
                await asyncio.sleep(every)
                continue
            pending[user] = time.monotonic()
            tg.user_sends_command(user, "/help")
            await asyncio.sleep(every)
    finally:
        watching.cancel()
        unanswered.append(len(pending))


async def one_run(run: str, args: argparse.Namespace, url: str) -> Result:
    order = "grouped" if run == "grouped" else "shuffled"
    print(f"\n== {run}: {args.count:,} nudges to {args.members:,} chats ({order}), "
          f"{args.workers} workers", flush=True)
    result = Result(run, args.count)
    with tempfile.TemporaryDirectory(prefix="youhu-bench-") as tmp:
        workdir = Path(tmp)
        empty_database(url)
        engine = make_engine(url)
        ctx = Context(engine=engine, media=MediaStore(workdir / "media"))
        prepare(ctx, args.count, args.members, order, args.seed)
        probes = add_probe_members(ctx, args.probe_users)
        tg = await asyncio.to_thread(_start_fake, limit_global_per_sec=GLOBAL_LIMIT,
                                     limit_per_chat_per_sec=PER_CHAT_LIMIT)
        env = worker_env(url, tg, workdir)
        workers = [Worker(n + 1, workdir, env) for n in range(args.workers)]
        probing: asyncio.Task[None] | None = None
        unanswered: list[int] = []
        try:
            deadline = time.monotonic() + 120
            while not all(w.running() for w in workers):
                if any(w.process.poll() is not None for w in workers) or \
                        time.monotonic() > deadline:
                    raise SystemExit("a worker did not start: see "
                                     + ", ".join(str(w.log) for w in workers))
                await asyncio.sleep(0.2)
            probing = asyncio.get_running_loop().create_task(
                probe(tg, probes, args.probe_every, result.latencies, unanswered))
            killed = False
            kill_time = 0.0
            started = time.monotonic()
            limit = started + args.count / GLOBAL_LIMIT * 4 + 600
            expected = {f"BY-2026-{n + 1:06d}" for n in range(args.count)}
            while True:
                await asyncio.sleep(1.0)
                seen = nudge_numbers(tg, set(probes))
                if run == "kill" and not killed and len(seen) >= args.kill_at * args.count:
                    workers[0].kill()
                    killed = True
                    kill_time = time.monotonic()
                    await asyncio.sleep(0.5)  # requests already received are answered
                    accepted = set(nudge_numbers(tg, set(probes)))
                    recorded = await asyncio.to_thread(recorded_numbers, ctx)
                    result.in_flight_at_kill = len(accepted - recorded)
                    print(f"  killed worker 1 (SIGKILL) after {len(accepted):,} nudges; "
                          f"{result.in_flight_at_kill} accepted but unrecorded", flush=True)
                if expected <= set(seen):
                    pending = (await asyncio.to_thread(outbox_status, ctx))["pending"]
                    if not pending:
                        break
                if time.monotonic() > limit:
                    print("  gave up waiting: not every nudge was delivered", flush=True)
                    break
                if int(time.monotonic() - started) % 30 == 0:
                    print(f"  {len(seen):,} nudges out, {tg.too_many_overall} overall / "
                          f"{tg.too_many_per_chat} per-chat 429s", flush=True)
            if probing is not None:
                probing.cancel()
                await asyncio.gather(probing, return_exceptions=True)
                probing = None
            await asyncio.sleep(1.0)  # a last send being recorded
            for worker in workers:
                if worker.process.poll() is None:
                    result.stop_seconds.append(worker.stop())
                result.exit_codes.append(worker.process.returncode)
        finally:
            if probing is not None:
                probing.cancel()
            for worker in workers:
                worker.close()
            await asyncio.to_thread(tg.stop)
        result.probe_unanswered = unanswered[0] if unanswered else 0
        seen = nudge_numbers(tg, set(probes))
        result.duplicates = sum(n - 1 for n in seen.values() if n > 1)
        result.missing = len(expected - set(seen))
        times = sorted(a.at for a in tg.accepted if a.chat_id not in probes
                       and isinstance(a.chat_id, int) and a.chat_id >= FIRST_USER_ID)
        if len(times) > 1:
            result.seconds = times[-1] - times[0]
            result.rate = (len(times) - 1) / result.seconds
            if run == "kill" and killed:
                result.killed_at = kill_time - times[0]
            result.too_many_at = [c.at - times[0] for c in tg.requests if c.status == 429]
        every = sorted(a.at for a in tg.accepted)
        spans = [b - a for a, b in zip(every, every[GLOBAL_LIMIT - 1:], strict=False)]
        result.tightest_30 = min(spans) if spans else float("nan")
        result.overall_429 = tg.too_many_overall
        result.per_chat_429 = tg.too_many_per_chat
        engine.dispose()
        if args.keep_logs:
            for worker in workers:
                kept = Path(args.keep_logs) / f"{run}-{worker.log.name}"
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_bytes(worker.log.read_bytes())
    return result


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(results: list[Result]) -> None:
    rows = []
    for r in results:
        rows.append([
            r.run, r.nudges, r.seconds, r.rate, f"{r.rate / GLOBAL_LIMIT:.3f}",
            r.overall_429, r.per_chat_429, r.duplicates,
            "-" if r.in_flight_at_kill is None else r.in_flight_at_kill, r.missing,
            f"{statistics.median(r.latencies):.3f}" if r.latencies else "-",
            f"{quantile(r.latencies, 0.95):.3f}" if r.latencies else "-",
            f"{max(r.latencies):.3f}" if r.latencies else "-",
            len(r.latencies),
            " ".join(f"{s:.1f}" for s in r.stop_seconds),
        ])
    print()
    print(table(rows, ["run", "nudges", "s", "sends/s", "× 30/s", "429 overall",
                       "429 per chat", "dups", "in flight", "missing", "reply p50",
                       "p95", "max", "replies", "stop s"]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Two youhu run workers on one PostgreSQL database deliver N nudges to a "
                    "fake Telegram enforcing 30/s overall and 1/s per chat (issue 10).")
    parser.add_argument("--count", type=int, default=10_000, help="nudges (default 10,000)")
    parser.add_argument("--members", type=int, default=None,
                        help="liaisons they go to (default count / 10)")
    parser.add_argument("--workers", type=int, default=2, help="youhu run processes (2)")
    parser.add_argument("--runs", default=",".join(RUNS),
                        help="comma-separated, of grouped, shuffled, kill (default all)")
    parser.add_argument("--kill-at", type=float, default=0.4,
                        help="kill run: SIGKILL worker 1 when this fraction is out (0.4)")
    parser.add_argument("--probe-every", type=float, default=0.5,
                        help="seconds between the probe's /help commands (0.5)")
    parser.add_argument("--probe-users", type=int, default=4,
                        help="probe members taking turns (4: each asks every 2 s)")
    parser.add_argument("--database-url", default=None,
                        help="PostgreSQL URL (or YOUHU_BENCH_POSTGRES_URL); EVERY youhu "
                             "TABLE IN IT IS EMPTIED")
    parser.add_argument("--keep-logs", default=None,
                        help="a directory to copy the workers' logs into")
    parser.add_argument("--seed", type=int, default=5, help="shuffle seed (5)")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to check it works: 600 nudges to 60 members")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.members = 600, 60
    if args.members is None:
        args.members = max(1, args.count // 10)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if any(r not in RUNS for r in args.runs):
        parser.error(f"--runs takes {', '.join(RUNS)}")
    if args.workers < 1 or args.probe_users < 1 or not 0 < args.kill_at < 1:
        parser.error("need --workers >= 1, --probe-users >= 1, 0 < --kill-at < 1")
    args.database_url = postgres_url_from(args.database_url)
    if not args.database_url or not is_postgres(args.database_url):
        parser.error("needs a PostgreSQL URL: --database-url or YOUHU_BENCH_POSTGRES_URL")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(f"database: {describe_url(args.database_url)}; fake Telegram limits "
          f"{GLOBAL_LIMIT}/s overall, {PER_CHAT_LIMIT}/s per chat (strict sliding second); "
          f"probe /help every {args.probe_every} s from {args.probe_users} members in turn")
    results = []
    for run in args.runs:
        result = asyncio.run(one_run(run, args, args.database_url))
        results.append(result)
        report([result])
        if result.too_many_at:
            print("429s at (s after the first nudge): " + ", ".join(
                f"{t:.2f}" for t in result.too_many_at[:30]))
        if result.killed_at is not None:
            print(f"worker 1 killed at {result.killed_at:.2f} s")
        print(f"the tightest {GLOBAL_LIMIT} consecutive accepted sends took "
              f"{result.tightest_30:.3f} s")
    if len(results) > 1:
        report(results)
    print(f"\nlower bound at {GLOBAL_LIMIT}/s: {args.count / GLOBAL_LIMIT:.1f} s per run; "
          f"threads: {threading.active_count()}")


if __name__ == "__main__":
    main(sys.argv[1:])

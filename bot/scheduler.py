"""The scheduler: APScheduler 3's AsyncIOScheduler, owned by `bot/` (not
PTB's JobQueue), running two interval jobs on the bot's event loop.

- the sweep (`scheduler.sweep_seconds`, default 30): due reminders and ladder
  steps (`workflows.sweep`), then the daily routine (`workflows.routine`),
  then a delivery round;
- delivery (`scheduler.deliver_seconds`, default 5): the outbox.

Both are coalesced and limited to one instance, so a slow round is never run
twice at once in one process; nothing is kept in a job store — the database
says what is due, so a restart resumes where the last round stopped, and a
misfired round is simply the next one. `kick()` runs a delivery round at
once (after a conversation queued messages), so replies need not wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.delivery import Deliverer
from handlers.dialogs import prune
from workflows.context import Context
from workflows.retention import DEFAULT_KEEP
from workflows.routine import routine
from workflows.sweep import sweep

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PRUNE_EVERY = timedelta(hours=1)
# Platforms redeliver within minutes; a dialog idle for a month is abandoned.
KEEP_DIALOGS = timedelta(days=30)


class Scheduler:
    """Runs the sweep and the deliverer on the running event loop."""

    def __init__(self, ctx: Context, deliverer: Deliverer, clock: Clock,
                 sweep_seconds: float = 30, deliver_seconds: float = 5,
                 digest_at: time = time(8, 30), keep: timedelta = DEFAULT_KEEP) -> None:
        self.ctx = ctx
        self.deliverer = deliverer
        self.clock = clock
        self.digest_at = digest_at
        self.keep = keep
        self.sweeps = 0
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        options = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
        now = datetime.now(UTC)
        self._scheduler.add_job(self.sweep_round, IntervalTrigger(seconds=sweep_seconds),
                                id="sweep", next_run_time=now, **options)
        # The deliverer skips a round while one runs (its own lock), so
        # APScheduler need not refuse (and log) overlapping delivery rounds.
        self._scheduler.add_job(self.deliver_round, IntervalTrigger(seconds=deliver_seconds),
                                id="deliver", next_run_time=now,
                                **{**options, "max_instances": 4})
        self._kicks: set[asyncio.Task[int]] = set()
        self._rounds: set[asyncio.Task[object]] = set()
        self._stopped = False
        self._pruned_at: datetime | None = None

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._rounds.add(task)
            task.add_done_callback(self._rounds.discard)

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self) -> None:
        """Stop scheduling and let the rounds in progress finish (a delivery
        cut in half would only be redone, but a clean stop is quieter)."""
        # Pause first and let the rounds in progress finish: APScheduler's
        # shutdown cancels the coroutine jobs still running.
        self._scheduler.pause()
        self._stopped = True
        current = asyncio.current_task()
        while running := [t for t in self._kicks | self._rounds if t is not current]:
            await asyncio.gather(*running, return_exceptions=True)
        self._scheduler.shutdown(wait=False)

    async def sweep_round(self) -> None:
        """Record what is due, run the routine, deliver."""
        self._track()
        now = self.clock()
        try:
            result = await asyncio.to_thread(sweep, self.ctx, now)
            if result.sent:
                log.info("sweep: %d steps sent, %d superseded, %d calls",
                         result.sent, result.superseded, result.calls)
            await asyncio.to_thread(routine, self.ctx, now, self.digest_at, self.keep)
            if self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY:
                # Abandoned dialogs and old redelivery records: hourly is plenty.
                await asyncio.to_thread(prune, self.ctx, now - KEEP_DIALOGS)
                self._pruned_at = now
        except Exception:  # the next round retries; a bad round must not kill the job
            log.exception("sweep round failed")
        finally:
            self.sweeps += 1
        await self.deliver_round()

    async def deliver_round(self) -> None:
        self._track()
        try:
            await self.deliverer.run_once()
        except Exception:
            log.exception("delivery round failed")

    def kick(self) -> None:
        """Deliver now, in the background (e.g. right after a conversation)."""
        if self._stopped:
            return  # the next start delivers it: the outbox keeps it
        task = asyncio.get_running_loop().create_task(self.deliverer.run_once())
        self._kicks.add(task)
        task.add_done_callback(self._kicks.discard)

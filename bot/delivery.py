"""The deliverer: takes leased outbox messages, renders each in its member's
language, and sends it through every channel the member has.

Channels plug in through `Channel`; a channel raises `ChannelError` with
`retry_after` for a 429, or `permanent=True` for what a retry cannot fix.
Database work runs in a worker thread so the event loop keeps serving
updates while a batch is delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from handlers.messages import Reply
from handlers.notices import render as render_notice
from models import Member, session_scope
from workflows import outbox
from workflows.context import Context
from workflows.outbox import Claimed

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Render = Callable[[Context, Member, str, dict[str, Any], int | None], Sequence[Reply]]


class ChannelError(Exception):
    """Sending failed; `retry_after` seconds if the platform said when to
    retry, `permanent` if retrying cannot help (e.g. the bot was blocked)."""

    def __init__(self, message: str, retry_after: float | None = None,
                 permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Channel(Protocol):
    """Something youhu can send replies through."""

    name: str

    def reaches(self, member: Member) -> bool:
        """Whether `member` has an identity on this channel."""
        ...

    async def send(
        self, member: Member, replies: Sequence[Reply], call_id: int | None
    ) -> str | None:
        """Send the replies; return the platform's id of the (first) message."""
        ...


class Deliverer:
    """Delivers the outbox through `channels`, `concurrency` messages at a time."""

    def __init__(self, ctx: Context, channels: Sequence[Channel], clock: Clock,
                 render: Render = render_notice, concurrency: int = 64,
                 batch: int = 100) -> None:
        self.ctx = ctx
        self.channels = list(channels)
        self.clock = clock
        self.render = render
        self.batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._running = asyncio.Lock()

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages were handled.

        A pipeline rather than batch after batch: more is claimed as soon as
        half the messages in flight are done, so one slow chat (paced to a
        message a second) does not hold the others up. Never two rounds at
        once in one process (the lock)."""
        if self._running.locked():
            return 0
        async with self._running:
            handled = 0
            in_flight: set[asyncio.Task[None]] = set()
            exhausted = False
            while True:
                if not exhausted and len(in_flight) <= self.batch // 2:
                    claimed = await asyncio.to_thread(
                        outbox.claim, self.ctx, self.clock(), self.batch - len(in_flight))
                    exhausted = not claimed
                    handled += len(claimed)
                    in_flight |= {asyncio.create_task(self._deliver(m)) for m in claimed}
                if not in_flight:
                    return handled
                _, in_flight = await asyncio.wait(in_flight,
                                                  return_when=asyncio.FIRST_COMPLETED)

    def _member(self, member_id: int) -> Member | None:
        with session_scope(self.ctx.engine) as session:
            return session.get(Member, member_id)

    async def _deliver(self, message: Claimed) -> None:
        async with self._slots:
            try:
                await self._deliver_one(message)
            except Exception as error:  # a bug in rendering must not stop the deliverer
                log.exception("delivering outbox message %s failed", message.id)
                await asyncio.to_thread(outbox.mark_failed, self.ctx, message.id, self.clock(),
                                        f"{type(error).__name__}: {error}")

    async def _deliver_one(self, message: Claimed) -> None:
        ctx = self.ctx
        member = await asyncio.to_thread(self._member, message.member_id)
        reachable = [c for c in self.channels if member is not None and member.active
                     and c.reaches(member)]
        if member is None or not reachable:
            await asyncio.to_thread(outbox.mark_unreachable, ctx, message.id, self.clock())
            return
        replies = await asyncio.to_thread(
            self.render, ctx, member, message.template, message.params, message.call_id)
        done = set(message.done_channels)
        failures: list[tuple[str, ChannelError]] = []
        for channel in reachable:
            if channel.name in done:
                continue
            try:
                platform_id = await channel.send(member, replies, message.call_id)
            except ChannelError as error:
                log.warning("outbox %s on %s: %s", message.id, channel.name, error)
                failures.append((channel.name, error))
                continue
            await asyncio.to_thread(outbox.record_copy, ctx, message.id, channel.name,
                                    self.clock(), platform_id)
            done.add(channel.name)
        temporary = [error for _, error in failures if not error.permanent]
        if not failures or (not temporary and done):
            # Every channel has it, or the member was reached where a retry could help no more.
            await asyncio.to_thread(outbox.mark_delivered, ctx, message.id, self.clock())
            return
        waits = [error.retry_after for error in temporary if error.retry_after]
        reason = "; ".join(f"{name}: {error}" for name, error in failures)
        await asyncio.to_thread(outbox.mark_failed, ctx, message.id, self.clock(), reason,
                                max(waits) if waits else None, not temporary)

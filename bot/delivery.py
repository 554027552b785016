"""The deliverer: takes leased outbox messages, renders each in its member's
language, and sends it through every channel the member has an account on
(`workflows.accounts`).

Channels plug in through `Channel`; a channel raises `ChannelError` with
`retry_after` for a 429, or `permanent=True` for what a retry cannot fix.
Database work runs in a worker thread so the event loop keeps serving
updates while a batch is delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.leases import keep_renewing
from handlers.messages import Reply
from handlers.notices import render as render_notice
from models import Member, session_scope
from workflows import accounts, outbox
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
    """Something youhu can send replies through. `name` is the channel of
    the members' accounts (`workflows.accounts`) it reaches."""

    name: str

    async def send(
        self, account: str, replies: Sequence[Reply], call_id: int | None
    ) -> str | None:
        """Send the replies to the member's `account` on this channel (its
        external id); return the platform's id of the (first) message."""
        ...


class Deliverer:
    """Delivers the outbox through `channels`, `concurrency` messages at a time.

    Every claim is fenced (workflows.outbox): the deliverer renews the leases
    of what it holds every `lease / 3`, checks it still holds a message
    before each channel's send, and records copies and outcomes with the
    claim's token — so a second worker never sends what this one is sending.
    `stop()` is the clean stop: no more claims, the messages whose sending
    has begun are finished (for at most `grace` seconds), every other claim
    is released at once for the next worker or start."""

    def __init__(self, ctx: Context, channels: Sequence[Channel], clock: Clock,
                 render: Render = render_notice, concurrency: int = 64,
                 batch: int = 100, lease: timedelta = outbox.LEASE,
                 grace: float = 6.0) -> None:
        self.ctx = ctx
        self.channels = list(channels)
        self.clock = clock
        self.render = render
        self.batch = batch
        self.lease = lease
        self.grace = grace
        self._slots = asyncio.Semaphore(concurrency)
        self._running = asyncio.Lock()
        self._held: dict[int, str] = {}  # message id → claim token
        self._sending: set[int] = set()  # messages whose first send has begun
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = False
        self._renewer: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages were handled.

        A pipeline rather than batch after batch: more is claimed as
        messages finish, so one slow chat (paced to a message a second) does
        not hold the others up. Never two rounds at once in one process (the
        lock)."""
        if self._running.locked() or self._stopping:
            return 0
        async with self._running:
            self._start_renewing()
            handled = 0
            in_flight: set[asyncio.Task[None]] = set()
            claim_again = True
            while True:
                if claim_again and not self._stopping and len(in_flight) <= self.batch // 2:
                    wanted = self.batch - len(in_flight)
                    claimed = await asyncio.to_thread(
                        outbox.claim, self.ctx, self.clock(), wanted, self.lease)
                    handled += len(claimed)
                    for message in claimed:
                        self._held[message.id] = message.token
                        task = asyncio.create_task(self._deliver(message))
                        self._tasks[message.id] = task
                        in_flight.add(task)
                    # A short claim: wait for a message to finish (its member
                    # may have more) before asking again.
                    claim_again = len(claimed) == wanted
                if not in_flight:
                    return handled
                _, in_flight = await asyncio.wait(in_flight,
                                                  return_when=asyncio.FIRST_COMPLETED)
                claim_again = True

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_leases())

    async def _renew_leases(self) -> None:
        """While anything is held: extend the leases; forget (and stop) the
        messages another worker has taken over."""
        await keep_renewing(
            self.lease, lambda: list(self._held.items()),
            lambda held: outbox.renew(self.ctx, held, self.clock(), self.lease),
            self._taken_over, "outbox")

    def _taken_over(self, held: Sequence[tuple[int, str]], kept: set[int]) -> None:
        for message_id, token in held:
            if message_id not in kept and self._held.get(message_id) == token:
                log.warning("outbox %s was taken over by another worker", message_id)
                self._held.pop(message_id, None)
                task = self._tasks.get(message_id)
                if task is not None and message_id not in self._sending:
                    task.cancel()

    async def stop(self) -> None:
        """The clean stop (SIGTERM): finish what is being sent, release the rest."""
        self._stopping = True
        waiting = [task for message_id, task in self._tasks.items()
                   if message_id not in self._sending]
        for task in waiting:
            task.cancel()
        sending = [task for message_id, task in self._tasks.items()
                   if message_id in self._sending]
        if sending:
            _, late = await asyncio.wait(sending, timeout=self.grace)
            for task in late:
                task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
        held = list(self._held.items())
        if held:
            released = await asyncio.to_thread(outbox.release, self.ctx, held)
            log.info("released %d unsent outbox messages", released)
        self._held.clear()

    def _member(self, member_id: int) -> tuple[Member | None, dict[str, str]]:
        """The member and their accounts (channel → external id)."""
        with session_scope(self.ctx.engine) as session:
            return session.get(Member, member_id), accounts.account_map(session, member_id)

    async def _deliver(self, message: Claimed) -> None:
        try:
            async with self._slots:
                await self._deliver_one(message)
        except asyncio.CancelledError:
            pass  # stopped or taken over: the claim is released (or is another's)
        except Exception as error:  # a bug in rendering must not stop the deliverer
            log.exception("delivering outbox message %s failed", message.id)
            await asyncio.to_thread(outbox.mark_failed, self.ctx, message.id, self.clock(),
                                    f"{type(error).__name__}: {error}", token=message.token)
            self._settled(message)
        finally:
            self._tasks.pop(message.id, None)
            self._sending.discard(message.id)

    def _settled(self, message: Claimed) -> None:
        if self._held.get(message.id) == message.token:
            del self._held[message.id]

    async def _deliver_one(self, message: Claimed) -> None:
        ctx, token = self.ctx, message.token
        member, bound = await asyncio.to_thread(self._member, message.member_id)
        reachable = [c for c in self.channels if member is not None and member.active
                     and c.name in bound]
        if member is None or not reachable:
            await asyncio.to_thread(outbox.mark_unreachable, ctx, message.id, self.clock(),
                                    token)
            self._settled(message)
            return
        replies = await asyncio.to_thread(
            self.render, ctx, member, message.template, message.params, message.call_id)
        done = set(message.done_channels)
        failures: list[tuple[str, ChannelError]] = []
        for channel in reachable:
            if channel.name in done:
                continue
            if self._held.get(message.id) != token or (
                    done and not await asyncio.to_thread(outbox.holds, ctx, message.id, token)):
                return  # taken over: the other worker sends the rest
            self._sending.add(message.id)
            try:
                platform_id = await channel.send(bound[channel.name], replies, message.call_id)
            except ChannelError as error:
                log.warning("outbox %s on %s: %s", message.id, channel.name, error)
                failures.append((channel.name, error))
                continue
            if not await asyncio.to_thread(outbox.record_copy, ctx, message.id, channel.name,
                                           self.clock(), platform_id, token):
                log.warning("outbox %s: sent on %s after another worker took it over",
                            message.id, channel.name)
                self._settled(message)
                return
            done.add(channel.name)
        temporary = [error for _, error in failures if not error.permanent]
        if not failures or (not temporary and done):
            # Every channel has it, or the member was reached where a retry could help no more.
            await asyncio.to_thread(outbox.mark_delivered, ctx, message.id, self.clock(), token)
            self._settled(message)
            return
        waits = [error.retry_after for error in temporary if error.retry_after]
        reason = "; ".join(f"{name}: {error}" for name, error in failures)
        await asyncio.to_thread(outbox.mark_failed, ctx, message.id, self.clock(), reason,
                                max(waits) if waits else None, not temporary, token)
        self._settled(message)

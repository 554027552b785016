"""The inbox worker: every channel stores what it receives (`Inbox.store`,
then answers the platform), and this hands the stored updates to the
channel's handler — in order per chat, chats concurrently, on whichever
worker has a free hand.

A channel's handler gets a `workflows.inbox.Stored` and, to run the
conversation, calls `Inbox.handle(item, incoming)`: the conversation runs in
one database transaction (`models.atomic`) that also marks the update done
with its replies, so its effects and the record of having handled it commit
together. The handler then sends the replies; the worker marks the update
answered. An exception before the commit rolls everything back and the
update is retried (a few times, then given up and logged); after a crash
the next worker handles a pending update again from the start, or, for an
update already done, only sends its stored replies.

Claims are leases (`workflows.inbox.LEASE`, 15 s) renewed every third of
that while an update is in hand, so a slow handler (a photo download, a
reply paced at a message a second) is never claimed by a second worker,
and a crashed worker's updates are taken up again within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bot.leases import keep_renewing
from handlers.conversations import Conversations
from handlers.messages import Button, Incoming, Reply
from models import atomic
from workflows import inbox
from workflows.context import Context
from workflows.inbox import Stored

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Handler = Callable[[Stored], Awaitable[None]]
POLL_SECONDS = 0.5  # how often updates stored by another worker are looked for


class Lost(Exception):
    """The worker's claim on an update was taken over: its work is undone."""


def to_json(replies: Sequence[Reply]) -> list[dict[str, Any]]:
    return [{"text": r.text, "photos": list(r.photos),
             "buttons": [[[b.label, b.data] for b in row] for row in r.buttons]}
            for r in replies]


def from_json(stored: Sequence[dict[str, Any]]) -> list[Reply]:
    return [Reply(str(r.get("text", "")),
                  tuple(tuple(Button(str(label), str(data)) for label, data in row)
                        for row in r.get("buttons", [])),
                  tuple(str(p) for p in r.get("photos", []))) for r in stored]


def converse(ctx: Context, conversations: Conversations, item: Stored, incoming: Incoming,
             clock: Clock) -> list[Reply]:
    """Run the conversation for `item` in one transaction with the record
    that it was handled (blocking; `Inbox.handle` runs it in a thread, the
    console directly). Raises `Lost` — everything undone — if the claim is
    no longer this worker's."""
    with atomic(ctx.engine):
        now = clock()
        # once=True: the inbox row, completed in this transaction, is the
        # once-only record (no HandledUpdate row besides it).
        replies = conversations.handle(incoming, now, once=True)
        if not inbox.complete(ctx, item, to_json(replies), now):
            raise Lost(f"inbox {item.id} was taken over")
        return replies


class Inbox:
    """One channel's stored updates and the tasks handling them."""

    def __init__(self, ctx: Context, channel: str, handler: Handler, clock: Clock,
                 concurrency: int = 64, grace: float = 5.0,
                 lease: timedelta = inbox.LEASE) -> None:
        self.ctx = ctx
        self.channel = channel
        self.handler = handler
        self.clock = clock
        self.concurrency = concurrency
        self.grace = grace
        self.lease = lease
        self.conversations = Conversations(ctx)
        self._wake = asyncio.Event()
        self._in_hand: dict[int, tuple[Stored, asyncio.Task[None]]] = {}
        self._loop: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._stopping = False

    async def store(self, platform_id: str, chat: str, payload: dict[str, Any],
                    group: str | None = None) -> bool:
        """Keep a verified delivery (False: a redelivery) and wake the worker."""
        stored = await asyncio.to_thread(inbox.store, self.ctx, self.channel, platform_id,
                                         chat, payload, self.clock(), group)
        self._wake.set()
        return stored

    async def handle(self, item: Stored, incoming: Incoming) -> list[Reply]:
        """Run the conversation for `item` in one transaction with the record
        that it was handled; for an update handled before (a crash before
        its replies went out), the stored replies, nothing run again."""
        if item.done:
            return from_json(item.result or [])
        return await asyncio.to_thread(converse, self.ctx, self.conversations, item, incoming,
                                       self.clock)

    def later_in_group(self, item: Stored) -> Awaitable[bool]:
        return asyncio.to_thread(inbox.later_in_group, self.ctx, item)

    def next_in_chat(self, item: Stored) -> Awaitable[dict[str, Any] | None]:
        return asyncio.to_thread(inbox.next_in_chat, self.ctx, item)

    async def skip(self, item: Stored) -> None:
        """Mark `item` handled with no answer, the conversation not run (a
        part of a split text, carried by the next part)."""
        if item.done:
            return
        if not await asyncio.to_thread(inbox.complete, self.ctx, item, [], self.clock()):
            raise Lost(f"inbox {item.id} was taken over")

    # --- the worker -------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop.create_task(self._run())
        self._renewer = loop.create_task(self._renew())

    async def _renew(self) -> None:
        """While it works: extend the leases of the updates in hand."""
        await keep_renewing(
            self.lease, lambda: [item for item, _ in self._in_hand.values()],
            lambda held: inbox.renew(self.ctx, list(held), self.clock(), self.lease),
            self._taken_over, f"{self.channel} inbox")

    def _taken_over(self, held: Sequence[Stored], kept: set[int]) -> None:
        for item in held:
            if item.id not in kept and item.id in self._in_hand:
                # Its work cannot commit (`complete` checks the token).
                log.warning("%s inbox: update %s was taken over", self.channel,
                            item.platform_id)

    def kick(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before claiming: a store during the claim wakes us again
            free = self.concurrency - len(self._in_hand)
            if free > 0:
                try:
                    claimed = await asyncio.to_thread(inbox.claim, self.ctx, self.channel,
                                                      self.clock(), free, self.lease)
                except Exception:  # the database is back in a moment: try again
                    log.exception("%s inbox: claiming failed", self.channel)
                    claimed = []
                for item in claimed:
                    task = asyncio.create_task(self._one(item))
                    self._in_hand[item.id] = (item, task)
                if claimed:
                    continue  # more chats may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _one(self, item: Stored) -> None:
        try:
            await self.handler(item)
        except asyncio.CancelledError:
            return  # stopping: released below, handled by the next start
        except Exception as error:
            log.exception("%s inbox: update %s failed", self.channel, item.platform_id)
            await asyncio.to_thread(inbox.failed, self.ctx, item, self.clock(),
                                    f"{type(error).__name__}: {error}")
        else:
            await asyncio.to_thread(inbox.answered, self.ctx, item, self.clock())
        finally:
            self._in_hand.pop(item.id, None)
            self._wake.set()  # the chat's next update may be waiting

    async def stop(self) -> None:
        """Stop taking updates; let the ones in hand finish for `grace`
        seconds, then release the rest for the next start."""
        self._stopping = True
        self._wake.set()
        if self._loop is not None:
            await asyncio.gather(self._loop, return_exceptions=True)
        in_hand = list(self._in_hand.values())
        if not in_hand:
            await self._stop_renewing()
            return
        _, late = await asyncio.wait([task for _, task in in_hand], timeout=self.grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*(task for _, task in in_hand), return_exceptions=True)
        await self._stop_renewing()
        left = [item for item, task in in_hand if task in late]
        if left:
            await asyncio.to_thread(inbox.release, self.ctx, left)
        self._in_hand.clear()

    async def _stop_renewing(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)

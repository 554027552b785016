"""Keeping claims alive: the loop the inbox and the outbox both run while
they work, so a slow handler or a send paced behind a busy chat is not
claimed by a second worker meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def keep_renewing(
    lease: timedelta,
    held: Callable[[], Sequence[T]],
    renew: Callable[[Sequence[T]], set[int]],
    taken_over: Callable[[Sequence[T], set[int]], None],
    what: str,
) -> None:
    """Every third of `lease`, until cancelled: extend the leases of what
    `held()` returns (`renew` blocks on the database: it runs in a thread and
    returns the ids still held), then let `taken_over` deal with the rest. A
    failed renewal is logged and tried again at the next round: a lease has
    room for two misses."""
    interval = lease.total_seconds() / 3
    while True:
        await asyncio.sleep(interval)
        items = held()
        if not items:
            continue
        try:
            kept = await asyncio.to_thread(renew, items)
        except Exception:
            log.exception("renewing %s leases failed", what)
            continue
        taken_over(items, kept)

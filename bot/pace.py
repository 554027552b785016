"""One pace for the bot, shared by every worker: Telegram's limits (about 30
messages a second overall, about one a second to a private chat) are the
bot's, not a process's, so the slots are handed out by the database.

Why the database and not PostgreSQL advisory locks: an advisory lock only
says who may decide, the time of the next free slot must still be stored
somewhere every worker reads — so a row it is. Each reservation is a few
atomic `UPDATE … SET next_at = GREATEST(next_at, :t) + :interval RETURNING`
statements in one short transaction (the chat's row first, then the bot's,
always in that order, so two workers never deadlock). That works unchanged
on SQLite (one process, or several: SQLite serialises writers) and on
PostgreSQL (row locks, held for the milliseconds of the transaction); a
reservation costs one round trip, nothing at 30 a second.

Two lanes: a conversation reply (`priority=True`) always takes the next free
slot; bulk (the outbox) reserves only slots at most `horizon` seconds ahead,
and otherwise waits — so replies queue behind at most `horizon` seconds of
nudges, never behind the whole backlog. Within one process one bulk
reservation is asked at a time (a lock), so a burst of 64 messages in
flight does not poll the database 64 times over.

Slots are evenly spaced (one every `overall_interval`), not bursts: a
bucket of 30 lets a burst through that Telegram's sliding window answers
with 429s. Time is `time.time()`: workers on one host, or hosts kept in
step by NTP (a few ms apart at most, well inside the margins).

A late send is made up for (`sent`). Telegram counts a message when it
arrives, which is somewhere between its slot and its answer. At 28 a second
the 31st slot after a send is 30/28 s = 1.071 s later, so a send that
arrives up to 71 ms after its slot still leaves its second with 30 sends at
most; one answered later than that (a stalled event loop, a garbage
collection, a slow network) could share a second with the 30th send after
it, sent on time. So when a send is answered more than those 71 ms after
its slot, the bot's next free slot moves on by the excess, on every worker
(one UPDATE): the 31st send after it then goes at least a second after
its answer, hence after its arrival, whatever the stall. A blind margin
(a slower even pace) would cost throughput all the time and still lose to
a stall longer than itself; this costs only the stalls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from models import SendPace

# 28 a second, two under Telegram's 30: a send arrives a few ms after its
# slot, and that jitter must not squeeze 31 sends into one second.
OVERALL_INTERVAL = 1 / 28
PRIVATE_CHAT_INTERVAL = 1.05  # about one message a second to one private chat
GROUP_CHAT_INTERVAL = 3.05  # twenty a minute to a group
OVERALL_LIMIT = 30  # Telegram's: sends in any one second, for the whole bot
WINDOW = 1.0  # seconds Telegram's limits count sends over
BULK_HORIZON = 0.2  # seconds of slots bulk may hold ahead of a reply
LATE_RETRIES = 5  # bulk slots missed (woken late) before sending regardless


@dataclass(frozen=True)
class _Blocked:
    retry_at: float
    by_overall: bool


class Pace:
    """Hands out send times for one channel (`name`) across processes.
    `overall_interval` None: no overall limit (a benchmark lifts it)."""

    def __init__(self, engine: Engine, name: str,
                 overall_interval: float | None = OVERALL_INTERVAL,
                 horizon: float = BULK_HORIZON,
                 clock: Callable[[], float] = time.time,
                 private_interval: float = PRIVATE_CHAT_INTERVAL,
                 group_interval: float = GROUP_CHAT_INTERVAL) -> None:
        self.engine = engine
        self.private_interval = private_interval
        self.group_interval = group_interval
        self.name = name
        self.overall_interval = overall_interval
        self.horizon = horizon
        self.clock = clock
        self._known: set[str] = set()
        self._answered: dict[str, float] = {}  # chat → when its last send was answered
        self._bulk = asyncio.Lock()
        table: Any = SendPace.__table__  # type: ignore[attr-defined]
        self._table = table
        dialect = engine.dialect.name
        self._greatest = sa.func.greatest if dialect == "postgresql" else sa.func.max
        insert: Any
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        self._insert = insert

    def chat_interval(self, chat: int | str) -> float:
        return self.group_interval if str(chat).startswith("-") else self.private_interval

    def answered(self, chat: int | str) -> None:
        """The send to `chat` was answered: its next send is a chat interval
        after this, not merely after the slot — Telegram counts a message
        when it arrives, and under load a send can arrive late enough after
        its slot for the next one, on time, to come less than a second later."""
        self._answered[str(chat)] = self.clock()
        if len(self._answered) > 10_000:
            horizon = self.clock() - 10
            self._answered = {c: t for c, t in self._answered.items() if t > horizon}

    def tolerance(self) -> float:
        """How late after its slot a send may arrive without risking the
        overall limit: the span of OVERALL_LIMIT slots beyond one second."""
        assert self.overall_interval is not None
        return OVERALL_LIMIT * self.overall_interval - WINDOW

    async def sent(self, chat: int | str, slot: float) -> None:
        """The send to `chat` in `slot` was answered (or failed): pace the
        chat's next send from now (`answered`), and if it was answered later
        after its slot than `tolerance`, move the bot's next free slot on by
        the excess (see the module's doc)."""
        self.answered(chat)
        if self.overall_interval is None:
            return
        excess = self.clock() - slot - self.tolerance()
        if excess > 0:
            await asyncio.to_thread(self._push, excess)

    def _push(self, seconds: float) -> None:
        table = self._table
        with self.engine.begin() as connection:
            connection.execute(sa.update(table).where(table.c.key == self.name)
                               .values(next_at=table.c.next_at + seconds))

    async def wait(self, chat: int | str, priority: bool) -> float:
        """Return when a message to `chat` may be sent (its slot, which is
        returned, is taken)."""
        for _ in range(LATE_RETRIES):
            slot = await self._slot(str(chat), priority)
            delay = slot - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            late = self.clock() - slot
            if priority or self.overall_interval is None or late <= self.overall_interval:
                return slot
            # Woken long after the slot (a busy event loop): sending now would
            # crowd the slots after it into one second. Take a new one.
        return slot

    async def _slot(self, chat: str, priority: bool) -> float:
        if priority:
            slot = await asyncio.to_thread(self._reserve, chat, None)
            assert isinstance(slot, float)
            return slot
        while True:
            async with self._bulk:
                result = await asyncio.to_thread(self._reserve, chat, self.horizon)
                if isinstance(result, _Blocked) and result.by_overall:
                    # The bot is busy: hold the lock, so this process's
                    # other bulk sends wait here instead of polling.
                    await asyncio.sleep(max(result.retry_at - self.clock(), 0.005))
                    continue
            if isinstance(result, float):
                return result
            await asyncio.sleep(max(result.retry_at - self.clock(), 0.005))  # this chat

    def _ensure(self, connection: sa.Connection, *keys: str) -> None:
        missing = [key for key in keys if key not in self._known]
        if missing:
            connection.execute(self._insert(self._table).values(
                [{"key": key, "next_at": 0.0} for key in missing]).on_conflict_do_nothing())
            connection.commit()  # kept even if the reservation is rolled back
            self._known.update(missing)

    def _take(self, connection: sa.Connection, key: str, earliest: float, interval: float,
              latest: float | None) -> float | None:
        """The slot of `key` at or after `earliest` (advancing it by
        `interval`), or None if it is later than `latest`."""
        table = self._table
        statement = (sa.update(table).where(table.c.key == key)
                     .values(next_at=self._greatest(table.c.next_at, earliest) + interval)
                     .returning(table.c.next_at))
        if latest is not None:
            statement = statement.where(table.c.next_at <= latest)
        taken = connection.execute(statement).scalar()
        return None if taken is None else float(taken) - interval

    def _next(self, connection: sa.Connection, key: str) -> float:
        table = self._table
        return float(connection.execute(
            sa.select(table.c.next_at).where(table.c.key == key)).scalar_one())

    def _reserve(self, chat: str, horizon: float | None) -> float | _Blocked:
        chat_key = f"{self.name}:{chat}"[:64]
        chat_interval = self.chat_interval(chat)
        with self.engine.connect() as connection:
            self._ensure(connection, chat_key, self.name)
            now = self.clock()
            latest = None if horizon is None else now + horizon
            earliest = max(now, self._answered.get(chat, 0.0) + chat_interval)
            chat_slot = self._take(connection, chat_key, earliest, chat_interval, latest)
            if chat_slot is None:
                retry = self._next(connection, chat_key) - (horizon or 0)
                connection.rollback()
                return _Blocked(retry, by_overall=False)
            slot = chat_slot
            if self.overall_interval is not None:
                overall = self._take(connection, self.name, chat_slot, self.overall_interval,
                                     latest)
                if overall is None:
                    retry = self._next(connection, self.name) - (horizon or 0)
                    connection.rollback()
                    return _Blocked(retry, by_overall=True)
                slot = overall
                if slot > chat_slot:  # the bot's queue moved it: the chat's next moves too
                    self._take(connection, chat_key, slot + chat_interval, 0.0, None)
            connection.commit()
            return slot

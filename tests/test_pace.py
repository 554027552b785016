"""One pace for the bot (`bot.pace`): slots shared by workers through the
database — evenly spaced overall, spaced per chat, replies ahead of bulk —
and, against the fake Bot API with Telegram's limits on, two workers and
multi-message replies that draw no 429. On PostgreSQL when
YOUHU_TEST_DATABASE_URL is set, else SQLite."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import defaultdict

from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot.pace import Pace
from bot.settings import TelegramSettings
from bot.telegram import TelegramChannel
from handlers.messages import Reply
from tests.fakes.telegram_api import FakeTelegram
from workflows.context import Context

OVERALL = 0.02
PER_CHAT = 0.15


def test_two_workers_share_one_pace(ctx: Context) -> None:
    """Two workers (threads with their own event loop and Pace) reserve bulk
    slots for five chats: together the slots are one overall interval apart,
    and each chat's one chat interval apart."""
    slots: list[tuple[float, str]] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        pace = Pace(ctx.engine, "test", OVERALL, horizon=0.05, private_interval=PER_CHAT)

        async def sends() -> None:
            async def one(n: int) -> None:
                chat = str(n % 5)
                slot = await pace.wait(chat, priority=False)
                with lock:
                    slots.append((slot, chat))

            await asyncio.gather(*(one(n) for n in range(30)))

        asyncio.run(sends())

    threads = [threading.Thread(target=worker, args=(name,)) for name in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slots) == 60
    times = sorted(slot for slot, _ in slots)
    assert min(b - a for a, b in itertools.pairwise(times)) >= OVERALL - 1e-6
    by_chat: defaultdict[str, list[float]] = defaultdict(list)
    for slot, chat in slots:
        by_chat[chat].append(slot)
    for chat_slots in by_chat.values():
        chat_slots.sort()
        gaps = [b - a for a, b in itertools.pairwise(chat_slots)]
        assert min(gaps) >= PER_CHAT - 1e-6


def test_a_reply_goes_ahead_of_the_bulk_backlog(ctx: Context) -> None:
    """With a backlog of bulk sends waiting, a reply takes a slot within the
    bulk horizon: nearly all the backlog goes after it, not before."""

    async def scenario() -> tuple[float, list[float]]:
        bulk = Pace(ctx.engine, "test", OVERALL, horizon=0.1, private_interval=PER_CHAT)
        replies = Pace(ctx.engine, "test", OVERALL, horizon=0.1, private_interval=PER_CHAT)
        backlog = [asyncio.create_task(bulk.wait(str(n), priority=False)) for n in range(100)]
        while not bulk._known:  # the bulk lane has started
            await asyncio.sleep(0.01)
        reply = await replies.wait("reply-chat", priority=True)
        return reply, list(await asyncio.gather(*backlog))

    reply, bulk_slots = asyncio.run(scenario())
    before = [slot for slot in bulk_slots if slot < reply]
    # Without the lane all 100 would go first (they were all waiting); with
    # it only the horizon's worth (5) plus what was reserved while the
    # reply's own reservation was on its way (a loaded machine: a few more).
    assert len(before) < 50, len(before)


def test_replies_and_two_workers_draw_no_429(ctx: Context) -> None:
    """Against Telegram's limits (30/s overall, 1/s per chat): a reply of
    three messages, and two workers' bulk sends to 40 chats, all accepted."""

    async def scenario(tg: FakeTelegram) -> None:
        settings = TelegramSettings(token=SecretStr(tg.token), base_url=tg.base_url,
                                    base_file_url=tg.base_file_url)
        workers = [TelegramChannel(ctx, settings, lambda: None) for _ in range(2)]  # type: ignore[arg-type, return-value]
        for worker in workers:
            await worker.application.initialize()
        try:
            replies = [Reply("您的呼叫已提交。"), Reply("编号 BY-2026-000001"),
                       Reply("还需要什么？")]
            await workers[0].send_replies(42, replies)
            await asyncio.gather(*(
                workers[n % 2].send_replies(1000 + n % 40, [Reply(f"提醒 {n}")], paced=True)
                for n in range(80)))
        finally:
            for worker in workers:
                await worker.application.shutdown()

    with FakeTelegram(limit_global_per_sec=30, limit_per_chat_per_sec=1) as tg:
        asyncio.run(scenario(tg))
        assert tg.too_many_requests == 0
        assert len(tg.messages_to(42)) == 3
        assert len([m for m in tg.sent if m.method == "sendMessage"]) == 83


def test_a_send_answered_late_moves_the_bots_next_slot_on(engine: Engine) -> None:
    """At 28 a second, 30 slots span 1.071 s: a send answered within 71 ms
    of its slot leaves the next slots where they are; one answered later
    pushes the bot's next free slot on by the excess, so the 31st send
    after it still goes a second after it arrived."""

    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    def third_slot(name: str, answered_after: float) -> float:
        clock = Clock()
        pace = Pace(engine, name, 1 / 28, clock=clock)

        async def sends() -> float:
            first = await pace.wait("1", priority=True)
            assert first == 1000.0
            await pace.wait("2", priority=True)  # 1000.036: the bot's next is 1000.071
            clock.now = first + answered_after
            await pace.sent("1", first)
            clock.now = 1000.0
            return await pace.wait("3", priority=True)

        return asyncio.run(sends())

    assert abs(third_slot("on-time", 0.07) - (1000 + 2 / 28)) < 1e-6
    assert abs(third_slot("late", 0.2) - (1000 + 2 / 28 + 0.2 - (30 / 28 - 1))) < 1e-6

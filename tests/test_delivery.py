"""The deliverer: every channel once, retries, unreachable members reported,
nothing lost or doubled across a crash, two workers on one backlog."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.delivery import ChannelError, Deliverer
from handlers.messages import Reply
from models import Delivery, Member, OutboxMessage, OutboxStatus
from tests.conftest import POSTGRES_URL, T0, Org
from workflows import accounts, outbox
from workflows.context import Context
from workflows.notifications import enqueue


class RecordingChannel:
    """A channel of our own protocol that records what it sends; `failures`
    are raised first, in order. The members it `reaches` get an account on
    it (their member id as the external id)."""

    def __init__(self, ctx: Context, name: str, reaches: set[int]) -> None:
        self.name = name
        self.members = reaches
        self.sent: list[tuple[int, str]] = []
        self.failures: list[ChannelError] = []
        self.lock = threading.Lock()
        with Session(ctx.engine) as session:
            for member_id in reaches:
                accounts.bind(session, member_id, name, str(member_id))
            session.commit()

    async def send(self, account: str, replies: Sequence[Reply], call_id: int | None) -> str:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append((int(account), replies[0].text))
            return str(len(self.sent))


def render(ctx: Context, member: Member, template: str, params: dict[str, Any],
           call_id: int | None) -> list[Reply]:
    return [Reply(f"{template}:{params.get('n')}")]


def queue(ctx: Context, member_id: int, count: int = 1) -> None:
    with Session(ctx.engine) as session:
        for n in range(count):
            enqueue(session, f"test:{member_id}:{n}", member_id, "notice", T0, n=n)
        session.commit()


def status(ctx: Context) -> Counter[str]:
    with Session(ctx.engine) as session:
        return Counter(m.status.value for m in session.exec(select(OutboxMessage)))


def deliver(ctx: Context, channels: list[RecordingChannel], at: timedelta = timedelta(0)) -> int:
    deliverer = Deliverer(ctx, channels, clock=lambda: T0 + at, render=render)
    return asyncio.run(deliverer.run_once())


def test_every_channel_of_the_member_once(ctx: Context, org: Org) -> None:
    telegram = RecordingChannel(ctx, "telegram", {org.water_liaison})
    wecom = RecordingChannel(ctx, "wecom", {org.water_liaison})
    queue(ctx, org.water_liaison, 3)
    assert deliver(ctx, [telegram, wecom]) == 3
    assert deliver(ctx, [telegram, wecom]) == 0
    assert len(telegram.sent) == len(wecom.sent) == 3
    assert status(ctx) == Counter(delivered=3)


def test_a_429_is_retried_after_its_delay_without_resending_elsewhere(
    ctx: Context, org: Org
) -> None:
    telegram = RecordingChannel(ctx, "telegram", {org.water_liaison})
    wecom = RecordingChannel(ctx, "wecom", {org.water_liaison})
    wecom.failures = [ChannelError("429", retry_after=30)]
    queue(ctx, org.water_liaison)
    deliver(ctx, [telegram, wecom])
    assert status(ctx) == Counter(pending=1) and len(telegram.sent) == 1
    assert deliver(ctx, [telegram, wecom], timedelta(seconds=29)) == 0  # not yet
    deliver(ctx, [telegram, wecom], timedelta(seconds=30))
    assert status(ctx) == Counter(delivered=1)
    assert (len(telegram.sent), len(wecom.sent)) == (1, 1)


def test_a_member_with_no_channel_is_reported_to_the_dispatcher(ctx: Context, org: Org) -> None:
    telegram = RecordingChannel(ctx, "telegram", {org.dispatcher})
    queue(ctx, org.water_head)
    deliver(ctx, [telegram])
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
    # The report is queued and, the deliverer claiming until nothing is left,
    # delivered in the same round.
    assert [(r.template, r.status.value) for r in rows] == [
        ("notice", "undeliverable"), ("undeliverable", "delivered")]
    assert rows[1].member_id == org.dispatcher and rows[1].params["member"] == "water-head"
    assert telegram.sent == [(org.dispatcher, "undeliverable:None")]


def test_a_message_that_keeps_failing_is_given_up_and_reported(ctx: Context, org: Org) -> None:
    telegram = RecordingChannel(ctx, "telegram", {org.water_liaison, org.dispatcher})
    telegram.failures = [ChannelError("502 Bad Gateway")] * outbox.MAX_ATTEMPTS
    queue(ctx, org.water_liaison)
    later = timedelta(0)
    for _ in range(outbox.MAX_ATTEMPTS):
        deliver(ctx, [telegram], later)
        later += timedelta(hours=2)  # past any backoff
    assert status(ctx)["undeliverable"] == 1
    deliver(ctx, [telegram], later)
    assert telegram.sent == [(org.dispatcher, "undeliverable:None")]


CRASHING_WORKER = """
import os, signal, sys
from datetime import datetime
from models import make_engine, MediaStore
from workflows import outbox
from workflows.context import Context
engine = make_engine(sys.argv[1])
ctx = Context(engine=engine, media=MediaStore('media'))
claimed = outbox.claim(ctx, datetime.fromisoformat(sys.argv[2]), limit=1000)
print(len(claimed), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # dies holding the lease, before sending anything
"""


def test_a_worker_killed_after_claiming_loses_and_doubles_nothing(
    ctx: Context, org: Org, db_url: str
) -> None:
    members = [org.water_liaison, org.housing_liaison, org.urban_liaison]
    for member in members:
        queue(ctx, member, 10)
    worker = subprocess.run([sys.executable, "-c", CRASHING_WORKER, db_url, T0.isoformat()],
                            capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    # One message a member a claim (members interleave, a member's stay in order).
    assert worker.returncode == -signal.SIGKILL and worker.stdout.strip() == "3"
    telegram = RecordingChannel(ctx, "telegram", set(members))
    # The lease still holds: the members with a message in flight wait.
    assert deliver(ctx, [telegram], timedelta(seconds=10)) == 0
    assert deliver(ctx, [telegram], outbox.LEASE) == 30  # lease over: a restart delivers
    assert deliver(ctx, [telegram], outbox.LEASE * 2) == 0
    assert len(telegram.sent) == 30 and len(set(telegram.sent)) == 30
    # Each member's messages in the order they were queued.
    for member in members:
        assert [text for m, text in telegram.sent if m == member] == [
            f"notice:{n}" for n in range(10)]


@pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL")
def test_two_workers_deliver_a_backlog_of_1000_exactly_once(ctx: Context, org: Org) -> None:
    queue(ctx, org.water_liaison, 1000)
    channel = RecordingChannel(ctx, "telegram", {org.water_liaison})

    def worker() -> None:
        deliverer = Deliverer(ctx, [channel], clock=lambda: T0, render=render, batch=50)
        asyncio.run(deliverer.run_once())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(text for _, text in channel.sent)
    assert len(counts) == 1000 and set(counts.values()) == {1}
    with Session(ctx.engine) as session:
        assert len(session.exec(select(Delivery)).all()) == 1000
    assert status(ctx) == Counter(delivered=1000)
    assert OutboxStatus.DELIVERED.value == "delivered"


def test_only_the_holder_of_a_claim_records_or_settles_it(ctx: Context, org: Org) -> None:
    """A worker whose lease ran out and was taken over can no longer record a
    copy or settle the message: the new holder does."""
    queue(ctx, org.water_liaison)
    [first] = outbox.claim(ctx, T0, lease=timedelta(minutes=1))
    assert outbox.claim(ctx, T0 + timedelta(seconds=30)) == []  # still held
    [second] = outbox.claim(ctx, T0 + timedelta(minutes=2))  # the lease ran out
    assert second.id == first.id and second.token != first.token
    assert not outbox.record_copy(ctx, first.id, "telegram", T0, "1", first.token)
    assert not outbox.mark_delivered(ctx, first.id, T0, first.token)
    assert not outbox.mark_failed(ctx, first.id, T0, "late", token=first.token)
    assert outbox.renew(ctx, [(first.id, first.token)], T0) == set()
    assert outbox.renew(ctx, [(second.id, second.token)], T0) == {second.id}
    assert outbox.record_copy(ctx, second.id, "telegram", T0, "2", second.token)
    assert outbox.mark_delivered(ctx, second.id, T0, second.token)
    with Session(ctx.engine) as session:
        [copy] = session.exec(select(Delivery)).all()
        assert copy.platform_message_id == "2"
    assert status(ctx) == Counter(delivered=1)


class SlowChannel(RecordingChannel):
    """Each send takes `seconds` (a chat paced to a message a second, a slow API)."""

    def __init__(self, ctx: Context, name: str, reaches: set[int], seconds: float) -> None:
        super().__init__(ctx, name, reaches)
        self.seconds = seconds

    async def send(self, account: str, replies: Sequence[Reply], call_id: int | None) -> str:
        await asyncio.sleep(self.seconds)
        return await super().send(account, replies, call_id)


def test_leases_are_renewed_while_a_slow_send_is_in_hand(ctx: Context, org: Org) -> None:
    """Two workers on one backlog, each send outlasting the lease: the holder
    renews, so the other never takes a message over and nothing is doubled
    (without renewal every message would go out twice). On PostgreSQL when
    YOUHU_TEST_DATABASE_URL is set, else SQLite."""
    from datetime import UTC, datetime

    members = [org.water_liaison, org.housing_liaison]
    for member in members:
        queue(ctx, member, 3)
    channel = SlowChannel(ctx, "telegram", set(members), seconds=1.0)

    def worker() -> None:
        deliverer = Deliverer(ctx, [channel], clock=lambda: datetime.now(UTC), render=render,
                              lease=timedelta(seconds=0.6))

        async def rounds() -> None:
            while status(ctx)["pending"]:
                await deliverer.run_once()
                await asyncio.sleep(0.05)

        asyncio.run(rounds())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(channel.sent) == sorted({*channel.sent})  # no copy twice
    assert len(channel.sent) == 6 and status(ctx) == Counter(delivered=6)


def test_a_clean_stop_releases_unsent_claims_at_once(ctx: Context, org: Org) -> None:
    """SIGTERM mid-backlog: the sends in hand finish, the rest are released —
    due again at once for the next worker, not after the lease."""
    from datetime import UTC, datetime

    members = [org.water_liaison, org.housing_liaison, org.urban_liaison, org.dispatcher]
    for member in members:
        queue(ctx, member, 5)
    channel = SlowChannel(ctx, "telegram", set(members), seconds=0.3)

    async def scenario() -> None:
        deliverer = Deliverer(ctx, [channel], clock=lambda: datetime.now(UTC), render=render,
                              concurrency=2)
        round_ = asyncio.create_task(deliverer.run_once())
        while len(channel.sent) < 1:
            await asyncio.sleep(0.01)
        await deliverer.stop()
        await round_

    asyncio.run(scenario())
    sent = len(channel.sent)
    assert 1 <= sent <= 4  # the two in hand when it stopped, at most twice over
    with Session(ctx.engine) as session:
        held = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.claimed_until).is_not(None))).all()
    assert held == []  # nothing left claimed: a restart need not wait for leases
    from datetime import UTC as utc
    from datetime import datetime as dt
    assert deliver(ctx, [channel], dt.now(utc) - T0) == 20 - sent
    assert len(channel.sent) == 20 and len(set(channel.sent)) == 20

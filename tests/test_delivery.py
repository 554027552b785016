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
from workflows import outbox
from workflows.context import Context
from workflows.notifications import enqueue


class RecordingChannel:
    """A channel of our own protocol that records what it sends; `failures`
    are raised first, in order."""

    def __init__(self, name: str, reaches: set[int]) -> None:
        self.name = name
        self.members = reaches
        self.sent: list[tuple[int, str]] = []
        self.failures: list[ChannelError] = []
        self.lock = threading.Lock()

    def reaches(self, member: Member) -> bool:
        return member.id in self.members

    async def send(self, member: Member, replies: Sequence[Reply], call_id: int | None) -> str:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append((member.id or 0, replies[0].text))
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
    telegram = RecordingChannel("telegram", {org.water_liaison})
    wecom = RecordingChannel("wecom", {org.water_liaison})
    queue(ctx, org.water_liaison, 3)
    assert deliver(ctx, [telegram, wecom]) == 3
    assert deliver(ctx, [telegram, wecom]) == 0
    assert len(telegram.sent) == len(wecom.sent) == 3
    assert status(ctx) == Counter(delivered=3)


def test_a_429_is_retried_after_its_delay_without_resending_elsewhere(
    ctx: Context, org: Org
) -> None:
    telegram = RecordingChannel("telegram", {org.water_liaison})
    wecom = RecordingChannel("wecom", {org.water_liaison})
    wecom.failures = [ChannelError("429", retry_after=30)]
    queue(ctx, org.water_liaison)
    deliver(ctx, [telegram, wecom])
    assert status(ctx) == Counter(pending=1) and len(telegram.sent) == 1
    assert deliver(ctx, [telegram, wecom], timedelta(seconds=29)) == 0  # not yet
    deliver(ctx, [telegram, wecom], timedelta(seconds=30))
    assert status(ctx) == Counter(delivered=1)
    assert (len(telegram.sent), len(wecom.sent)) == (1, 1)


def test_a_member_with_no_channel_is_reported_to_the_dispatcher(ctx: Context, org: Org) -> None:
    telegram = RecordingChannel("telegram", {org.dispatcher})
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
    telegram = RecordingChannel("telegram", {org.water_liaison, org.dispatcher})
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
    queue(ctx, org.water_liaison, 50)
    worker = subprocess.run([sys.executable, "-c", CRASHING_WORKER, db_url, T0.isoformat()],
                            capture_output=True, text=True, timeout=120,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    assert worker.returncode == -signal.SIGKILL and worker.stdout.strip() == "50"
    telegram = RecordingChannel("telegram", {org.water_liaison})
    assert deliver(ctx, [telegram], timedelta(seconds=10)) == 0  # the lease still holds
    assert deliver(ctx, [telegram], outbox.LEASE) == 50  # lease over: a restart delivers
    assert deliver(ctx, [telegram], outbox.LEASE * 2) == 0
    assert sorted(Counter(text for _, text in telegram.sent).values()) == [1] * 50


@pytest.mark.skipif(not POSTGRES_URL, reason="several workers need PostgreSQL")
def test_two_workers_deliver_a_backlog_of_1000_exactly_once(ctx: Context, org: Org) -> None:
    queue(ctx, org.water_liaison, 1000)
    channel = RecordingChannel("telegram", {org.water_liaison})

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

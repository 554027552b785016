"""Delivering the outbox, as far as the database is concerned: claiming due
messages, recording each channel's copy, retrying with backoff, and
reporting what cannot be delivered to the dispatcher.

A claim is a lease (`claimed_until`): a worker that dies mid-delivery loses
its lease and another worker takes the message up again, so nothing is lost.
A copy recorded on a channel (`Delivery`) is never sent again on that
channel. The one window left — a copy the platform accepted just before the
worker died, unrecorded — is the at-least-once edge every messaging system
has; the lease makes it one message at most, not a storm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from models import (
    Call,
    Delivery,
    Member,
    OutboxMessage,
    OutboxStatus,
    SentCard,
    session_scope,
)
from workflows.context import Context
from workflows.notifications import dispatchers, enqueue

MAX_ATTEMPTS = 8
# Why a message was given up (the `why` of the dispatcher's notice).
UNREACHABLE = "unreachable"  # the member has no channel youhu can reach
REFUSED = "refused"  # the platform refused it for good (blocked, chat gone…)
KEPT_FAILING = "kept_failing"  # MAX_ATTEMPTS temporary failures
LEASE = timedelta(minutes=2)


@dataclass(frozen=True)
class Claimed:
    """A message a worker holds the lease on, with what it needs to send it."""

    id: int
    key: str
    member_id: int
    call_id: int | None
    template: str
    params: dict[str, Any]
    attempts: int
    done_channels: frozenset[str]


def claim(ctx: Context, now: datetime, limit: int = 100, lease: timedelta = LEASE) -> list[Claimed]:
    """Lease up to `limit` messages due at `now` (skipping rows another worker
    holds), oldest first."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING,
                col(OutboxMessage.not_before) <= now,
                or_(col(OutboxMessage.next_attempt_at).is_(None),
                    col(OutboxMessage.next_attempt_at) <= now),
                or_(col(OutboxMessage.claimed_until).is_(None),
                    col(OutboxMessage.claimed_until) <= now),
            )
            .order_by(col(OutboxMessage.id))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        done: dict[int, set[str]] = {}
        for delivery in session.exec(
            select(Delivery).where(col(Delivery.message_id).in_([r.id for r in rows]))
        ):
            done.setdefault(delivery.message_id, set()).add(delivery.channel)
        claimed = []
        for row in rows:
            row.claimed_until = now + lease
            session.add(row)
            claimed.append(Claimed(row.id or 0, row.key, row.member_id, row.call_id, row.template,
                                   dict(row.params), row.attempts,
                                   frozenset(done.get(row.id or 0, set()))))
        session.commit()
        return claimed


def record_copy(
    ctx: Context, message_id: int, channel: str, now: datetime, platform_id: str | None = None
) -> None:
    """Record that `channel` has its copy of the message (idempotent)."""
    with session_scope(ctx.engine) as session:
        if session.get(Delivery, (message_id, channel)) is None:
            session.add(Delivery(message_id=message_id, channel=channel, delivered_at=now,
                                 platform_message_id=platform_id))
            session.commit()


def mark_delivered(ctx: Context, message_id: int, now: datetime) -> None:
    """Every channel of the member has the message."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING:
            return
        row.status = OutboxStatus.DELIVERED
        row.delivered_at = now
        row.claimed_until = None
        session.add(row)
        session.commit()


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s … capped at an hour."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 3600))


def mark_failed(
    ctx: Context,
    message_id: int,
    now: datetime,
    error: str,
    retry_after: float | None = None,
    permanent: bool = False,
) -> bool:
    """Schedule a retry (after `retry_after` seconds if the platform said so,
    else with backoff), or give up after `MAX_ATTEMPTS` or a permanent
    failure and report it. Returns True when the message was given up."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING:
            return False
        row.attempts += 1
        row.last_error = error[:2000]
        row.claimed_until = None
        if permanent or row.attempts >= MAX_ATTEMPTS:
            _give_up(session, row, now, error, REFUSED if permanent else KEPT_FAILING)
            session.commit()
            return True
        delay = timedelta(seconds=retry_after) if retry_after else backoff(row.attempts)
        row.next_attempt_at = now + delay
        session.add(row)
        session.commit()
        return False


def mark_unreachable(ctx: Context, message_id: int, now: datetime) -> None:
    """The member has no channel youhu can reach: report, don't drop."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING:
            return
        _give_up(session, row, now, "the member has no reachable channel", UNREACHABLE)
        session.commit()


def _give_up(session: Session, row: OutboxMessage, now: datetime, reason: str,
             why: str) -> None:
    """Mark the message undeliverable and tell the dispatchers: `why` is one
    of the reason codes (the notice says it in the reader's language), the
    call's number travels with it, `reason` is the platform's own words."""
    row.status = OutboxStatus.UNDELIVERABLE
    row.last_error = reason[:2000]
    row.claimed_until = None
    session.add(row)
    if row.template == "undeliverable":
        return  # a report that cannot be delivered is not reported again (no loop)
    member = session.get(Member, row.member_id)
    call = session.get(Call, row.call_id) if row.call_id is not None else None
    number = call.number if call is not None else row.params.get("number")
    for dispatcher in dispatchers(session):
        enqueue(session, f"undeliverable:{row.id}:{dispatcher.id}", dispatcher.id or 0,
                "undeliverable", now, call_id=row.call_id,
                member=member.name if member else str(row.member_id),
                about=row.template, why=why, number=number,
                reason=None if why == UNREACHABLE else reason[:200])


CARD_DAYS = 30  # how long a card's button labels are kept for its clicks


def remember_card(ctx: Context, task_id: str, labels: dict[str, str], now: datetime) -> None:
    """Keep the labels of a card's buttons (for the card's later clicks, on
    any worker); cards older than `CARD_DAYS` are forgotten now and then."""
    with session_scope(ctx.engine) as session:
        session.merge(SentCard(task_id=task_id, labels=labels, sent_at=now))
        if sum(map(ord, task_id)) % 100 == 0:  # about one card in a hundred
            session.execute(sa.delete(SentCard).where(
                col(SentCard.sent_at) < now - timedelta(days=CARD_DAYS)))
        session.commit()


def card_label(ctx: Context, task_id: str, key: str) -> str | None:
    """The label of the button `key` on the card `task_id`, if youhu sent it."""
    with session_scope(ctx.engine) as session:
        card = session.get(SentCard, task_id)
        return None if card is None else card.labels.get(key)

"""Delivering the outbox, as far as the database is concerned: claiming due
messages, recording each channel's copy, retrying with backoff, and
reporting what cannot be delivered to the dispatcher.

A claim is a lease (`claimed_until`) fenced by a token (`claim_token`): the
worker renews its leases while it works (so a message paced behind a busy
chat is never taken over by a second worker), and recording a copy or
settling the message succeeds only for the token's holder. A worker that
dies mid-delivery stops renewing, its lease runs out and another worker
takes the message up again, so nothing is lost; a worker that stops
cleanly releases its unsent claims at once.
A copy recorded on a channel (`Delivery`) is never sent again on that
channel. The one window left — a copy the platform accepted just before the
worker died, unrecorded — is the at-least-once edge every messaging system
has; the lease makes it one message at most, not a storm.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
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
# A claim's lease. Short because it is renewed every third of it while the
# worker holds the message (bot/leases.py): what it bounds is how long a
# crashed worker's messages wait before another worker takes them up.
LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Claimed:
    """A message a worker holds the lease on, with what it needs to send it.
    `token` fences the claim: every later step names it, and does nothing
    once another worker has taken the message over."""

    id: int
    key: str
    member_id: int
    call_id: int | None
    template: str
    params: dict[str, Any]
    attempts: int
    done_channels: frozenset[str]
    token: str = ""


def _due(now: datetime) -> list[Any]:
    return [
        OutboxMessage.status == OutboxStatus.PENDING,
        col(OutboxMessage.not_before) <= now,
        or_(col(OutboxMessage.next_attempt_at).is_(None),
            col(OutboxMessage.next_attempt_at) <= now),
        or_(col(OutboxMessage.claimed_until).is_(None),
            col(OutboxMessage.claimed_until) <= now),
    ]


def claim(ctx: Context, now: datetime, limit: int = 100, lease: timedelta = LEASE) -> list[Claimed]:
    """Lease up to `limit` messages due at `now`, each with a fresh token.

    Members interleave: one message a member a claim, the oldest first, and
    none for a member who has a message in flight (on any worker) — so one
    chat's backlog, paced at a message a second, never fills the pipeline,
    and a member's messages go out in order."""
    with session_scope(ctx.engine) as session:
        in_flight = (select(OutboxMessage.member_id).where(
            OutboxMessage.status == OutboxStatus.PENDING,
            col(OutboxMessage.claimed_until) > now))
        first_of_member = (
            select(sa.func.min(OutboxMessage.id))
            .where(*_due(now), col(OutboxMessage.member_id).not_in(in_flight))
            .group_by(col(OutboxMessage.member_id))
            .order_by(sa.func.min(OutboxMessage.id))
            .limit(limit)
        )
        candidates = [int(i) for i in session.exec(first_of_member) if i is not None]
        if not candidates:
            return []
        # One compare-and-set statement: a row another worker claimed since
        # (or is claiming: PostgreSQL re-checks the WHERE after its lock) is
        # not taken. The token is this claim's; (id, token) fences each row.
        token = secrets.token_hex(8)
        taken = session.execute(
            sa.update(OutboxMessage)
            .where(col(OutboxMessage.id).in_(candidates), *_due(now))
            .values(claimed_until=now + lease, claim_token=token)
            .returning(col(OutboxMessage.id))
        ).scalars().all()
        session.commit()
        if not taken:
            return []
        rows = session.exec(select(OutboxMessage).where(col(OutboxMessage.id).in_(taken))
                            .order_by(col(OutboxMessage.id))).all()
        done: dict[int, set[str]] = {}
        for delivery in session.exec(
            select(Delivery).where(col(Delivery.message_id).in_(taken))
        ):
            done.setdefault(delivery.message_id, set()).add(delivery.channel)
        return [Claimed(row.id or 0, row.key, row.member_id, row.call_id, row.template,
                        dict(row.params), row.attempts, frozenset(done.get(row.id or 0, set())),
                        token) for row in rows]


def _held(session: Session, message_id: int, token: str) -> OutboxMessage | None:
    """The message, locked, if `token` still holds it; else None."""
    row = session.get(OutboxMessage, message_id, with_for_update=True)
    if row is None or row.status is not OutboxStatus.PENDING or row.claim_token != token:
        return None
    return row


def renew(ctx: Context, held: Sequence[tuple[int, str]], now: datetime,
          lease: timedelta = LEASE) -> set[int]:
    """Extend the leases of the messages (id, token) a worker is still
    working on; returns the ids it still holds (a message whose lease ran out
    and was taken over by another worker is not among them)."""
    if not held:
        return set()
    kept: set[int] = set()
    with session_scope(ctx.engine) as session:
        for message_id, token in held:
            result = session.execute(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id,
                       col(OutboxMessage.claim_token) == token,
                       col(OutboxMessage.status) == OutboxStatus.PENDING)
                .values(claimed_until=now + lease))
            if getattr(result, "rowcount", 0):
                kept.add(message_id)
        session.commit()
    return kept


def release(ctx: Context, held: Sequence[tuple[int, str]]) -> int:
    """Give up claims without sending (a worker stopping): the messages are
    due again at once for any worker. Returns how many were released."""
    released = 0
    with session_scope(ctx.engine) as session:
        for message_id, token in held:
            result = session.execute(
                sa.update(OutboxMessage)
                .where(col(OutboxMessage.id) == message_id,
                       col(OutboxMessage.claim_token) == token,
                       col(OutboxMessage.status) == OutboxStatus.PENDING)
                .values(claimed_until=None, claim_token=None))
            released += getattr(result, "rowcount", 0) or 0
        session.commit()
    return released


def holds(ctx: Context, message_id: int, token: str) -> bool:
    """Whether `token` still holds the message (checked before each send)."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id)
        return (row is not None and row.status is OutboxStatus.PENDING
                and row.claim_token == token)


def record_copy(
    ctx: Context, message_id: int, channel: str, now: datetime, platform_id: str | None = None,
    token: str | None = None,
) -> bool:
    """Record that `channel` has its copy of the message (idempotent). Only
    the claim's holder may: returns False, recording nothing, for a worker
    whose claim was taken over (`token` None: no fencing, for tools)."""
    with session_scope(ctx.engine) as session:
        if token is not None and _held(session, message_id, token) is None:
            return False
        if session.get(Delivery, (message_id, channel)) is None:
            session.add(Delivery(message_id=message_id, channel=channel, delivered_at=now,
                                 platform_message_id=platform_id))
        session.commit()
        return True


def mark_delivered(ctx: Context, message_id: int, now: datetime,
                   token: str | None = None) -> bool:
    """Every channel of the member has the message (the holder only)."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING or (
                token is not None and row.claim_token != token):
            return False
        row.status = OutboxStatus.DELIVERED
        row.delivered_at = now
        row.claimed_until = None
        row.claim_token = None
        session.add(row)
        session.commit()
        return True


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
    token: str | None = None,
) -> bool:
    """Schedule a retry (after `retry_after` seconds if the platform said so,
    else with backoff), or give up after `MAX_ATTEMPTS` or a permanent
    failure and report it. Returns True when the message was given up."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING or (
                token is not None and row.claim_token != token):
            return False
        row.attempts += 1
        row.claim_token = None
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


def mark_unreachable(ctx: Context, message_id: int, now: datetime,
                     token: str | None = None) -> None:
    """The member has no channel youhu can reach: report, don't drop."""
    with session_scope(ctx.engine) as session:
        row = session.get(OutboxMessage, message_id, with_for_update=True)
        if row is None or row.status is not OutboxStatus.PENDING or (
                token is not None and row.claim_token != token):
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
    row.claim_token = None
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

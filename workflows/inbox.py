"""The inbox, as far as the database is concerned (the rows: `models.inbox`;
the worker: `bot.inbox`).

- `store` keeps a verified delivery before the platform is answered; a
  redelivery (same channel and platform id) is recognised and not stored
  again.
- `claim` takes, for each chat with nothing in hand, its oldest update that
  is not yet answered — so a chat's updates are handled one after the other,
  in the order they came, on whichever worker — with a fenced lease, which
  the worker `renew`s while it handles (a short lease: a crashed worker's
  updates are taken up again within seconds, a slow handler's never).
- `complete` is called *inside* the handling transaction (`models.atomic`):
  the row is marked done, with its replies, together with the effects.
- `answered` once the replies are sent; `failed` schedules a retry, and
  gives up after `MAX_ATTEMPTS`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, or_, select

from models import InboxStatus, InboxUpdate, session_scope
from workflows.context import Context

LEASE = timedelta(seconds=15)  # renewed every third of it while the update is in hand
MAX_ATTEMPTS = 5
RETRY_AFTER = timedelta(seconds=2)


@dataclass(frozen=True)
class Stored:
    """An update a worker holds: what it needs to handle or answer it."""

    id: int
    channel: str
    platform_id: str
    chat: str
    group: str | None
    payload: dict[str, Any]
    received_at: datetime
    done: bool  # handled already (after a crash before its replies went out)
    result: list[dict[str, Any]] | None
    attempts: int
    token: str


def store(ctx: Context, channel: str, platform_id: str, chat: str, payload: dict[str, Any],
          now: datetime, group: str | None = None) -> bool:
    """Keep a delivery; False if it was stored before (a redelivery)."""
    insert: Any
    if ctx.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table: Any = InboxUpdate.__table__  # type: ignore[attr-defined]
    with session_scope(ctx.engine) as session:
        inserted = session.execute(
            insert(table).values(channel=channel, platform_id=platform_id[:128],
                                 chat=chat[:128], group=group, payload=payload,
                                 received_at=now, status=InboxStatus.PENDING, attempts=0)
            .on_conflict_do_nothing(index_elements=["channel", "platform_id"])
            .returning(table.c.id)).scalar()
        session.commit()
        return inserted is not None


def _open(now: datetime) -> list[Any]:
    """Not yet answered, not given up, not held, due."""
    return [
        col(InboxUpdate.status) != InboxStatus.FAILED,
        col(InboxUpdate.answered_at).is_(None),
        or_(col(InboxUpdate.claimed_until).is_(None), col(InboxUpdate.claimed_until) <= now),
        or_(col(InboxUpdate.next_attempt_at).is_(None), col(InboxUpdate.next_attempt_at) <= now),
    ]


def claim(ctx: Context, channel: str, now: datetime, limit: int = 64,
          lease: timedelta = LEASE, chat: str | None = None) -> list[Stored]:
    """Lease the oldest open update of up to `limit` chats (or of `chat`
    only) that have nothing in hand on any worker (one compare-and-set
    UPDATE, as the outbox does)."""
    with session_scope(ctx.engine) as session:
        busy = select(InboxUpdate.chat).where(
            col(InboxUpdate.channel) == channel, col(InboxUpdate.answered_at).is_(None),
            col(InboxUpdate.status) != InboxStatus.FAILED,
            col(InboxUpdate.claimed_until) > now)
        which = [col(InboxUpdate.chat) == chat] if chat is not None else []
        # The oldest open update of each chat (retries included: a chat
        # waits for its first update's retry rather than skip ahead).
        firsts = (select(sa.func.min(InboxUpdate.id))
                  .where(col(InboxUpdate.channel) == channel,
                         col(InboxUpdate.status) != InboxStatus.FAILED,
                         col(InboxUpdate.answered_at).is_(None),
                         col(InboxUpdate.chat).not_in(busy), *which)
                  .group_by(col(InboxUpdate.chat))
                  .order_by(sa.func.min(InboxUpdate.id)).limit(limit))
        candidates = [int(i) for i in session.exec(firsts) if i is not None]
        if not candidates:
            return []
        token = secrets.token_hex(8)
        taken = session.execute(
            sa.update(InboxUpdate).where(col(InboxUpdate.id).in_(candidates), *_open(now))
            .values(claimed_until=now + lease, claim_token=token)
            .returning(col(InboxUpdate.id))).scalars().all()
        session.commit()
        if not taken:
            return []
        rows = session.exec(select(InboxUpdate).where(col(InboxUpdate.id).in_(taken))
                            .order_by(col(InboxUpdate.id))).all()
        return [Stored(row.id or 0, row.channel, row.platform_id, row.chat, row.group,
                       dict(row.payload), row.received_at, row.status is InboxStatus.DONE,
                       row.result, row.attempts, token) for row in rows]


def renew(ctx: Context, held: list[Stored], now: datetime,
          lease: timedelta = LEASE) -> set[int]:
    """Extend the leases of the updates a worker still holds; returns the ids
    it still holds (an update whose lease ran out and was taken over is not
    among them)."""
    if not held:
        return set()
    with session_scope(ctx.engine) as session:
        kept: set[int] = set()
        for item in held:
            kept.update(session.execute(
                sa.update(InboxUpdate).where(col(InboxUpdate.id) == item.id,
                                             col(InboxUpdate.claim_token) == item.token)
                .values(claimed_until=now + lease).returning(col(InboxUpdate.id))).scalars())
        session.commit()
        return kept


def later_in_group(ctx: Context, item: Stored) -> bool:
    """Whether a later update of the same group (album) is stored."""
    if item.group is None:
        return False
    with session_scope(ctx.engine) as session:
        return session.exec(select(InboxUpdate.id).where(
            col(InboxUpdate.channel) == item.channel, col(InboxUpdate.chat) == item.chat,
            col(InboxUpdate.group) == item.group, col(InboxUpdate.id) > item.id)).first() \
            is not None


def next_in_chat(ctx: Context, item: Stored) -> dict[str, Any] | None:
    """The payload of the update stored next after `item` in its chat."""
    with session_scope(ctx.engine) as session:
        row = session.exec(select(InboxUpdate).where(
            col(InboxUpdate.channel) == item.channel, col(InboxUpdate.chat) == item.chat,
            col(InboxUpdate.id) > item.id).order_by(col(InboxUpdate.id))).first()
        return dict(row.payload) if row is not None else None


def complete(ctx: Context, item: Stored, replies: list[dict[str, Any]], now: datetime) -> bool:
    """Mark `item` handled with its `replies` — called inside the handling
    transaction, so this commits with the effects. False (and the caller
    must roll back) if the claim is no longer this worker's."""
    with session_scope(ctx.engine) as session:
        # One compare-and-set statement (no read first): it takes the row's
        # lock and checks the claim at once.
        marked = session.execute(sa.update(InboxUpdate).where(
            col(InboxUpdate.id) == item.id, col(InboxUpdate.claim_token) == item.token,
            col(InboxUpdate.status) == InboxStatus.PENDING)
            .values(status=InboxStatus.DONE, handled_at=now, result=replies))
        session.commit()
        return bool(getattr(marked, "rowcount", 0))


def answered(ctx: Context, item: Stored, now: datetime) -> None:
    """The replies went out: the chat's next update may be taken."""
    with session_scope(ctx.engine) as session:
        session.execute(sa.update(InboxUpdate).where(
            col(InboxUpdate.id) == item.id, col(InboxUpdate.claim_token) == item.token)
            .values(answered_at=now, claimed_until=None, claim_token=None))
        session.commit()


def failed(ctx: Context, item: Stored, now: datetime, error: str) -> bool:
    """Handling (or answering) failed: retry shortly, or give up after
    `MAX_ATTEMPTS` (a handled update is then marked answered: its effects
    stand, its replies could not be sent). Returns True when given up."""
    with session_scope(ctx.engine) as session:
        row = session.get(InboxUpdate, item.id, with_for_update=True)
        if row is None or row.claim_token != item.token:
            return False
        row.attempts += 1
        row.last_error = error[:2000]
        row.claimed_until = None
        row.claim_token = None
        given_up = row.attempts >= MAX_ATTEMPTS
        if given_up and row.status is InboxStatus.DONE:
            row.answered_at = now
        elif given_up:
            row.status = InboxStatus.FAILED
        else:
            row.next_attempt_at = now + RETRY_AFTER * row.attempts
        session.add(row)
        session.commit()
        return given_up


def release(ctx: Context, held: list[Stored]) -> None:
    """A stopping worker's claims, due again at once for the next."""
    with session_scope(ctx.engine) as session:
        for item in held:
            session.execute(sa.update(InboxUpdate).where(
                col(InboxUpdate.id) == item.id, col(InboxUpdate.claim_token) == item.token)
                .values(claimed_until=None, claim_token=None))
        session.commit()

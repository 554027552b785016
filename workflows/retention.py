"""Forgetting what nobody needs any more, after a retention period (default
180 days): delivered or undeliverable outbox messages and their deliveries,
and the nudges of calls that ended.

Kept however old: calls, their event log (append-only; it holds the
supervision orders, accountability referrals and dossiers the reports and
the discipline commission read), ratings, requests, attachments, and every
outbox message still pending. A nudge row is what makes a ladder step happen
once, so only the nudges of calls that are over (closed or withdrawn before
the cut-off) go: no step can fall due on them again. Routine runs older than
the cut-off go too — the routine only ever looks at today and last month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from models import (
    Call,
    CallStatus,
    Delivery,
    Nudge,
    OutboxMessage,
    OutboxStatus,
    RoutineRun,
    session_scope,
)
from workflows.context import Context

DEFAULT_KEEP = timedelta(days=180)


@dataclass(frozen=True)
class Pruned:
    messages: int
    deliveries: int
    nudges: int
    routine_runs: int


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def prune_history(ctx: Context, now: datetime, keep: timedelta = DEFAULT_KEEP) -> Pruned:
    """Delete what is older than `now - keep` (see the module docstring), in
    one transaction. Safe to run from several workers at once."""
    if keep <= timedelta(0):
        raise ValueError("the retention must be positive")
    cutoff = now - keep
    with session_scope(ctx.engine) as session:
        old_messages = select(OutboxMessage.id).where(
            col(OutboxMessage.status) != OutboxStatus.PENDING,
            col(OutboxMessage.created_at) < cutoff,
        )
        deliveries = session.execute(
            sa.delete(Delivery).where(col(Delivery.message_id).in_(old_messages)))
        messages = session.execute(
            sa.delete(OutboxMessage).where(col(OutboxMessage.id).in_(old_messages)))
        ended = select(Call.id).where(
            col(Call.status).in_((CallStatus.CLOSED, CallStatus.WITHDRAWN)),
            col(Call.closed_at).is_not(None) & (col(Call.closed_at) < cutoff)
            | col(Call.closed_at).is_(None) & (col(Call.raised_at) < cutoff),
        )
        nudges = session.execute(sa.delete(Nudge).where(col(Nudge.call_id).in_(ended)))
        runs = session.execute(sa.delete(RoutineRun).where(col(RoutineRun.started_at) < cutoff))
        session.commit()
    return Pruned(_count(messages), _count(deliveries), _count(nudges), _count(runs))

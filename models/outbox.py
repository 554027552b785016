"""The outbox: every message youhu sends is first a row here, written in the
same transaction as the change that caused it, then delivered by `bot/`.

A message is addressed to a member, not to a chat: the deliverer sends it
through each channel the member has (one `Delivery` row per channel), so a
failure on WeCom is retried without sending the Telegram copy again.
`key` makes enqueueing idempotent: the same cause never queues twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import str_enum


class OutboxStatus(StrEnum):
    PENDING = "pending"  # waiting for its time (`not_before`) or a deliverer
    DELIVERED = "delivered"  # every channel of the member has it
    UNDELIVERABLE = "undeliverable"  # no channel, or kept failing: reported to the dispatcher


class OutboxMessage(SQLModel, table=True):
    """One message to one member: a template name and its parameters, rendered
    in the member's language when it is delivered."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True)
    template: str = Field(max_length=64)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    created_at: datetime
    not_before: datetime = Field(index=True)
    status: OutboxStatus = Field(
        default=OutboxStatus.PENDING, sa_type=str_enum(OutboxStatus), index=True
    )
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    # The claim's fencing token: only the worker holding it may record a copy,
    # renew the lease or settle the message (workflows.outbox).
    claim_token: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    delivered_at: datetime | None = None


class Delivery(SQLModel, table=True):
    """A message's copy on one channel, recorded once sent (never sent twice)."""

    message_id: int = Field(foreign_key="outboxmessage.id", primary_key=True)
    channel: str = Field(max_length=16, primary_key=True)
    delivered_at: datetime
    platform_message_id: str | None = Field(default=None, max_length=128)


class SentCard(SQLModel, table=True):
    """The buttons of an interactive card youhu sent (WeCom template cards),
    so a click can show the label pressed whichever process, before or after
    a restart, receives it. Kept for `CARD_DAYS` (workflows.outbox)."""

    task_id: str = Field(primary_key=True, max_length=128)
    labels: dict[str, str] = Field(default_factory=dict, sa_type=sa.JSON)  # key → label
    sent_at: datetime = Field(index=True)


class SendPace(SQLModel, table=True):
    """When the next send may go, shared by every worker of the bot: one row
    for a channel's overall limit, one per chat for the per-chat limit
    (bot.pace). `next_at` is seconds since the epoch."""

    key: str = Field(primary_key=True, max_length=64)
    next_at: float = 0.0

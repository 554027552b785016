"""The inbox: every update a platform delivers is first a row here, stored
before the platform is answered, then handled by `bot.inbox` — in order per
chat, marked done in the same transaction as its effects, its replies kept
with it until they are sent.

`(channel, platform_id)` is unique, so a redelivery is never handled twice;
a crash before the handling transaction commits leaves the row pending (it
is handled after the restart), a crash after it leaves the row done with
its replies unsent (they are sent after the restart, nothing is redone).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import str_enum


class InboxStatus(StrEnum):
    PENDING = "pending"  # stored, not yet handled
    DONE = "done"  # handled (its effects committed with it); `result` holds the replies
    FAILED = "failed"  # handling kept failing: given up, logged


class InboxUpdate(SQLModel, table=True):
    """One delivery from a platform, as it came (`payload`)."""

    __table_args__ = (sa.UniqueConstraint("channel", "platform_id", name="uq_inbox_delivery"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    platform_id: str = Field(max_length=128)
    chat: str = Field(max_length=128, index=True)
    # Updates answered together (a Telegram album): only the last one's replies go out.
    group: str | None = Field(default=None, max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    received_at: datetime
    status: InboxStatus = Field(default=InboxStatus.PENDING, sa_type=str_enum(InboxStatus),
                                index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    claimed_until: datetime | None = None
    claim_token: str | None = Field(default=None, max_length=32)
    handled_at: datetime | None = None
    result: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    answered_at: datetime | None = Field(default=None, index=True)
    last_error: str | None = Field(default=None, sa_type=sa.Text)

"""Conversation state kept in the database, apart from the calls themselves.

`Dialog` is which question the bot is waiting for in one chat, and the
half-filled answers (e.g. a call being raised). It is written at every step,
so a restart — or a second process taking the next message — continues where
the member was. `Invite` binds a chat identity to a member once. `HandledUpdate`
remembers which platform deliveries were already handled (platforms redeliver).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Dialog(SQLModel, table=True):
    """The open conversation of one chat on one channel (at most one)."""

    channel: str = Field(primary_key=True, max_length=16)
    chat: str = Field(primary_key=True, max_length=128)
    member_id: int = Field(foreign_key="member.id", index=True)
    flow: str = Field(max_length=32)
    step: str = Field(max_length=32)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    updated_at: datetime


class Invite(SQLModel, table=True):
    """A one-time code that binds whoever redeems it to `member_id`; it
    expires at `expires_at` and works once (`used_at`)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_by: int | None = Field(default=None, foreign_key="member.id")
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    used_channel: str | None = Field(default=None, max_length=16)


class HandledUpdate(SQLModel, table=True):
    """A platform delivery (Telegram update id, WeCom MsgId…) already handled."""

    channel: str = Field(primary_key=True, max_length=16)
    delivery_id: str = Field(primary_key=True, max_length=128)
    handled_at: datetime = Field(index=True)

"""Other systems that raise calls (Open311 GeoReport v2): their API keys and
the events they sent.

A key acts through a member of its own (`Member.system`, role caller, the
key's unit), so the event log and the lifecycle's caller rules hold for a
machine exactly as for a cadre. Only the SHA-256 of the key is stored.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class ApiKey(SQLModel, table=True):
    """One system's key. `items` is the catalog item codes it may raise calls
    for (None: every active item); `per_minute` bounds its bursts."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=48, unique=True, index=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    prefix: str = Field(max_length=16)  # shown by `youhu apikey list`, to tell keys apart
    unit_id: int = Field(foreign_key="unit.id")
    member_id: int = Field(foreign_key="member.id", unique=True)
    items: list[str] | None = Field(default=None, sa_type=sa.JSON)
    per_minute: int = 60
    created_at: datetime
    revoked_at: datetime | None = None


class SourceEvent(SQLModel, table=True):
    """An event a system sent (one POST that was accepted): the call it raised
    or added to. `(api_key_id, external_id)` is unique, which is what makes a
    retried POST return the same call instead of raising a second one."""

    __table_args__ = (
        sa.UniqueConstraint("api_key_id", "external_id", name="uq_source_event_external"),
        sa.Index("ix_source_event_key_received", "api_key_id", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    api_key_id: int = Field(foreign_key="apikey.id")
    external_id: str | None = Field(default=None, max_length=128)
    token: str = Field(max_length=48, unique=True, index=True)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True)
    added_to_existing: bool = False
    media_url: str | None = Field(default=None, max_length=2048)
    media_error: str | None = Field(default=None, max_length=32)
    received_at: datetime

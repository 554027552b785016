"""The dispatch board's logins: one-time links sent in chat, and the browser
sessions they start. Only SHA-256 digests of the secrets are stored, so a
copy of the database lets nobody in."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class BoardLogin(SQLModel, table=True):
    """A one-time login link: works once (`used_at`) before `expires_at`."""

    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=64, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class BoardSession(SQLModel, table=True):
    """A browser signed in to the board. `csrf_token` is the secret every form
    of this session carries; `revoked_at` ends it before `expires_at`."""

    id: int | None = Field(default=None, primary_key=True)
    token_digest: str = Field(max_length=64, unique=True, index=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: int | None = Field(default=None, foreign_key="member.id")

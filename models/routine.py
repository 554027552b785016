"""What the daily and monthly routine has done: one row per routine and day
(or month), so "is today's work done?" is one primary-key look-up rather than
a scan of the outbox, and a run cut short by a crash is finished later."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class RoutineRun(SQLModel, table=True):
    """One run of a routine (`digest`, `report`, `burden-report`, `calendar`, `prune`) for one `day`
    (an ISO date, or a month "2025-10" for the monthly report). Written when
    the run starts; `finished_at` is set once every recipient's message is
    queued. A row without `finished_at` is a run to redo: the recipients
    already queued are skipped by their outbox keys, the others get theirs."""

    routine: str = Field(primary_key=True, max_length=32)
    day: str = Field(primary_key=True, max_length=16)
    started_at: datetime
    finished_at: datetime | None = None
    recipients: int = 0

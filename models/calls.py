"""Calls and everything hanging off them: the departments taking part, the
attachments, the append-only event log, ratings and requests."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import str_enum


class CallStatus(StrEnum):
    """Where a call is in its lifecycle; changed only by `workflows.lifecycle`."""

    RAISED = "raised"
    PENDING_DISPATCH = "pending_dispatch"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    EXTENSION_REQUESTED = "extension_requested"
    RESOLVED = "resolved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


class Call(SQLModel, table=True):
    """A call for help from a town or village to a district department.

    `item_id` is None when the caller was not sure which item applies; the
    dispatcher then routes it. The three `*_due` deadlines are set on routing.
    """

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True, index=True)
    caller_id: int = Field(foreign_key="member.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="catalogitem.id")
    domain_id: int | None = Field(default=None, foreign_key="domain.id")
    lead_department_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    text: str = Field(sa_type=sa.Text)
    location_text: str | None = Field(default=None, max_length=512)
    latitude: float | None = None
    longitude: float | None = None
    status: CallStatus = Field(sa_type=str_enum(CallStatus), index=True)
    raised_at: datetime = Field(index=True)
    dispatched_at: datetime | None = None
    acknowledged_at: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    acknowledge_due: datetime | None = None
    respond_due: datetime | None = None
    resolve_due: datetime | None = None
    supervision_number: str | None = Field(default=None, max_length=32, unique=True)
    auto_closed: bool = False
    # The name of the system that raised the call (an Open311 API key's
    # name), kept as text so it outlives the key; None for a call from chat.
    source: str | None = Field(default=None, max_length=48)
    # When the escalation sweep should next look at this call (None: nothing
    # can fall due). Indexed, so a sweep reads the due calls, not all open ones.
    next_nudge_at: datetime | None = Field(default=None, index=True)


class ParticipantRole(StrEnum):
    LEAD = "lead"
    ASSISTING = "assisting"


class CallDepartment(SQLModel, table=True):
    """A department taking part in a call: the lead, and for a joint call the
    assisting departments. Each acknowledges; only the lead resolves."""

    call_id: int = Field(foreign_key="call.id", primary_key=True)
    department_id: int = Field(foreign_key="unit.id", primary_key=True, index=True)
    role: ParticipantRole = Field(sa_type=str_enum(ParticipantRole))
    acknowledged_at: datetime | None = None
    acknowledged_by: int | None = Field(default=None, foreign_key="member.id")


class AttachmentStage(StrEnum):
    RAISE = "raise"
    EVIDENCE = "evidence"


class Attachment(SQLModel, table=True):
    """A photo: the bytes are on disk under the media directory, named by their
    SHA-256; the database holds what they are and where they belong."""

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    sha256: str = Field(max_length=64, index=True)
    stage: AttachmentStage = Field(sa_type=str_enum(AttachmentStage))
    content_type: str = Field(max_length=64)
    size: int
    uploaded_by: int = Field(foreign_key="member.id")
    created_at: datetime


class Event(SQLModel, table=True):
    """One line of the append-only event log: what happened to a call, who did
    it, when. Rows are never updated or deleted (see `models.db`)."""

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    kind: str = Field(max_length=48)
    actor_id: int | None = Field(default=None, foreign_key="member.id")
    at: datetime
    from_status: CallStatus | None = Field(default=None, sa_type=str_enum(CallStatus))
    to_status: CallStatus | None = Field(default=None, sa_type=str_enum(CallStatus))
    note: str | None = Field(default=None, sa_type=sa.Text)
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)


class RatingLevel(StrEnum):
    """The caller's verdict; the score is what it counts for in evaluation."""

    SATISFIED = "satisfied"
    MOSTLY_SATISFIED = "mostly_satisfied"
    DISSATISFIED = "dissatisfied"

    @property
    def score(self) -> int:
        return {"satisfied": 100, "mostly_satisfied": 80, "dissatisfied": 0}[self.value]


class Rating(SQLModel, table=True):
    """The caller's rating of a closed call; one per call."""

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", unique=True)
    by_id: int = Field(foreign_key="member.id")
    level: RatingLevel = Field(sa_type=str_enum(RatingLevel))
    score: int
    comment: str | None = Field(default=None, sa_type=sa.Text)
    at: datetime


class RequestKind(StrEnum):
    EXTENSION = "extension"
    RETURN = "return"


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    #: Closed undecided because the call moved on without a decision: the
    #: dispatcher assigned it while its return was pending, or the caller
    #: withdrew it (`workflows.calls._shared.supersede_requests`).
    SUPERSEDED = "superseded"


class CallRequest(SQLModel, table=True):
    """A department's request the dispatcher decides: an extension of the
    resolve deadline by `days` working days, or the return of a misrouted call.
    `from_status` is where the call goes back to if the request is refused."""

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    kind: RequestKind = Field(sa_type=str_enum(RequestKind))
    department_id: int = Field(foreign_key="unit.id")
    requested_by: int = Field(foreign_key="member.id")
    days: int | None = None
    reason: str = Field(sa_type=sa.Text)
    from_status: CallStatus = Field(sa_type=str_enum(CallStatus))
    status: RequestStatus = Field(
        default=RequestStatus.PENDING, sa_type=str_enum(RequestStatus), index=True
    )
    created_at: datetime
    decided_by: int | None = Field(default=None, foreign_key="member.id")
    decided_at: datetime | None = None
    decision_note: str | None = Field(default=None, sa_type=sa.Text)


class Counter(SQLModel, table=True):
    """Named counters for readable numbers (call numbers per year, supervision
    orders per year), incremented atomically in the caller's transaction."""

    name: str = Field(primary_key=True, max_length=64)
    value: int = 0


class Nudge(SQLModel, table=True):
    """A reminder or escalation step recorded as done, once per call, clock
    (limit and its deadline: a new deadline starts a new ladder), step and
    repeat. The unique key is what makes a step happen exactly once even
    with several workers; `sent` is False for a step skipped as superseded
    (after downtime only the most advanced due step of a clock is sent)."""

    __table_args__ = (
        sa.UniqueConstraint("call_id", "limit", "clock_due", "step", "repeat",
                            name="uq_nudge_step"),
    )

    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True)
    limit: str = Field(max_length=16)
    clock_due: datetime
    step: str = Field(max_length=24)
    repeat: int = 0
    due_at: datetime
    done_at: datetime
    sent: bool = True

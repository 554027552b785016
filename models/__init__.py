"""SQLModel tables and the database session. Importing this package registers
every table on `SQLModel.metadata`."""

from models.board import BoardLogin, BoardSession
from models.burden import (
    DataRequest,
    DataRequestStatus,
    DataRequestTown,
    PlanFlag,
    PlanItem,
    PlanKind,
)
from models.calls import (
    Attachment,
    AttachmentStage,
    Call,
    CallDepartment,
    CallRequest,
    CallStatus,
    Counter,
    Event,
    Nudge,
    ParticipantRole,
    Rating,
    RatingLevel,
    RequestKind,
    RequestStatus,
)
from models.catalog import CatalogItem, Domain, ItemAssistingDepartment
from models.db import (
    atomic,
    make_engine,
    next_counter,
    session_scope,
    unit_of_work,
    upgrade_to_head,
)
from models.dialog import Dialog, HandledUpdate, Invite
from models.inbox import InboxStatus, InboxUpdate
from models.media import MediaStore
from models.org import CALLER_UNIT_KINDS, ChannelAccount, Locale, Member, Role, Unit, UnitKind
from models.outbox import Delivery, OutboxMessage, OutboxStatus, SendPace, SentCard
from models.routine import RoutineRun
from models.sources import ApiKey, SourceEvent

__all__ = [
    "CALLER_UNIT_KINDS",
    "ApiKey",
    "Attachment",
    "AttachmentStage",
    "BoardLogin",
    "BoardSession",
    "Call",
    "CallDepartment",
    "CallRequest",
    "CallStatus",
    "CatalogItem",
    "ChannelAccount",
    "Counter",
    "DataRequest",
    "DataRequestStatus",
    "DataRequestTown",
    "Delivery",
    "Dialog",
    "Domain",
    "Event",
    "HandledUpdate",
    "InboxStatus",
    "InboxUpdate",
    "Invite",
    "ItemAssistingDepartment",
    "Locale",
    "MediaStore",
    "Member",
    "Nudge",
    "OutboxMessage",
    "OutboxStatus",
    "ParticipantRole",
    "PlanFlag",
    "PlanItem",
    "PlanKind",
    "Rating",
    "RatingLevel",
    "RequestKind",
    "RequestStatus",
    "Role",
    "RoutineRun",
    "SendPace",
    "SentCard",
    "SourceEvent",
    "Unit",
    "UnitKind",
    "atomic",
    "make_engine",
    "next_counter",
    "session_scope",
    "unit_of_work",
    "upgrade_to_head",
]

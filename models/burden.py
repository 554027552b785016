"""The form-burden watch (填表报数): the annual plan of data requests,
inspections and assessments (年度督查检查考核计划), departments' data requests
to towns, and the towns' answers.

A `DataRequest` is what a department asks; one `DataRequestTown` per town
asked holds that town's answer. A request the department chose *not* to send,
because an earlier one already holds the data, is kept too (status `reused`):
it is the burden the watch avoided, and the report counts it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import str_enum


class PlanKind(StrEnum):
    """What a plan item approves."""

    DATA_REQUEST = "data_request"  # 数据报送
    INSPECTION = "inspection"  # 督查检查
    ASSESSMENT = "assessment"  # 考核


class PlanItem(SQLModel, table=True):
    """One line of a department's annual plan: `count` requests of this kind
    approved for `year`."""

    __table_args__ = (
        sa.UniqueConstraint("department_id", "year", "code", name="uq_planitem_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    department_id: int = Field(foreign_key="unit.id", index=True)
    year: int = Field(index=True)
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    kind: PlanKind = Field(sa_type=str_enum(PlanKind))
    count: int


class PlanFlag(StrEnum):
    """How a request stands against the plan."""

    IN_PLAN = "in_plan"
    NOT_IN_PLAN = "not_in_plan"  # no plan item named: 计划外
    OVER_COUNT = "over_count"  # the item's yearly count is used up: also 计划外


class DataRequestStatus(StrEnum):
    OPEN = "open"  # sent, towns answering
    CLOSED = "closed"  # every town answered
    REUSED = "reused"  # not sent: the department reused an earlier request's answers


class DataRequest(SQLModel, table=True):
    """A department's data request (数据报送) to towns.

    `fields` is a list of `{"name", "kind", "choices"}` (kind: number, text,
    choice, date, photo). `duplicate_of` is the earliest similar request that
    was shown to the department before it sent this one anyway; `reuse_of`
    the request whose answers it took instead of sending."""

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=32, unique=True, index=True)
    department_id: int = Field(foreign_key="unit.id", index=True)
    created_by: int = Field(foreign_key="member.id")
    title: str = Field(max_length=200)
    fields: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    plan_item_id: int | None = Field(default=None, foreign_key="planitem.id")
    plan_flag: PlanFlag = Field(sa_type=str_enum(PlanFlag))
    plan_approved_by: int | None = Field(default=None, foreign_key="member.id")
    plan_approved_at: datetime | None = None
    duplicate_of: int | None = Field(default=None, foreign_key="datarequest.id")
    reuse_of: int | None = Field(default=None, foreign_key="datarequest.id")
    status: DataRequestStatus = Field(sa_type=str_enum(DataRequestStatus), index=True)
    due_days: int
    created_at: datetime = Field(index=True)
    due_at: datetime | None = None
    # When the reminder sweep should next look at this request (None: nothing due).
    next_nudge_at: datetime | None = Field(default=None, index=True)

    @property
    def out_of_plan(self) -> bool:
        return self.plan_flag is not PlanFlag.IN_PLAN


class DataRequestTown(SQLModel, table=True):
    """One town asked by a request, and its answer once given. `values` maps
    field names to answers (a photo is its SHA-256 in the media store);
    `reused_from` is the earlier answer copied ("no change since last time")."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="datarequest.id", index=True)
    town_id: int = Field(foreign_key="unit.id", index=True)
    answered_at: datetime | None = None
    answered_by: int | None = Field(default=None, foreign_key="member.id")
    values: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    reused_from: int | None = Field(default=None, foreign_key="datarequesttown.id")

    __table_args__ = (
        sa.UniqueConstraint("request_id", "town_id", name="uq_datarequesttown"),
    )

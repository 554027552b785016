"""The call catalog (有呼必应专项清单): domains and the items a caller picks.

Limits are stored as text in the form `workflows.deadlines.Limit` parses
("15m", "5wd"), so a catalog reads the same in YAML, the database and reports.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class Domain(SQLModel, table=True):
    """One of the three domains (law enforcement, key work, emergency), with its
    escalation settings; `quiet_hours` None means nudges go out at any hour."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=128)
    emergency: bool = False
    supervise_after: str = Field(max_length=16)
    accountability_after: str = Field(max_length=16)
    quiet_hours: str | None = Field(default=None, max_length=16)


class CatalogItem(SQLModel, table=True):
    """A kind of call, routed to its lead department."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    domain_id: int = Field(foreign_key="domain.id", index=True)
    name: str = Field(max_length=128)
    lead_department_id: int = Field(foreign_key="unit.id")
    acknowledge_limit: str = Field(max_length=16)
    respond_limit: str = Field(max_length=16)
    resolve_limit: str = Field(max_length=16)
    active: bool = True
    # What other systems send with a call on it (Open311 attributes; see
    # `workflows.orgfile.Attribute`): code, description, datatype, required, values.
    attributes: list[dict[str, Any]] | None = Field(default=None, sa_type=sa.JSON)
    # Other words for what the item is about (摆摊, 小贩; drain), besides its
    # name: what a caller's description is matched on to suggest the item.
    keywords: list[str] | None = Field(default=None, sa_type=sa.JSON)


class ItemAssistingDepartment(SQLModel, table=True):
    """An assisting department of a joint item (联合呼叫)."""

    item_id: int = Field(foreign_key="catalogitem.id", primary_key=True)
    department_id: int = Field(foreign_key="unit.id", primary_key=True)

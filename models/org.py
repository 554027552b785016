"""The organisation: the unit tree (district → town/street → village, plus the
district's departments and offices) and the members who use the bot."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from models.types import str_enum


class UnitKind(StrEnum):
    """What a unit is; callers sit in towns, streets and villages."""

    DISTRICT = "district"
    TOWN = "town"
    STREET = "street"
    VILLAGE = "village"
    DEPARTMENT = "department"
    COMMAND_CENTRE = "command_centre"
    SUPERVISION = "supervision"


CALLER_UNIT_KINDS = frozenset({UnitKind.TOWN, UnitKind.STREET, UnitKind.VILLAGE})


class Role(StrEnum):
    """A member's role (see the brief's "Who uses it")."""

    CALLER = "caller"
    LIAISON = "liaison"
    HEAD = "head"
    DISPATCHER = "dispatcher"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Locale(StrEnum):
    ZH_HANS = "zh_Hans"
    ZH_HANT = "zh_Hant"
    EN = "en"


class Unit(SQLModel, table=True):
    """One node of the organisation; `parent_id` is the district for towns,
    departments and offices, and the town for villages."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=128)
    kind: UnitKind = Field(sa_type=str_enum(UnitKind))
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)


class Member(SQLModel, table=True):
    """A person who may use the bot, reachable on the channels they have a
    `ChannelAccount` on (Telegram, WeCom or both)."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=128)
    role: Role = Field(sa_type=str_enum(Role))
    unit_id: int = Field(foreign_key="unit.id", index=True)
    locale: Locale = Field(default=Locale.ZH_HANS, sa_type=str_enum(Locale))
    active: bool = True
    # A member that is another system acting through an API key (see
    # `models.sources`): it raises calls like a caller but is never messaged.
    system: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime


class ChannelAccount(SQLModel, table=True):
    """A member's account on one channel: the platform's id of the person (a
    Telegram user id, a WeCom userid), which the channel sends to and
    recognises the member by. One account is one member, and a member has
    at most one account per channel (`workflows.accounts` binds them)."""

    __table_args__ = (
        sa.UniqueConstraint("channel", "external_id", name="uq_channelaccount_external"),
        sa.UniqueConstraint("member_id", "channel", name="uq_channelaccount_member"),
    )

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="member.id", index=True)
    channel: str = Field(max_length=16)
    external_id: str = Field(max_length=64)

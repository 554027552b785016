"""Shared fixtures: an empty, migrated database per test — SQLite by default,
PostgreSQL when `YOUHU_TEST_DATABASE_URL` names one (`.ci/run` does both) —
and a small organisation to act in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from models import (
    CatalogItem,
    Domain,
    ItemAssistingDepartment,
    MediaStore,
    Member,
    Role,
    Unit,
    UnitKind,
    make_engine,
    upgrade_to_head,
)
from workflows.context import Context

POSTGRES_URL = os.environ.get("YOUHU_TEST_DATABASE_URL")
T0 = datetime(2025, 9, 30, 8, 50, tzinfo=UTC)  # 16:50 in Shanghai, the day before National Day


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per session: a template SQLite file, or the PostgreSQL schema."""
    if POSTGRES_URL:
        upgrade_to_head(POSTGRES_URL)
        return POSTGRES_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def db_url(_template: str, tmp_path: Path) -> str:
    """The URL of an empty, migrated database for this test."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        tables = ", ".join(
            f'"{t.name}"' for t in SQLModel.metadata.sorted_tables
        )
        with engine.begin() as connection:
            connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return POSTGRES_URL
    target = tmp_path / "youhu.db"
    shutil.copyfile(_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ctx(engine: Engine, tmp_path: Path) -> Context:
    return Context(engine=engine, media=MediaStore(tmp_path / "media"))


@dataclass(frozen=True)
class Org:
    """Ids of the small test organisation."""

    town: int
    village: int
    water: int
    housing: int
    urban: int
    caller: int
    other_caller: int
    water_liaison: int
    water_head: int
    housing_liaison: int
    urban_liaison: int
    dispatcher: int
    supervisor: int
    admin: int


@pytest.fixture
def org(engine: Engine) -> Org:
    """A district with one town and village, three departments, the two
    offices, a member per role, and a catalog with a joint and an emergency item."""
    with Session(engine) as session:

        def unit(code: str, kind: UnitKind, parent: int | None) -> int:
            row = Unit(code=code, name=code, kind=kind, parent_id=parent)
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

        def member(code: str, role: Role, unit_id: int) -> int:
            row = Member(code=code, name=code, role=role, unit_id=unit_id, created_at=T0)
            session.add(row)
            session.flush()
            assert row.id is not None
            return row.id

        district = unit("baiyun", UnitKind.DISTRICT, None)
        town = unit("taihe", UnitKind.TOWN, district)
        village = unit("taihe-dayuan", UnitKind.VILLAGE, town)
        water = unit("water", UnitKind.DEPARTMENT, district)
        housing = unit("housing", UnitKind.DEPARTMENT, district)
        urban = unit("urban", UnitKind.DEPARTMENT, district)
        centre = unit("command-centre", UnitKind.COMMAND_CENTRE, district)
        supervision = unit("supervision", UnitKind.SUPERVISION, district)
        ids = Org(
            town=town, village=village, water=water, housing=housing, urban=urban,
            caller=member("li", Role.CALLER, village),
            other_caller=member("wang", Role.CALLER, town),
            water_liaison=member("water-liaison", Role.LIAISON, water),
            water_head=member("water-head", Role.HEAD, water),
            housing_liaison=member("housing-liaison", Role.LIAISON, housing),
            urban_liaison=member("urban-liaison", Role.LIAISON, urban),
            dispatcher=member("dispatcher", Role.DISPATCHER, centre),
            supervisor=member("supervisor", Role.SUPERVISOR, supervision),
            admin=member("admin", Role.ADMIN, centre),
        )
        normal = Domain(code="enforcement", name="综合执法", supervise_after="1wd",
                        accountability_after="3wd", quiet_hours="22:00-07:00")
        emergency = Domain(code="emergency", name="应急处置", emergency=True,
                           supervise_after="30m", accountability_after="2h")
        session.add_all([normal, emergency])
        session.flush()
        drain = CatalogItem(code="drain", domain_id=normal.id or 0, name="排水",
                            lead_department_id=water, acknowledge_limit="1wd",
                            respond_limit="2wd", resolve_limit="5wd")
        joint = CatalogItem(code="illegal-building", domain_id=normal.id or 0, name="违建",
                            lead_department_id=urban, acknowledge_limit="1wd",
                            respond_limit="2wd", resolve_limit="10wd")
        flood = CatalogItem(code="flood", domain_id=emergency.id or 0, name="内涝",
                            lead_department_id=water, acknowledge_limit="15m",
                            respond_limit="1h", resolve_limit="8h")
        session.add_all([drain, joint, flood])
        session.flush()
        session.add(ItemAssistingDepartment(item_id=joint.id or 0, department_id=housing))
        session.commit()
    return ids


# Smallest valid images, for photo uploads.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@pytest.fixture
def unused_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of asking."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])

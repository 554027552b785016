"""Migrations that move data: c015 turns Member.telegram_id / wecom_userid into
ChannelAccount rows and back, keeping every binding — on SQLite, and on
PostgreSQL when `YOUHU_TEST_DATABASE_URL` names one (in a schema of its own,
so the shared test schema is left alone)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from models import ChannelAccount, make_engine
from models.db import alembic_config
from tests.conftest import POSTGRES_URL, T0, Org
from tests.test_handlers_chat import Chat
from workflows import accounts, invites
from workflows.context import Context
from workflows.errors import InvalidInput

SCHEMA = "youhu_migration_test"
BIG = 7_000_000_001  # a Telegram id past 32 bits
# code → (telegram_id, wecom_userid)
BINDINGS: dict[str, tuple[int | None, str | None]] = {
    "both": (BIG, "LiMing"),
    "telegram-only": (5550001, None),
    "wecom-only": (None, "WangFang"),
    "neither": (None, None),
}


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    engine = make_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        engine.dispose()


def members_at_d010(engine: sa.Engine) -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    tables = sa.MetaData()
    tables.reflect(engine, only=["unit", "member"])
    unit, member = tables.tables["unit"], tables.tables["member"]
    with engine.begin() as connection:
        unit_id = connection.execute(unit.insert().values(
            code="district", name="区", kind="district").returning(unit.c.id)).scalar_one()
        for code, (telegram_id, wecom_userid) in BINDINGS.items():
            connection.execute(member.insert().values(
                code=code, name=code, role="caller", unit_id=unit_id, locale="zh_Hans",
                telegram_id=telegram_id, wecom_userid=wecom_userid, active=True,
                created_at=now))


def columns(engine: sa.Engine, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns(table)}


def test_c015_keeps_every_binding_up_and_down(empty_url: str) -> None:
    config = alembic_config(empty_url)
    command.upgrade(config, "d010")
    engine = make_engine(empty_url)
    try:
        members_at_d010(engine)
        command.upgrade(config, "c015")
        assert not {"telegram_id", "wecom_userid"} & columns(engine, "member")
        with engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT m.code, a.channel, a.external_id FROM channelaccount a "
                "JOIN member m ON m.id = a.member_id")).all()
        assert sorted(tuple(r) for r in rows) == sorted(
            [("both", "telegram", str(BIG)), ("both", "wecom", "LiMing"),
             ("telegram-only", "telegram", "5550001"), ("wecom-only", "wecom", "WangFang")])

        command.downgrade(config, "d010")
        assert "channelaccount" not in sa.inspect(engine).get_table_names()
        with engine.connect() as connection:
            back = connection.execute(sa.text(
                "SELECT code, telegram_id, wecom_userid FROM member")).all()
        assert {code: (t, w) for code, t, w in back} == BINDINGS

        command.upgrade(config, "head")  # and up again, to whatever follows
        with engine.connect() as connection:
            count = connection.execute(sa.text("SELECT count(*) FROM channelaccount"))
            assert count.scalar_one() == 4
            # Foreign keys are enforced again after the migration (SQLite).
            if engine.dialect.name == "sqlite":
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def test_one_telegram_account_is_one_member(ctx: Context, org: Org) -> None:
    """The table refuses a second member on one account (whatever writes it),
    and `accounts.bind` says why before the database has to."""
    with Session(ctx.engine) as session:
        accounts.bind(session, org.caller, "telegram", 5550001)
        session.commit()
    with Session(ctx.engine) as session:
        with pytest.raises(InvalidInput) as refused:
            accounts.bind(session, org.other_caller, "telegram", "5550001")
        assert refused.value.params["reason"] == "already_bound"
        session.add(ChannelAccount(member_id=org.other_caller, channel="telegram",
                                   external_id="5550001"))
        with pytest.raises(IntegrityError):
            session.commit()
    # A member has one account per channel: binding anew replaces the old one.
    with Session(ctx.engine) as session:
        accounts.bind(session, org.caller, "telegram", 5550009)
        session.commit()
    assert accounts.accounts_of(ctx, org.caller) == {"telegram": "5550009"}
    assert accounts.member_by_account(ctx, "telegram", "5550001") is None


def test_two_invites_redeemed_from_one_account_at_once_get_a_clear_answer(
        ctx: Context, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check before binding cannot see a binding another worker is
    committing at that moment; the constraint catches it, and the person
    hears that the account belongs to someone else, not an internal error."""
    Chat(ctx, "5550004", channel="telegram").send(
        f"/start {invites.create_invite(ctx, 'li', None, T0).code}")
    # As if the other redemption had not committed yet when this one checked.
    monkeypatch.setattr(accounts, "holder", lambda *_args: None)
    phone = Chat(ctx, "5550004", channel="telegram")
    phone.send(f"/start {invites.create_invite(ctx, 'wang', None, T0).code}")
    assert "已绑定其他人员" in phone.text
    assert accounts.accounts_of(ctx, org.other_caller) == {}
    assert accounts.account_of(ctx, org.caller, "telegram") == "5550004"

"""Registering: an admin issues a one-time invite, the person redeems it with
/start CODE and is bound to their chat identity; used, expired and unknown
codes are refused; only admins invite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from models import Invite
from tests.conftest import T0, Org
from tests.test_handlers_chat import Chat
from workflows import accounts, invites
from workflows.context import Context
from workflows.errors import NotAllowed, NotFound


def code_from(text: str) -> str:
    return text.split("/start ")[-1].strip()


def account(ctx: Context, member_id: int, channel: str = "telegram") -> str | None:
    return accounts.account_of(ctx, member_id, channel)


def test_invite_then_start_binds_the_telegram_account(ctx: Context, org: Org) -> None:
    admin = Chat(ctx, "admin")
    admin.send("/invite li")
    code = code_from(admin.text)
    assert len(code) == invites.CODE_LENGTH and "邀请码" in admin.text

    phone = Chat(ctx, "5550001", channel="telegram")
    phone.send("/call")
    assert "仅供已登记" in phone.text  # not yet
    phone.send(f"/start {code.lower()}")
    assert "欢迎" in phone.text and "li" in phone.text
    assert account(ctx, org.caller) == "5550001"
    phone.send("/call")
    assert "发生了什么" in phone.text

    other = Chat(ctx, "5550002", channel="telegram")
    other.send(f"/start {code}")
    assert "已被使用" in other.text
    assert account(ctx, org.caller) == "5550001"


def test_wecom_binding_and_the_console_only_uses_the_code(ctx: Context, org: Org) -> None:
    code = invites.create_invite(ctx, "water-liaison", None, T0).code
    Chat(ctx, "ZhangSan", channel="wecom").send(f"/start {code}")
    assert account(ctx, org.water_liaison, "wecom") == "ZhangSan"

    code = invites.create_invite(ctx, "wang", None, T0).code
    console = Chat(ctx, "wang")
    console.send(f"/start {code}")
    assert "欢迎" in console.text
    with Session(ctx.engine) as session:
        invite = session.exec(select(Invite).where(Invite.code == code)).one()
    assert invite.used_channel == "console" and invite.used_at is not None
    assert account(ctx, org.other_caller) is None


def test_expired_and_unknown_codes_are_refused(ctx: Context, org: Org) -> None:
    code = invites.create_invite(ctx, "li", None, T0, hours=1).code
    late = Chat(ctx, "5550003", channel="telegram", now=T0 + timedelta(hours=2))
    late.send(f"/start {code}")
    assert "已过期" in late.text
    late.language = "en"
    late.send("/start NOSUCHCODE")
    assert "not valid" in late.text
    assert account(ctx, org.caller) is None


def test_an_account_bound_to_someone_else_is_not_rebound(ctx: Context, org: Org) -> None:
    Chat(ctx, "5550004", channel="telegram").send(
        f"/start {invites.create_invite(ctx, 'li', None, T0).code}")
    phone = Chat(ctx, "5550004", channel="telegram")
    phone.send(f"/start {invites.create_invite(ctx, 'wang', None, T0).code}")
    assert "已绑定其他人员" in phone.text
    assert account(ctx, org.other_caller) is None


def test_only_admins_invite(ctx: Context, org: Org) -> None:
    dispatcher = Chat(ctx, "dispatcher")
    dispatcher.send("/invite li")
    assert "只有管理员" in dispatcher.text
    admin = Chat(ctx, "admin")
    admin.send("/invite")
    assert "用法" in admin.text
    admin.send("/invite nobody")
    assert "nobody" in admin.text
    with pytest.raises(NotAllowed):
        invites.create_invite(ctx, "li", org.dispatcher, T0)
    with pytest.raises(NotFound):
        invites.create_invite(ctx, "nobody", None, T0)

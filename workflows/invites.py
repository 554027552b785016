"""Invites: how a person's chat identity is bound to a member.

An admin issues a one-time code for a member (`youhu invite`, or `/invite`
in chat); the person sends `/start CODE` on Telegram or WeCom and from then
on that platform account acts as the member. A code works once and expires.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models import Invite, Member, Role, unit_of_work
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound, WrongState

CHANNELS = frozenset({"telegram", "wecom", "console"})
DEFAULT_HOURS = 72
MAX_HOURS = 24 * 30
# No 0/O, 1/I/L: codes are read aloud and typed on phones.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code: str) -> str:
    return code.strip().upper()


def create_invite(
    ctx: Context, member_code: str, by: int | None, now: datetime, hours: int = DEFAULT_HOURS
) -> Invite:
    """An admin (`by`; None for the operator at the command line) invites the
    member `member_code`. The code is valid for `hours` hours."""
    if not 1 <= hours <= MAX_HOURS:
        raise InvalidInput(
            f"an invite lasts 1 to {MAX_HOURS} hours", reason="bad_hours", limit=MAX_HOURS
        )
    with unit_of_work(ctx.engine) as session:
        if by is not None:
            admin = session.get(Member, by)
            if admin is None or not admin.active or admin.role is not Role.ADMIN:
                raise NotAllowed("only an admin may invite", action="invite")
        member = session.exec(select(Member).where(Member.code == member_code.strip())).first()
        if member is None:
            raise NotFound(f"no member {member_code!r}", what="member", code=member_code)
        if not member.active:
            raise NotAllowed(f"member {member.code} is not active", action="invite")
        invite = Invite(
            code=_unused_code(session),
            member_id=member.id or 0,
            created_by=by,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
        session.add(invite)
        session.commit()
        return invite


def _unused_code(session: Session) -> str:
    while True:
        code = new_code()
        if session.exec(select(Invite.id).where(Invite.code == code)).first() is None:
            return code


def redeem_invite(
    ctx: Context, code: str, channel: str, platform_id: str, now: datetime
) -> Member:
    """Whoever sends `/start CODE` on `channel` becomes the invited member:
    their Telegram id or WeCom user id is bound to the member (replacing an
    old binding of that member). On the console nothing is bound; the code is
    only checked and used up. A used, expired or unknown code is refused."""
    if channel not in CHANNELS:
        raise InvalidInput(f"unknown channel {channel!r}", reason="bad_channel")
    with unit_of_work(ctx.engine) as session:
        invite = session.exec(
            select(Invite).where(Invite.code == normalise_code(code)).with_for_update()
        ).first()
        if invite is None:
            raise NotFound(f"no invite {code!r}", what="invite")
        if invite.used_at is not None:
            raise WrongState("the invite was already used", reason="invite_used")
        if invite.expires_at <= now:
            raise WrongState("the invite has expired", reason="invite_expired")
        member = session.get(Member, invite.member_id)
        if member is None or not member.active:
            raise NotAllowed("the invited member is not active", action="start")
        if channel == "telegram":
            try:
                telegram_id = int(platform_id)
            except ValueError as error:
                raise InvalidInput("not a Telegram user id", reason="bad_platform_id") from error
            other = session.exec(select(Member).where(Member.telegram_id == telegram_id)).first()
            _refuse_if_someone_else(member, other)
            member.telegram_id = telegram_id
        elif channel == "wecom":
            other = session.exec(select(Member).where(Member.wecom_userid == platform_id)).first()
            _refuse_if_someone_else(member, other)
            member.wecom_userid = platform_id
        invite.used_at = now
        invite.used_channel = channel
        session.add(invite)
        session.add(member)
        session.commit()
        return member


def _refuse_if_someone_else(member: Member, holder: Member | None) -> None:
    """One platform account is one member: an account already acting as
    someone else must not silently become a second person."""
    if holder is not None and holder.id != member.id:
        raise InvalidInput("this account already belongs to another member",
                           reason="already_bound")

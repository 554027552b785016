"""Invites: how a person's chat identity is bound to a member.

An admin issues a one-time code for a member (`youhu invite`, or `/invite`
in chat); the person sends `/start CODE` on Telegram or WeCom and from then
on that platform account acts as the member. A code works once and expires.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from models import Invite, Member, Role, unit_of_work
from workflows import accounts
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound, WrongState

CHANNELS = accounts.BOUND_CHANNELS | {accounts.CONSOLE}
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
    their Telegram id or WeCom user id is bound to the member
    (`workflows.accounts`, replacing an old binding of that member there).
    On the console nothing is bound; the code is only checked and used up.
    An account already bound to someone else is refused (`already_bound`);
    so is a used, expired or unknown code."""
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
        invite.used_at = now
        invite.used_channel = channel
        session.add(invite)
        try:
            if channel in accounts.BOUND_CHANNELS:
                accounts.bind(session, member.id or 0, channel, platform_id)
            session.commit()
        except IntegrityError as error:
            # Two invites redeemed at once from one account, for two members:
            # the second to commit meets the one-account-one-member constraint.
            raise InvalidInput("this account already belongs to another member",
                               reason="already_bound") from error
        return member

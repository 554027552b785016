"""Channel accounts: which platform account acts as which member.

A member is reachable on a channel when they have a `ChannelAccount` there
(a Telegram user id, a WeCom userid — the channel's `external_id`). One
account is one member, and a member has at most one account per channel;
binding a member anew on a channel replaces their old account there. The
console is not a bound channel: whoever types there names the member by
code (`youhu console --as CODE`).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from models import ChannelAccount, Member, session_scope
from workflows.context import Context
from workflows.errors import InvalidInput

TELEGRAM = "telegram"
WECOM = "wecom"
CONSOLE = "console"
BOUND_CHANNELS = frozenset({TELEGRAM, WECOM})


def external_id(channel: str, platform_id: str | int) -> str:
    """The account id as stored: a Telegram user id is a (positive) integer,
    kept as its decimal string; a WeCom userid as given, without blanks."""
    if channel not in BOUND_CHANNELS:
        raise InvalidInput(f"no accounts on channel {channel!r}", reason="bad_channel")
    text = str(platform_id).strip()
    if channel == TELEGRAM and not (text.isdigit() and int(text) > 0):
        raise InvalidInput("not a Telegram user id", reason="bad_platform_id")
    if not text or len(text) > 64:
        raise InvalidInput("not a WeCom userid", reason="bad_platform_id")
    return str(int(text)) if channel == TELEGRAM else text


def holder(session: Session, channel: str, platform_id: str | int) -> Member | None:
    """The member (active or not) an account is bound to, in `session`."""
    try:
        key = external_id(channel, platform_id)
    except InvalidInput:
        return None
    return session.exec(
        select(Member).join(ChannelAccount, col(ChannelAccount.member_id) == Member.id)
        .where(ChannelAccount.channel == channel, ChannelAccount.external_id == key)
    ).first()


def member_by_account(ctx: Context, channel: str, platform_id: str) -> Member | None:
    """The active member behind a platform account (on the console: the
    member with that code). None for a stranger."""
    with session_scope(ctx.engine) as session:
        if channel == CONSOLE:
            member = session.exec(select(Member).where(Member.code == platform_id)).first()
        else:
            member = holder(session, channel, platform_id)
        return member if member is not None and member.active else None


def accounts_of(ctx: Context, member_id: int) -> dict[str, str]:
    """The member's accounts: channel → external id."""
    with session_scope(ctx.engine) as session:
        return account_map(session, member_id)


def account_map(session: Session, member_id: int) -> dict[str, str]:
    """`accounts_of`, in `session`."""
    rows = session.exec(select(ChannelAccount).where(ChannelAccount.member_id == member_id))
    return {row.channel: row.external_id for row in rows}


def account_of(ctx: Context, member_id: int, channel: str) -> str | None:
    """The member's account on `channel`, if any."""
    return accounts_of(ctx, member_id).get(channel)


def bind(session: Session, member_id: int, channel: str, platform_id: str | int) -> None:
    """Bind the account to the member in `session` (the caller commits),
    replacing the member's old account on that channel. An account that
    already acts as someone else is refused: it must not silently become
    a second person (unbind it there first)."""
    key = external_id(channel, platform_id)
    other = holder(session, channel, key)
    if other is not None and other.id != member_id:
        raise InvalidInput("this account already belongs to another member",
                           reason="already_bound")
    if other is not None:
        return
    unbind(session, member_id, channel)
    session.add(ChannelAccount(member_id=member_id, channel=channel, external_id=key))
    session.flush()


def unbind(session: Session, member_id: int, channel: str) -> bool:
    """Remove the member's account on `channel` (in `session`); False if none."""
    row = session.exec(select(ChannelAccount).where(
        ChannelAccount.member_id == member_id, ChannelAccount.channel == channel)).first()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


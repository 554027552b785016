"""Who may use the dispatch board, and how a browser signs in to it.

Permissions: every board check asks `may(member, what)`, the list of calls
`call_scope(member)` and the figures `report_scope(member)`; all three only
translate the board's questions into the one policy, `workflows.access`.

Login without passwords: `/board` in chat creates a one-time link
(`issue_link`). Its token is 256 random bits, sent only in the member's own
chat and stored only as its SHA-256 digest: unguessable, unforgeable without
the database (which holds no usable token either), single use and valid for
`LINK_LIFETIME`. Redeeming it (`redeem_link`) marks it used in the same
statement that checks it, so two tabs opening the link at once get one
session between them. A session lasts `SESSION_LIFETIME` from login, carries
its own CSRF token, and ends at logout, at revocation by an admin
(`revoke_sessions`), or as soon as its member is deactivated or loses a
board role.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import col, select

from models import BoardLogin, BoardSession, Member, Role, Unit, session_scope
from workflows import access
from workflows.context import Context
from workflows.errors import NotAllowed, NotFound, WrongState

LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=8)


class BoardAction(StrEnum):
    """What a member may ask to do on the board, each answered by the one
    policy (`workflows.access`)."""

    LOG_IN = "board.log_in"
    READ_ALL_CALLS = "board.read_all_calls"  # every call, not only the own department's
    DISPATCH = "board.dispatch"  # assign calls, decide extensions and returns
    REVOKE_SESSIONS = "board.revoke_sessions"


_POLICY: dict[BoardAction, access.Permission | access.Command] = {
    BoardAction.LOG_IN: access.Command.BOARD,
    BoardAction.READ_ALL_CALLS: access.Permission.READ_ALL_CALLS,
    # /assign, /approve and /refuse are all this permission in the policy.
    BoardAction.DISPATCH: access.Permission.DECIDE_REQUESTS,
    BoardAction.REVOKE_SESSIONS: access.Permission.REVOKE_BOARD_SESSIONS,
}


def may(member: Member, what: BoardAction) -> bool:
    """Whether `member` may do `what` on the board: the command centre, the
    supervision office, department heads and admins log in; callers and
    liaisons do not (they have the chat). Only the command centre dispatches."""
    return member.active and access.may(access.Actor.of(member), _POLICY[what])


@dataclass(frozen=True)
class CallScope:
    """Which calls a member sees: all of them, or those a department takes
    part in (lead or assisting), which is what `access.Permission.READ_CALL`
    grants a head. `actor` is asked again for each call opened."""

    actor: access.Actor
    department_id: int | None  # None: every call

    @property
    def everything(self) -> bool:
        return self.department_id is None


def call_scope(member: Member) -> CallScope:
    """A head sees the calls their department leads or assists; the command
    centre, the supervision office and admins see every call. Anyone else
    is refused (they cannot log in in the first place)."""
    actor = access.Actor.of(member)
    if may(member, BoardAction.READ_ALL_CALLS):
        return CallScope(actor, None)
    if may(member, BoardAction.LOG_IN):
        return CallScope(actor, member.unit_id)
    raise NotAllowed(f"{member.code} may not read calls on the board", action="board")


def report_scope(member: Member) -> int | None:
    """Whose figures `member` may read on the board: None for the district's
    (every department), or their own department's id. Refused otherwise."""
    actor = access.Actor.of(member)
    if member.active and access.may(actor, access.Permission.READ_DISTRICT_REPORT):
        return None
    if member.active and access.may(actor, access.Permission.READ_DEPARTMENT_REPORT,
                                    department_id=member.unit_id):
        return member.unit_id
    raise NotAllowed(f"{member.code} may not read the figures", action="report")


# --- login links and sessions -----------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(ctx: Context, member_id: int, now: datetime) -> str:
    """A one-time login token for `member_id`, valid for `LINK_LIFETIME`.
    Refused to anybody who may not log in to the board."""
    with session_scope(ctx.engine) as session:
        member = session.get(Member, member_id)
        if member is None:
            raise NotFound(f"no member {member_id}", what="member")
        if not may(member, BoardAction.LOG_IN):
            raise NotAllowed(f"{member.code} may not use the board", action="board")
        token = secrets.token_urlsafe(32)
        session.add(BoardLogin(token_digest=_digest(token), member_id=member_id,
                               created_at=now, expires_at=now + LINK_LIFETIME))
        session.commit()
        return token


@dataclass(frozen=True)
class NewSession:
    """What the browser is given at login: the cookie's value and the member."""

    token: str
    member_id: int
    expires_at: datetime


def redeem_link(ctx: Context, token: str, now: datetime) -> NewSession:
    """Trade a login token for a session. Refused (WrongState with `reason`
    `link_used` / `link_expired`, NotFound for an unknown token) unless the
    token is unused and unexpired and its member may still log in."""
    digest = _digest(token)
    with session_scope(ctx.engine) as session:
        login = session.exec(select(BoardLogin).where(BoardLogin.token_digest == digest)).first()
        if login is None:
            raise NotFound("no such login link", what="link")
        # Check and spend in one statement: of two simultaneous requests with
        # the same link, exactly one updates the row.
        table = BoardLogin.__table__  # type: ignore[attr-defined]
        spent = session.execute(
            sa.update(table)
            .where(table.c.id == login.id, table.c.used_at.is_(None),
                   table.c.expires_at > now)
            .values(used_at=now)
        )
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()  # expires `login`: the next read is the row as it is now
            used = login.used_at is not None
            raise WrongState("the login link was already used" if used
                             else "the login link has expired",
                             reason="link_used" if used else "link_expired")
        member = session.get(Member, login.member_id)
        if member is None or not may(member, BoardAction.LOG_IN):
            session.rollback()
            raise NotAllowed("this member may not use the board", action="board")
        session_token = secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        session.add(BoardSession(token_digest=_digest(session_token), member_id=member.id or 0,
                                 csrf_token=secrets.token_urlsafe(32), created_at=now,
                                 expires_at=expires))
        session.commit()
        return NewSession(session_token, member.id or 0, expires)


@dataclass(frozen=True)
class SignedIn:
    """The member behind a valid session cookie, and the session's CSRF token."""

    session_id: int
    member: Member
    csrf_token: str

    def csrf_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(),
                                                         self.csrf_token.encode())


def signed_in(ctx: Context, token: str | None, now: datetime) -> SignedIn | None:
    """The session of a cookie, or None when there is none, it expired, was
    revoked, or its member may no longer log in."""
    if not token:
        return None
    with session_scope(ctx.engine) as session:
        row = session.exec(
            select(BoardSession).where(BoardSession.token_digest == _digest(token))
        ).first()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        member = session.get(Member, row.member_id)
        if member is None or not may(member, BoardAction.LOG_IN):
            return None
        return SignedIn(row.id or 0, member, row.csrf_token)


def log_out(ctx: Context, session_id: int, now: datetime) -> None:
    """End one session (the member's own logout)."""
    with session_scope(ctx.engine) as session:
        row = session.get(BoardSession, session_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = now
            row.revoked_by = row.member_id
            session.add(row)
            session.commit()


@dataclass(frozen=True)
class SessionInfo:
    """A live session, as an admin's list shows it."""

    id: int
    member_code: str
    member_name: str
    role: Role
    unit_name: str
    created_at: datetime
    expires_at: datetime


def live_sessions(ctx: Context, now: datetime) -> list[SessionInfo]:
    """Every session not ended yet, oldest first."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(BoardSession, Member, Unit)
            .join(Member, col(Member.id) == col(BoardSession.member_id))
            .join(Unit, col(Unit.id) == col(Member.unit_id))
            .where(col(BoardSession.revoked_at).is_(None), col(BoardSession.expires_at) > now)
            .order_by(col(BoardSession.id))
        ).all()
        return [SessionInfo(s.id or 0, m.code, m.name, m.role, u.name, s.created_at,
                            s.expires_at) for s, m, u in rows]


def revoke_sessions(ctx: Context, member_code: str | None, by: int | None,
                    now: datetime) -> int:
    """End every live session of `member_code` (all members' when None) and
    spend their unused login links; returns how many sessions ended. `by` is
    the admin (None for the operator at the command line)."""
    with session_scope(ctx.engine) as session:
        if by is not None:
            admin = session.get(Member, by)
            if admin is None or not may(admin, BoardAction.REVOKE_SESSIONS):
                raise NotAllowed("only an admin may revoke board sessions", action="revoke")
        sessions = select(BoardSession).where(col(BoardSession.revoked_at).is_(None),
                                              col(BoardSession.expires_at) > now)
        links = select(BoardLogin).where(col(BoardLogin.used_at).is_(None))
        if member_code is not None:
            member = session.exec(select(Member).where(Member.code == member_code)).first()
            if member is None:
                raise NotFound(f"no member {member_code!r}", what="member", code=member_code)
            sessions = sessions.where(BoardSession.member_id == member.id)
            links = links.where(BoardLogin.member_id == member.id)
        ended = 0
        for row in session.exec(sessions):
            row.revoked_at, row.revoked_by = now, by
            session.add(row)
            ended += 1
        for link in session.exec(links):
            link.used_at = now
            session.add(link)
        session.commit()
        return ended


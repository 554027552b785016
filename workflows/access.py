"""Who may do what — the one policy every surface asks.

Every permission youhu has is answered here, and nowhere else: the chat
handlers, the use cases in `workflows.calls`, and any new surface (the web
dispatch board, the Open311 API, the reports) ask the same two functions.

How a surface asks::

    from workflows import access
    from workflows.lifecycle import Action

    actor = access.actor(ctx, member_id)        # NotFound / NotAllowed (inactive)
    # … or, inside a unit of work: access.actor_in(session, member_id)

    access.may(actor, access.Permission.READ_ALL_CALLS)          # -> bool
    access.may(actor, access.Command.ASSIGN)                     # a command
    access.may(actor, access.Permission.READ_CALL, view)         # one call
    access.may(actor, Action.ACKNOWLEDGE, view)                  # a transition, now
    access.may(actor, access.Permission.READ_DEPARTMENT_REPORT,
               department_id=unit_id)
    access.require(actor, Action.ACKNOWLEDGE, view)   # raises NotAllowed / WrongState
    select(Call).where(access.readable_calls(actor))  # READ_CALL as a where-clause

`what` is one of three things:

- a lifecycle `Action`: allowed when the actor is one of the transition's
  parties (`workflows.lifecycle.TRANSITIONS`) for *this* call **and** the call
  is in one of its source states. `require` raises `NotAllowed` for the first
  and `WrongState` for the second (so "already acknowledged" is told apart
  from "not your department"). System actions (route, auto-close) are never
  allowed to a member.
- a `Permission` (reading): a call, all calls, a department's report, the
  district's report, raising a call.
- a `Command` of the chat (and of the board/API that mirrors it): `/stats`,
  `/overdue`, `/assign`… each defined in terms of the permissions above, so
  /help, the command menu and the handlers list and check the same thing.

The call may be anything with the attributes of `CallFacts` — the ORM row is
not enough (it does not know its assisting departments): use
`facts(session, call)`, or the `workflows.queries.CallView` a query returned.
Nothing here touches the database except `actor`, `actor_in` and `facts`
(`readable_calls` only builds a condition; the caller runs the query).

Who is what (the only place these role sets are written):

- dispatcher party: roles `dispatcher` and `admin` (`DISPATCHER_ROLES`);
- a department's people: `liaison` and `head` of the department
  (`DEPARTMENT_ROLES`); lead or assisting according to the call;
- district readers (all calls, the district report): dispatchers, admins and
  supervisors;
- a call's reader: its caller, the departments taking part, district readers;
- a department's report: that department's liaisons and heads, district readers;
- raising a call: a caller in a town, street or village; inviting: admins;
- the dispatch board: district readers and department heads (a head's board
  lists the calls they may read); revoking board sessions: admins.
- a member's own list (/mine): a caller's calls, or a liaison's or head's
  department's open calls (`LIST_DEPARTMENT_CALLS`).
- the form-burden watch (`workflows.burden`): a department's liaisons and
  heads send data requests (`/request`); town and village cadres answer them
  (`/answer`; *which* requests is the town's, decided in
  `workflows.burden.town_cadres`); dispatchers and admins approve an
  out-of-plan request; the burden report is read by district readers in
  full and by a department's liaisons and heads for their department.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import ColumnElement, false, true
from sqlmodel import Session, col, or_, select

from models import (
    CALLER_UNIT_KINDS,
    Call,
    CallDepartment,
    CallStatus,
    Member,
    ParticipantRole,
    Role,
    Unit,
    UnitKind,
    session_scope,
)
from workflows.context import Context
from workflows.errors import NotAllowed, NotFound, WrongState
from workflows.lifecycle import Action, Party, transition

DISPATCHER_ROLES = frozenset({Role.DISPATCHER, Role.ADMIN})
DEPARTMENT_ROLES = frozenset({Role.LIAISON, Role.HEAD})
_DISTRICT_READERS = DISPATCHER_ROLES | {Role.SUPERVISOR}


class Permission(StrEnum):
    """What a member may do besides moving a call along its lifecycle."""

    RAISE_CALL = "raise_call"
    READ_CALL = "read_call"  # needs the call
    READ_ALL_CALLS = "read_all_calls"  # lists and searches over every call
    READ_DEPARTMENT_REPORT = "read_department_report"  # needs department_id
    READ_DISTRICT_REPORT = "read_district_report"
    DECIDE_REQUESTS = "decide_requests"  # extensions and returns
    INVITE = "invite"
    USE_BOARD = "use_board"  # sign in to the dispatch board
    REVOKE_BOARD_SESSIONS = "revoke_board_sessions"
    LIST_DEPARTMENT_CALLS = "list_department_calls"  # the own department's open calls
    LIST_OWN_CALLS = "list_own_calls"  # /mine: a caller's calls, or the department's
    SEND_DATA_REQUEST = "send_data_request"  # the form-burden watch (数据报送)
    ANSWER_DATA_REQUEST = "answer_data_request"  # for the cadre's own town
    APPROVE_OUT_OF_PLAN = "approve_out_of_plan"  # a 计划外 data request
    READ_BURDEN_REPORT = "read_burden_report"  # district readers; a department its own line


class Command(StrEnum):
    """The commands of the chat (and of any surface that offers the same)."""

    CALL = "call"
    MINE = "mine"
    STATS = "stats"
    OVERDUE = "overdue"
    FIND = "find"
    ASSIGN = "assign"
    APPROVE = "approve"
    REFUSE = "refuse"
    INVITE = "invite"
    QUEUE = "queue"
    REPORT = "report"
    BOARD = "board"
    REQUEST = "request"
    ANSWER = "answer"
    BURDEN = "burden"


@dataclass(frozen=True)
class Actor:
    """A member acting: who, in which role, from which unit. Build it with
    `actor(ctx, member_id)` / `actor_in(session, member_id)`, or
    `Actor.of(member, unit_kind)` from rows already loaded."""

    member_id: int
    role: Role
    unit_id: int
    unit_kind: UnitKind | None = None  # only raising a call needs it

    @classmethod
    def of(cls, member: Member, unit_kind: UnitKind | None = None) -> Actor:
        return cls(member.id or 0, member.role, member.unit_id, unit_kind)


class CallFacts(Protocol):
    """What the policy needs to know about a call."""

    @property
    def id(self) -> int: ...
    @property
    def number(self) -> str: ...
    @property
    def status(self) -> CallStatus: ...
    @property
    def caller_id(self) -> int: ...
    @property
    def lead_department_id(self) -> int | None: ...
    @property
    def assisting_department_ids(self) -> tuple[int, ...]: ...


@dataclass(frozen=True)
class CallSubject:
    """`CallFacts` built from an ORM row and its participants (`facts`)."""

    id: int
    number: str
    status: CallStatus
    caller_id: int
    lead_department_id: int | None
    assisting_department_ids: tuple[int, ...]


# --- building actors and facts ----------------------------------------------------


def actor_in(session: Session, member_id: int) -> Actor:
    """The active member `member_id` as an actor, inside a unit of work.
    Raises `NotFound` for no such member, `NotAllowed` for an inactive one."""
    row = session.exec(
        select(Member, Unit.kind).join(Unit, Unit.id == Member.unit_id)  # type: ignore[arg-type]
        .where(Member.id == member_id)
    ).first()
    if row is None:
        raise NotFound(f"no member {member_id}", what="member")
    member, kind = row
    if not member.active:
        raise NotAllowed(f"member {member.code} is not active")
    return Actor.of(member, UnitKind(kind))


def actor(ctx: Context, member_id: int) -> Actor:
    """`actor_in` in a session of its own (for surfaces outside a use case)."""
    with session_scope(ctx.engine) as session:
        return actor_in(session, member_id)


def facts(session: Session, call: Call) -> CallSubject:
    """The policy's view of an ORM call: its row plus its assisting departments."""
    assisting = session.exec(
        select(CallDepartment.department_id).where(
            CallDepartment.call_id == call.id,
            CallDepartment.role == ParticipantRole.ASSISTING,
        )
    ).all()
    return CallSubject(call.id or 0, call.number, call.status, call.caller_id,
                       call.lead_department_id, tuple(sorted(assisting)))


# --- the policy ---------------------------------------------------------------


def parties(who: Actor, call: CallFacts) -> frozenset[Party]:
    """What `who` is to `call`, in the terms of the transition table."""
    found: set[Party] = set()
    if who.role is Role.CALLER and who.member_id == call.caller_id:
        found.add(Party.CALLER)
    if who.role in DISPATCHER_ROLES:
        found.add(Party.DISPATCHER)
    if who.role in DEPARTMENT_ROLES:
        if call.lead_department_id == who.unit_id:
            found.add(Party.LEAD_DEPARTMENT)
        elif who.unit_id in call.assisting_department_ids:
            found.add(Party.ASSISTING_DEPARTMENT)
    return frozenset(found)


def readable_calls(who: Actor) -> ColumnElement[bool]:
    """`Permission.READ_CALL` as a query condition on `Call`: the calls `who`
    may read, for listings that filter in the database rather than row by row
    (the Open311 listing). The same rule as `parties` and `_permitted` below,
    written for SQL; tests/test_access.py holds the two equal for every role
    and every kind of call."""
    if who.role in _DISTRICT_READERS:
        return true()
    readable: list[ColumnElement[bool]] = []
    if who.role is Role.CALLER:  # Party.CALLER
        readable.append(col(Call.caller_id) == who.member_id)
    if who.role in DEPARTMENT_ROLES:  # Party.LEAD_DEPARTMENT, Party.ASSISTING_DEPARTMENT
        readable.append(col(Call.lead_department_id) == who.unit_id)
        readable.append(col(Call.id).in_(
            select(CallDepartment.call_id).where(
                CallDepartment.department_id == who.unit_id,
                CallDepartment.role == ParticipantRole.ASSISTING)))
    return or_(*readable) if readable else false()


def _permitted(who: Actor, what: Permission, call: CallFacts | None,
               department_id: int | None) -> bool:
    if what is Permission.RAISE_CALL:
        return who.role is Role.CALLER and who.unit_kind in CALLER_UNIT_KINDS
    if what in (Permission.READ_ALL_CALLS, Permission.READ_DISTRICT_REPORT):
        return who.role in _DISTRICT_READERS
    if what is Permission.DECIDE_REQUESTS:
        return who.role in DISPATCHER_ROLES
    if what in (Permission.INVITE, Permission.REVOKE_BOARD_SESSIONS):
        return who.role is Role.ADMIN
    if what is Permission.USE_BOARD:
        # The board lists what its user may read: heads see their department's calls.
        return who.role in _DISTRICT_READERS or who.role is Role.HEAD
    if what is Permission.LIST_DEPARTMENT_CALLS:
        return who.role in DEPARTMENT_ROLES
    if what is Permission.LIST_OWN_CALLS:
        return who.role is Role.CALLER or who.role in DEPARTMENT_ROLES
    if what is Permission.SEND_DATA_REQUEST:
        return who.role in DEPARTMENT_ROLES and who.unit_kind in (None, UnitKind.DEPARTMENT)
    if what is Permission.ANSWER_DATA_REQUEST:
        return who.role is Role.CALLER
    if what is Permission.APPROVE_OUT_OF_PLAN:
        return who.role in DISPATCHER_ROLES
    if what is Permission.READ_BURDEN_REPORT:
        return who.role in _DISTRICT_READERS or who.role in DEPARTMENT_ROLES
    if what is Permission.READ_CALL:
        if call is None:
            raise TypeError("READ_CALL needs the call")
        return who.role in _DISTRICT_READERS or bool(parties(who, call))
    if what is Permission.READ_DEPARTMENT_REPORT:
        if department_id is None:
            raise TypeError("READ_DEPARTMENT_REPORT needs department_id")
        return who.role in _DISTRICT_READERS or (
            who.role in DEPARTMENT_ROLES and who.unit_id == department_id
        )
    raise AssertionError(what)  # pragma: no cover - every permission is handled


# Each command is one of the permissions above, so a command can never be
# looser than what it reads or changes.
COMMANDS: dict[Command, Permission] = {
    Command.CALL: Permission.RAISE_CALL,
    Command.MINE: Permission.LIST_OWN_CALLS,
    Command.STATS: Permission.READ_DISTRICT_REPORT,
    Command.OVERDUE: Permission.READ_ALL_CALLS,
    Command.FIND: Permission.READ_ALL_CALLS,
    Command.ASSIGN: Permission.DECIDE_REQUESTS,
    Command.APPROVE: Permission.DECIDE_REQUESTS,
    Command.REFUSE: Permission.DECIDE_REQUESTS,
    Command.INVITE: Permission.INVITE,
    Command.QUEUE: Permission.DECIDE_REQUESTS,
    Command.REPORT: Permission.READ_DISTRICT_REPORT,
    Command.BOARD: Permission.USE_BOARD,
    Command.REQUEST: Permission.SEND_DATA_REQUEST,
    Command.ANSWER: Permission.ANSWER_DATA_REQUEST,
    Command.BURDEN: Permission.READ_BURDEN_REPORT,
}


def _refusal(who: Actor, what: Action | Permission | Command, call: CallFacts | None,
             department_id: int | None) -> NotAllowed | WrongState | None:
    """Why `who` may not do `what`, or None when they may."""
    if isinstance(what, Action):
        if call is None:
            raise TypeError(f"{what} needs the call")
        rule = transition(what)
        if not parties(who, call) & rule.parties:
            return NotAllowed(
                f"{what} on {call.number} is for {', '.join(sorted(rule.parties))}",
                action=what.value, number=call.number,
            )
        if call.status not in rule.sources:
            return WrongState(
                f"{call.number} is {call.status}; {what} needs "
                f"{' or '.join(sorted(rule.sources))}",
                action=what.value, number=call.number, status=call.status.value,
            )
        return None
    if isinstance(what, Command):
        what_ = COMMANDS[what]
        # RAISE_CALL without the unit kind: the command is offered to callers,
        # the use case checks the unit when the call is raised.
        if what_ is Permission.RAISE_CALL and who.unit_kind is None:
            allowed = who.role is Role.CALLER
        else:
            allowed = _permitted(who, what_, call, department_id)
    else:
        allowed = _permitted(who, what, call, department_id)
    if allowed:
        return None
    return NotAllowed(f"{what} is not for member {who.member_id} ({who.role})",
                      action=what.value, **({"number": call.number} if call else {}))


def may(who: Actor, what: Action | Permission | Command, call: CallFacts | None = None,
        *, department_id: int | None = None) -> bool:
    """Whether `who` may do `what` (to `call`, for `department_id`) now."""
    return _refusal(who, what, call, department_id) is None


def require(who: Actor, what: Action | Permission | Command, call: CallFacts | None = None,
            *, department_id: int | None = None) -> None:
    """Raise `NotAllowed` (or `WrongState`, for an action the call's status
    does not allow) unless `may(...)`."""
    refusal = _refusal(who, what, call, department_id)
    if refusal is not None:
        raise refusal


def commands(who: Actor) -> list[Command]:
    """The commands `who` may run, in menu order."""
    return [command for command in Command if may(who, command)]


def allowed_actions(who: Actor, call: CallFacts,
                    actions: Iterable[Action] = Action) -> list[Action]:
    """The lifecycle actions `who` may take on `call` now."""
    return [action for action in actions if may(who, action, call)]

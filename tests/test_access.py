"""The policy (`workflows.access`): every cell of role × action × call state
from the lifecycle table, every permission and command per role, and the
use cases and the pre-checks of the conversations agreeing with it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from models import Call, CallStatus, Member, RatingLevel, Role, UnitKind
from tests.conftest import T0, Org
from tests.test_queries import varied_calls
from workflows import access, calls, queries
from workflows.access import Actor, CallSubject, Command, Permission
from workflows.context import Context
from workflows.errors import NotAllowed, WorkflowError, WrongState
from workflows.lifecycle import TRANSITIONS, Action, Party

CALLER, OTHER_CALLER = 1, 2
LEAD, ASSISTING, ELSEWHERE = 10, 11, 12
VILLAGE, CENTRE, SUPERVISION = 20, 21, 22

# Who acts, and — written out by hand, not asked of the policy — which party
# of the transition table that makes them on the call below.
ACTORS: dict[str, tuple[Actor, Party | None]] = {
    "the caller": (Actor(CALLER, Role.CALLER, VILLAGE, UnitKind.VILLAGE), Party.CALLER),
    "another caller": (Actor(OTHER_CALLER, Role.CALLER, VILLAGE, UnitKind.VILLAGE), None),
    "lead liaison": (Actor(3, Role.LIAISON, LEAD, UnitKind.DEPARTMENT), Party.LEAD_DEPARTMENT),
    "lead head": (Actor(4, Role.HEAD, LEAD, UnitKind.DEPARTMENT), Party.LEAD_DEPARTMENT),
    "assisting liaison": (Actor(5, Role.LIAISON, ASSISTING, UnitKind.DEPARTMENT),
                          Party.ASSISTING_DEPARTMENT),
    "assisting head": (Actor(6, Role.HEAD, ASSISTING, UnitKind.DEPARTMENT),
                       Party.ASSISTING_DEPARTMENT),
    "other department": (Actor(7, Role.LIAISON, ELSEWHERE, UnitKind.DEPARTMENT), None),
    "dispatcher": (Actor(8, Role.DISPATCHER, CENTRE, UnitKind.COMMAND_CENTRE), Party.DISPATCHER),
    "admin": (Actor(9, Role.ADMIN, CENTRE, UnitKind.COMMAND_CENTRE), Party.DISPATCHER),
    "supervisor": (Actor(13, Role.SUPERVISOR, SUPERVISION, UnitKind.SUPERVISION), None),
}


def subject(status: CallStatus) -> CallSubject:
    return CallSubject(id=1, number="BY-2026-000001", status=status, caller_id=CALLER,
                       lead_department_id=LEAD, assisting_department_ids=(ASSISTING,))


CELLS = [(name, rule.action, status) for name in ACTORS for rule in TRANSITIONS
         for status in CallStatus]


@pytest.mark.parametrize(("name", "action", "status"), CELLS)
def test_every_cell_of_the_matrix(name: str, action: Action, status: CallStatus) -> None:
    who, party = ACTORS[name]
    rule = next(t for t in TRANSITIONS if t.action is action)
    call = subject(status)
    is_party = party is not None and party in rule.parties
    expected = is_party and status in rule.sources
    assert access.may(who, action, call) is expected
    if expected:
        access.require(who, action, call)
    else:
        # Not a party: NotAllowed whatever the state; a party, wrong state: WrongState.
        with pytest.raises(WrongState if is_party else NotAllowed):
            access.require(who, action, call)


def test_the_matrix_covers_every_action_and_no_member_takes_a_system_action() -> None:
    assert {action for _, action, _ in CELLS} == set(Action)
    for rule in TRANSITIONS:
        if rule.parties == {Party.SYSTEM}:
            for who, _ in ACTORS.values():
                assert not any(access.may(who, rule.action, subject(s)) for s in CallStatus)


def test_a_call_not_yet_routed_has_no_department() -> None:
    pending = CallSubject(1, "BY-2026-000001", CallStatus.PENDING_DISPATCH, CALLER, None, ())
    for name in ("lead liaison", "assisting liaison"):
        who, _ = ACTORS[name]
        assert not access.may(who, Permission.READ_CALL, pending)
        assert not access.may(who, Action.ADD_INFO, pending)
    assert access.may(ACTORS["the caller"][0], Action.ADD_INFO, pending)


READ_CALL = {"the caller", "lead liaison", "lead head", "assisting liaison", "assisting head",
             "dispatcher", "admin", "supervisor"}
DISTRICT_READERS = {"dispatcher", "admin", "supervisor"}
DECIDERS = {"dispatcher", "admin"}
RAISERS = {"the caller", "another caller"}
DEPARTMENT_PEOPLE = {"lead liaison", "lead head", "assisting liaison", "assisting head",
                     "other department"}


@pytest.mark.parametrize("name", ACTORS)
def test_permissions_by_role(name: str) -> None:
    who, _ = ACTORS[name]
    call = subject(CallStatus.IN_PROGRESS)
    assert access.may(who, Permission.READ_CALL, call) is (name in READ_CALL)
    assert access.may(who, Permission.READ_ALL_CALLS) is (name in DISTRICT_READERS)
    assert access.may(who, Permission.READ_DISTRICT_REPORT) is (name in DISTRICT_READERS)
    assert access.may(who, Permission.READ_DEPARTMENT_REPORT, department_id=LEAD) is (
        name in DISTRICT_READERS | {"lead liaison", "lead head"})
    assert access.may(who, Permission.DECIDE_REQUESTS) is (name in DECIDERS)
    assert access.may(who, Permission.INVITE) is (name == "admin")
    assert access.may(who, Permission.REVOKE_BOARD_SESSIONS) is (name == "admin")
    assert access.may(who, Permission.USE_BOARD) is (
        name in DISTRICT_READERS | {"lead head", "assisting head"})
    assert access.may(who, Permission.RAISE_CALL) is (name in RAISERS)
    # Every department's people list their own department's calls.
    department = {"lead liaison", "lead head", "assisting liaison", "assisting head",
                  "other department"}
    assert access.may(who, Permission.LIST_DEPARTMENT_CALLS) is (name in department)
    assert access.may(who, Permission.LIST_OWN_CALLS) is (name in RAISERS | department)
    assert access.may(who, Permission.SEND_DATA_REQUEST) is (name in DEPARTMENT_PEOPLE)
    assert access.may(who, Permission.ANSWER_DATA_REQUEST) is (name in RAISERS)
    assert access.may(who, Permission.APPROVE_OUT_OF_PLAN) is (name in DECIDERS)
    assert access.may(who, Permission.READ_BURDEN_REPORT) is (
        name in DISTRICT_READERS | DEPARTMENT_PEOPLE)


EXPECTED_COMMANDS = {
    Command.CALL: RAISERS,
    Command.MINE: RAISERS | {"lead liaison", "lead head", "assisting liaison", "assisting head",
                             "other department"},
    Command.QUEUE: DECIDERS,
    Command.STATS: DISTRICT_READERS, Command.OVERDUE: DISTRICT_READERS,
    Command.FIND: DISTRICT_READERS, Command.REPORT: DISTRICT_READERS,
    Command.BOARD: DISTRICT_READERS | {"lead head", "assisting head"},
    Command.ASSIGN: DECIDERS, Command.APPROVE: DECIDERS, Command.REFUSE: DECIDERS,
    Command.INVITE: {"admin"},
    Command.REQUEST: DEPARTMENT_PEOPLE, Command.ANSWER: RAISERS,
    Command.BURDEN: DISTRICT_READERS | DEPARTMENT_PEOPLE,
}


@pytest.mark.parametrize("command", Command)
def test_commands_by_role(command: Command) -> None:
    allowed = {name for name, (who, _) in ACTORS.items() if access.may(who, command)}
    assert allowed == EXPECTED_COMMANDS[command]
    who, _ = ACTORS["lead liaison"]
    if "lead liaison" not in EXPECTED_COMMANDS[command]:
        with pytest.raises(NotAllowed):
            access.require(who, command)


def test_a_caller_outside_a_town_or_village_may_not_raise() -> None:
    misplaced = Actor(1, Role.CALLER, CENTRE, UnitKind.COMMAND_CENTRE)
    assert not access.may(misplaced, Permission.RAISE_CALL)


def test_a_permission_about_a_call_needs_the_call() -> None:
    with pytest.raises(TypeError):
        access.may(ACTORS["dispatcher"][0], Permission.READ_CALL)
    with pytest.raises(TypeError):
        access.may(ACTORS["dispatcher"][0], Action.ASSIGN)


# --- the use cases and the conversations' pre-check ask the same policy ---------


def test_actor_from_the_database(ctx: Context, org: Org) -> None:
    who = access.actor(ctx, org.water_liaison)
    assert who == Actor(org.water_liaison, Role.LIAISON, org.water, UnitKind.DEPARTMENT)


def _joint_call_in_progress(ctx: Context, org: Org) -> int:
    call_id = calls.raise_call(ctx, org.caller, T0, "违建", item_code="illegal-building").id or 0
    calls.acknowledge(ctx, call_id, org.urban_liaison, T0)
    calls.respond(ctx, call_id, org.urban_liaison, T0, "在处理")
    return call_id


def test_the_pre_check_and_the_view_agree_with_the_policy(ctx: Context, org: Org) -> None:
    call_id = _joint_call_in_progress(ctx, org)
    view = queries.call_view(ctx, call_id)
    assert view.assisting_department_ids == (org.housing,)
    members = [org.caller, org.other_caller, org.urban_liaison, org.housing_liaison,
               org.water_liaison, org.dispatcher, org.supervisor, org.admin]
    for member in members:
        who = access.actor(ctx, member)
        for action in Action:
            try:
                queries.check_may(ctx, call_id, member, action)
                allowed = True
            except WorkflowError:
                allowed = False
            assert allowed is access.may(who, action, view), (member, action)


def test_a_use_case_refuses_what_the_policy_refuses(ctx: Context, org: Org) -> None:
    call_id = _joint_call_in_progress(ctx, org)
    later = T0 + timedelta(hours=1)
    with pytest.raises(NotAllowed):
        calls.resolve(ctx, call_id, org.housing_liaison, later, "已拆除")  # assisting only
    with pytest.raises(NotAllowed):
        calls.resolve(ctx, call_id, org.supervisor, later, "已拆除")
    with pytest.raises(WrongState):
        calls.confirm(ctx, call_id, org.caller, later, RatingLevel.SATISFIED)
    calls.resolve(ctx, call_id, org.urban_liaison, later, "已拆除")


# --- the read rule as a query condition ---------------------------------------------


def test_readable_calls_is_the_read_rule_cell_by_cell(ctx: Context, org: Org) -> None:
    """`readable_calls(actor)` selects exactly the calls `may(actor,
    READ_CALL, call)` allows: every member of the organisation (every role)
    against calls of every shape — the caller's own and another's, routed or
    not, joint (lead and assisting), returned to another department, closed."""
    call_ids = varied_calls(ctx, org)
    with Session(ctx.engine) as session:
        members = list(session.exec(select(Member).where(col(Member.unit_id).is_not(None))))
        assert {member.role for member in members} == set(Role)
        rows = list(session.exec(select(Call).where(col(Call.id).in_(call_ids))))
        readers: dict[int, int] = {}
        for member in members:
            who = access.actor_in(session, member.id or 0)
            selected = set(session.exec(select(Call.id).where(access.readable_calls(who))))
            for call in rows:
                allowed = access.may(who, Permission.READ_CALL, access.facts(session, call))
                assert (call.id in selected) is allowed, (member.code, call.number)
                readers[call.id or 0] = readers.get(call.id or 0, 0) + allowed
    # Neither everyone nor no one: the cells differ by member and by call.
    assert min(readers.values()) >= 3 and max(readers.values()) < len(members)

"""The call lifecycle, declared once.

`TRANSITIONS` is the single source of truth: the use cases in
`workflows.calls` check every change against it, the tests enumerate it, and
`mermaid_diagram()` draws the README's diagram from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from models import CallStatus
from workflows.errors import WrongState

S = CallStatus


class Action(StrEnum):
    ROUTE = "route"
    SEND_TO_DISPATCHER = "send_to_dispatcher"
    ASSIGN = "assign"
    ACKNOWLEDGE = "acknowledge"
    ACKNOWLEDGE_AS_ASSISTING = "acknowledge_as_assisting"
    RESPOND = "respond"
    REQUEST_EXTENSION = "request_extension"
    GRANT_EXTENSION = "grant_extension"
    REFUSE_EXTENSION = "refuse_extension"
    RETURN = "return"
    UPHOLD_RETURN = "uphold_return"
    REFUSE_RETURN = "refuse_return"
    RESOLVE = "resolve"
    CONFIRM = "confirm"
    REJECT_FIX = "reject_fix"
    WITHDRAW = "withdraw"
    AUTO_CLOSE = "auto_close"
    ADD_INFO = "add_info"


class Party(StrEnum):
    """Who may act, relative to the call."""

    SYSTEM = "system"
    CALLER = "caller"  # the member who raised the call
    LEAD_DEPARTMENT = "lead_department"  # a liaison or head of the lead department
    ASSISTING_DEPARTMENT = "assisting_department"  # … of an assisting department
    DISPATCHER = "dispatcher"  # a dispatcher or admin


@dataclass(frozen=True)
class Transition:
    """`action` moves a call from any of `sources` to one of `targets`.
    `keeps_status`: the action leaves the status as it is (`targets` then
    lists the statuses it may be taken in, equal to `sources`)."""

    action: Action
    sources: frozenset[CallStatus]
    targets: frozenset[CallStatus]
    parties: frozenset[Party]
    event: str
    keeps_status: bool = False


def _t(
    action: Action,
    sources: set[CallStatus],
    targets: set[CallStatus],
    parties: set[Party],
    event: str,
    *,
    keeps_status: bool = False,
) -> Transition:
    if keeps_status and sources != targets:
        raise ValueError(f"{action} keeps the status: its targets are its sources")
    return Transition(action, frozenset(sources), frozenset(targets), frozenset(parties), event,
                      keeps_status)


OPEN_FOR_ASSISTING = {S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.EXTENSION_REQUESTED}
OPEN_FOR_INFO = {S.PENDING_DISPATCH, *OPEN_FOR_ASSISTING}

TRANSITIONS: tuple[Transition, ...] = (
    _t(Action.ROUTE, {S.RAISED}, {S.DISPATCHED}, {Party.SYSTEM}, "CallDispatched"),
    _t(Action.SEND_TO_DISPATCHER, {S.RAISED}, {S.PENDING_DISPATCH}, {Party.SYSTEM},
       "CallSentToDispatcher"),
    _t(Action.ASSIGN, {S.PENDING_DISPATCH, S.DISPATCHED}, {S.DISPATCHED}, {Party.DISPATCHER},
       "CallAssigned"),
    _t(Action.ACKNOWLEDGE, {S.DISPATCHED}, {S.ACKNOWLEDGED}, {Party.LEAD_DEPARTMENT},
       "CallAcknowledged"),
    _t(Action.ACKNOWLEDGE_AS_ASSISTING, OPEN_FOR_ASSISTING, OPEN_FOR_ASSISTING,
       {Party.ASSISTING_DEPARTMENT}, "CallAcknowledgedByAssisting", keeps_status=True),
    _t(Action.RESPOND, {S.ACKNOWLEDGED}, {S.IN_PROGRESS}, {Party.LEAD_DEPARTMENT},
       "CallResponded"),
    _t(Action.REQUEST_EXTENSION, {S.IN_PROGRESS}, {S.EXTENSION_REQUESTED},
       {Party.LEAD_DEPARTMENT}, "ExtensionRequested"),
    _t(Action.GRANT_EXTENSION, {S.EXTENSION_REQUESTED}, {S.IN_PROGRESS}, {Party.DISPATCHER},
       "ExtensionGranted"),
    _t(Action.REFUSE_EXTENSION, {S.EXTENSION_REQUESTED}, {S.IN_PROGRESS}, {Party.DISPATCHER},
       "ExtensionRefused"),
    _t(Action.RETURN, {S.DISPATCHED, S.ACKNOWLEDGED}, {S.PENDING_DISPATCH},
       {Party.LEAD_DEPARTMENT}, "CallReturned"),
    _t(Action.UPHOLD_RETURN, {S.PENDING_DISPATCH}, {S.PENDING_DISPATCH, S.DISPATCHED},
       {Party.DISPATCHER}, "ReturnUpheld"),
    _t(Action.REFUSE_RETURN, {S.PENDING_DISPATCH}, {S.DISPATCHED, S.ACKNOWLEDGED},
       {Party.DISPATCHER}, "ReturnRefused"),
    _t(Action.RESOLVE, {S.IN_PROGRESS}, {S.RESOLVED}, {Party.LEAD_DEPARTMENT}, "CallResolved"),
    _t(Action.CONFIRM, {S.RESOLVED}, {S.CLOSED}, {Party.CALLER}, "CallClosed"),
    _t(Action.REJECT_FIX, {S.RESOLVED}, {S.IN_PROGRESS}, {Party.CALLER}, "FixRejected"),
    _t(Action.WITHDRAW, {S.RAISED, S.PENDING_DISPATCH, S.DISPATCHED}, {S.WITHDRAWN},
       {Party.CALLER}, "CallWithdrawn"),
    _t(Action.AUTO_CLOSE, {S.RESOLVED}, {S.CLOSED}, {Party.SYSTEM}, "CallAutoClosed"),
    _t(Action.ADD_INFO, OPEN_FOR_INFO, OPEN_FOR_INFO, {Party.CALLER}, "InfoAdded",
       keeps_status=True),
)

BY_ACTION: dict[Action, Transition] = {t.action: t for t in TRANSITIONS}

FINAL_STATES = frozenset({S.CLOSED, S.WITHDRAWN})
OPEN_STATES = frozenset(set(S) - FINAL_STATES)


def transition(action: Action) -> Transition:
    return BY_ACTION[action]


def target(action: Action, status: CallStatus, wanted: CallStatus | None = None) -> CallStatus:
    """Where `action` takes a call that is `status` now: the status itself for a
    status-keeping action, the one target, or `wanted` among several.
    Raises `WrongState` when the action cannot be taken from `status`."""
    rule = transition(action)
    if status not in rule.sources:
        raise WrongState(f"{action} needs {' or '.join(sorted(rule.sources))}, not {status}",
                         action=action.value, status=status.value)
    if rule.keeps_status:
        chosen = status
    elif wanted is not None:
        chosen = wanted
    elif len(rule.targets) == 1:
        (chosen,) = rule.targets
    else:
        raise ValueError(f"{action} has several targets: say which")
    if chosen not in rule.targets:
        raise WrongState(f"{action} cannot lead to {chosen}", action=action.value)
    return chosen


def mermaid_diagram() -> str:
    """The lifecycle as a Mermaid state diagram, drawn from `TRANSITIONS`."""
    lines = ["stateDiagram-v2", "    [*] --> raised"]
    for t in TRANSITIONS:
        who = ", ".join(sorted(p.value for p in t.parties))
        for source in sorted(t.sources):
            # An action that keeps the status is a loop.
            targets = [source] if t.keeps_status else sorted(t.targets)
            for target in targets:
                lines.append(f"    {source} --> {target}: {t.action} ({who})")
    lines += ["    closed --> [*]", "    withdrawn --> [*]"]
    return "\n".join(lines)

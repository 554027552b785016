"""The call lifecycle, declared once.

`TRANSITIONS` is the single source of truth: the use cases in
`workflows.calls` check every change against it, the tests enumerate it, and
`mermaid_diagram()` draws the README's diagram from it. Each transition also
declares its `Effects` — the moments it records, what it does to the call's
three clocks and to its departments — which `apply` (and, for the rows beside
the call, `workflows.calls._shared.move`) carries out, so no use case sets a
timestamp or a deadline by hand; `effects_table()` prints them for the README.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from models import Call, CallStatus
from workflows.calendar import WorkingDayCalendar
from workflows.deadlines import CallLimits, WorkdayPolicy, due_at, extend, reopened_due
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


class Stamp(StrEnum):
    """A moment of a call's life a transition records: the `Call` column."""

    DISPATCHED = "dispatched_at"
    ACKNOWLEDGED = "acknowledged_at"
    RESPONDED = "responded_at"
    RESOLVED = "resolved_at"
    CLOSED = "closed_at"


class Clock(StrEnum):
    """One of a call's three clocks: the `Call` column of its deadline."""

    ACKNOWLEDGE = "acknowledge_due"
    RESPOND = "respond_due"
    RESOLVE = "resolve_due"


class ClockChange(StrEnum):
    """What a transition does to a clock."""

    START = "start"  # runs from now by the call's limit (`deadlines.due_at`)
    STOP = "stop"  # no deadline: the call has no department to hold to it
    EXTEND = "extend"  # moved by the granted working days (`deadlines.extend`)
    REOPEN = "reopen"  # the time left at resolution, counted from now (`deadlines.reopened_due`)


class Routing(StrEnum):
    """What a transition does to the call's departments (rows beside the call,
    so carried out by `workflows.calls._shared.move`)."""

    DISPATCH = "dispatch"  # to a lead department, with the item's assisting departments
    RELEASE = "release"  # the call leaves its departments (and their figures)


_ALL_CLOCKS = tuple(Clock)


@dataclass(frozen=True)
class Effects:
    """What a transition does besides changing the status: the moments it
    sets to now (`sets`) or clears (`clears`), what it does to each clock
    (`clocks`; a clock not named is left as it is), to the departments
    (`routing`), whether it marks the call auto-closed, and whether it closes
    the requests still pending on the call (`supersedes_requests`)."""

    sets: frozenset[Stamp] = frozenset()
    clears: frozenset[Stamp] = frozenset()
    clocks: tuple[tuple[Clock, ClockChange], ...] = ()
    routing: Routing | None = None
    auto_closed: bool = False
    supersedes_requests: bool = False

    def __post_init__(self) -> None:
        if self.sets & self.clears:
            raise ValueError(f"a moment is both set and cleared: {sorted(self.sets & self.clears)}")
        named = [clock for clock, _ in self.clocks]
        if len(named) != len(set(named)):
            raise ValueError(f"a clock is changed twice: {named}")

    @property
    def clock_changes(self) -> dict[Clock, ClockChange]:
        return dict(self.clocks)


def _effects(
    sets: set[Stamp] | None = None,
    clears: set[Stamp] | None = None,
    clocks: Mapping[Clock, ClockChange] | None = None,
    **flags: Any,
) -> Effects:
    in_order = sorted((clocks or {}).items(), key=lambda item: _ALL_CLOCKS.index(item[0]))
    return Effects(frozenset(sets or ()), frozenset(clears or ()), tuple(in_order), **flags)


NO_EFFECTS = Effects()
#: The call reaches a department: its clocks start now, and what an earlier
#: department did (acknowledged, responded) no longer counts.
DISPATCH = _effects({Stamp.DISPATCHED}, {Stamp.ACKNOWLEDGED, Stamp.RESPONDED},
                    dict.fromkeys(_ALL_CLOCKS, ClockChange.START), routing=Routing.DISPATCH)
#: The call leaves its department and waits for the dispatcher: no clock runs.
RELEASE = _effects(None, {Stamp.ACKNOWLEDGED, Stamp.RESPONDED},
                   dict.fromkeys(_ALL_CLOCKS, ClockChange.STOP), routing=Routing.RELEASE)


@dataclass(frozen=True)
class Transition:
    """`action` moves a call from any of `sources` to one of `targets`, with
    the effects `effects_to(target)` declares.
    `keeps_status`: the action leaves the status as it is (`targets` then
    lists the statuses it may be taken in, equal to `sources`)."""

    action: Action
    sources: frozenset[CallStatus]
    targets: frozenset[CallStatus]
    parties: frozenset[Party]
    event: str
    keeps_status: bool = False
    effects: tuple[tuple[CallStatus, Effects], ...] = field(default=())

    def effects_to(self, target: CallStatus) -> Effects:
        """The effects of taking this action to `target` (one of `targets`)."""
        return dict(self.effects)[target]


def _t(
    action: Action,
    sources: set[CallStatus],
    targets: set[CallStatus],
    parties: set[Party],
    event: str,
    effects: Effects | Mapping[CallStatus, Effects] = NO_EFFECTS,
    *,
    keeps_status: bool = False,
) -> Transition:
    """A transition; `effects` the same whatever the target, or by target."""
    if keeps_status and sources != targets:
        raise ValueError(f"{action} keeps the status: its targets are its sources")
    by_target = dict.fromkeys(targets, effects) if isinstance(effects, Effects) else dict(effects)
    if set(by_target) != targets:
        raise ValueError(f"{action}: effects for {sorted(by_target)}, targets {sorted(targets)}")
    return Transition(action, frozenset(sources), frozenset(targets), frozenset(parties), event,
                      keeps_status, tuple(sorted(by_target.items())))


OPEN_FOR_ASSISTING = {S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.EXTENSION_REQUESTED}
OPEN_FOR_INFO = {S.PENDING_DISPATCH, *OPEN_FOR_ASSISTING}

TRANSITIONS: tuple[Transition, ...] = (
    _t(Action.ROUTE, {S.RAISED}, {S.DISPATCHED}, {Party.SYSTEM}, "CallDispatched", DISPATCH),
    _t(Action.SEND_TO_DISPATCHER, {S.RAISED}, {S.PENDING_DISPATCH}, {Party.SYSTEM},
       "CallSentToDispatcher"),
    # Assigning answers a return still pending (the dispatcher chose himself).
    _t(Action.ASSIGN, {S.PENDING_DISPATCH, S.DISPATCHED}, {S.DISPATCHED}, {Party.DISPATCHER},
       "CallAssigned", replace(DISPATCH, supersedes_requests=True)),
    _t(Action.ACKNOWLEDGE, {S.DISPATCHED}, {S.ACKNOWLEDGED}, {Party.LEAD_DEPARTMENT},
       "CallAcknowledged", _effects({Stamp.ACKNOWLEDGED})),
    # Recorded on the assisting department's own row, not on the call.
    _t(Action.ACKNOWLEDGE_AS_ASSISTING, OPEN_FOR_ASSISTING, OPEN_FOR_ASSISTING,
       {Party.ASSISTING_DEPARTMENT}, "CallAcknowledgedByAssisting", keeps_status=True),
    _t(Action.RESPOND, {S.ACKNOWLEDGED}, {S.IN_PROGRESS}, {Party.LEAD_DEPARTMENT},
       "CallResponded", _effects({Stamp.RESPONDED})),
    _t(Action.REQUEST_EXTENSION, {S.IN_PROGRESS}, {S.EXTENSION_REQUESTED},
       {Party.LEAD_DEPARTMENT}, "ExtensionRequested"),
    _t(Action.GRANT_EXTENSION, {S.EXTENSION_REQUESTED}, {S.IN_PROGRESS}, {Party.DISPATCHER},
       "ExtensionGranted", _effects(clocks={Clock.RESOLVE: ClockChange.EXTEND})),
    _t(Action.REFUSE_EXTENSION, {S.EXTENSION_REQUESTED}, {S.IN_PROGRESS}, {Party.DISPATCHER},
       "ExtensionRefused"),
    _t(Action.RETURN, {S.DISPATCHED, S.ACKNOWLEDGED}, {S.PENDING_DISPATCH},
       {Party.LEAD_DEPARTMENT}, "CallReturned"),
    # Upheld: rerouted at once, or left to the dispatcher's `assign`.
    _t(Action.UPHOLD_RETURN, {S.PENDING_DISPATCH}, {S.PENDING_DISPATCH, S.DISPATCHED},
       {Party.DISPATCHER}, "ReturnUpheld", {S.DISPATCHED: DISPATCH, S.PENDING_DISPATCH: RELEASE}),
    # Refused: back as it was, deadlines unchanged (the clock kept running).
    _t(Action.REFUSE_RETURN, {S.PENDING_DISPATCH}, {S.DISPATCHED, S.ACKNOWLEDGED},
       {Party.DISPATCHER}, "ReturnRefused"),
    _t(Action.RESOLVE, {S.IN_PROGRESS}, {S.RESOLVED}, {Party.LEAD_DEPARTMENT}, "CallResolved",
       _effects({Stamp.RESOLVED})),
    _t(Action.CONFIRM, {S.RESOLVED}, {S.CLOSED}, {Party.CALLER}, "CallClosed",
       _effects({Stamp.CLOSED})),
    _t(Action.REJECT_FIX, {S.RESOLVED}, {S.IN_PROGRESS}, {Party.CALLER}, "FixRejected",
       _effects(None, {Stamp.RESOLVED}, {Clock.RESOLVE: ClockChange.REOPEN})),
    _t(Action.WITHDRAW, {S.RAISED, S.PENDING_DISPATCH, S.DISPATCHED}, {S.WITHDRAWN},
       {Party.CALLER}, "CallWithdrawn", _effects({Stamp.CLOSED}, supersedes_requests=True)),
    _t(Action.AUTO_CLOSE, {S.RESOLVED}, {S.CLOSED}, {Party.SYSTEM}, "CallAutoClosed",
       _effects({Stamp.CLOSED}, auto_closed=True)),
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


def apply(
    call: Call,
    effects: Effects,
    now: datetime,
    limits: CallLimits,
    calendar: WorkingDayCalendar,
    policy: WorkdayPolicy,
    extension_days: int | None = None,
) -> dict[str, Any]:
    """Make `effects` on the call's own columns at `now`: the clocks first (a
    reopened clock reads the resolution before it is cleared), then the
    moments and the auto-closed mark. `extension_days` is what an `EXTEND`
    moves by. A clock that is not running is not extended or reopened.
    Returns, for the event's data, each moved clock's deadline before and
    after (`resolve_due_before`, `resolve_due`)."""
    moved: dict[str, Any] = {}
    for clock, change in effects.clocks:
        limit = getattr(limits, clock.name.lower())
        before: datetime | None = getattr(call, clock.value)
        if change is ClockChange.START:
            setattr(call, clock.value, due_at(now, limit, calendar, policy))
        elif change is ClockChange.STOP:
            setattr(call, clock.value, None)
        elif before is not None:
            if change is ClockChange.EXTEND:
                if extension_days is None:
                    raise ValueError("an extension needs its working days")
                after = extend(before, extension_days, calendar, policy)
            elif call.resolved_at is None:  # REOPEN, with no resolution to count from
                continue
            else:
                after = reopened_due(before, call.resolved_at, now, limit.unit, calendar, policy)
            setattr(call, clock.value, after)
            moved[f"{clock.value}_before"] = before.astimezone(UTC).isoformat()
            moved[clock.value] = after.isoformat()
    for stamp in effects.sets:
        setattr(call, stamp.value, now)
    for stamp in effects.clears:
        setattr(call, stamp.value, None)
    if effects.auto_closed:
        call.auto_closed = True
    return moved


def _describe(effects: Effects) -> str:
    parts = [f"sets {', '.join(sorted(effects.sets))}" if effects.sets else "",
             f"clears {', '.join(sorted(effects.clears))}" if effects.clears else "",
             *(f"{change} {', '.join(c for c, how in effects.clocks if how is change)}"
               for change in ClockChange if change in dict(effects.clocks).values()),
             f"{effects.routing} departments" if effects.routing else "",
             "marks auto_closed" if effects.auto_closed else "",
             "supersedes pending requests" if effects.supersedes_requests else ""]
    return "; ".join(part for part in parts if part) or "—"


def effects_table() -> str:
    """The effects of every transition as a Markdown table, from `TRANSITIONS`
    (the README shows it; a test keeps the two equal)."""
    lines = ["| action | to | effects |", "|---|---|---|"]
    for t in TRANSITIONS:
        for target, effects in t.effects:
            to = "(kept)" if t.keeps_status else target.value
            lines.append(f"| {t.action} | {to} | {_describe(effects)} |")
            if t.keeps_status:
                break
    return "\n".join(lines)


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

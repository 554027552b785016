"""Who is offered which list and which hint, asked of `workflows.access`
(the one policy) — the conversations ask these, never a role set of their own."""

from __future__ import annotations

from models import Member
from workflows import access
from workflows.access import Actor, Command, Permission


def sees_department_calls(member: Member) -> bool:
    """`/mine` lists the department's open calls (liaisons and heads)."""
    return access.may(Actor.of(member), Permission.LIST_DEPARTMENT_CALLS)


def sees_dispatch_queue(member: Member) -> bool:
    """`/queue` lists what waits for the command centre (dispatchers, admins)."""
    return access.may(Actor.of(member), Command.QUEUE)


def raises_calls(member: Member) -> bool:
    """`/call`, `/mine` as the caller's list, and a photo that starts a call."""
    return access.may(Actor.of(member), Command.CALL)

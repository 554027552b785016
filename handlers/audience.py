"""Who is offered which list and which hint — kept in one place, so the
conversations ask these and not a role set of their own. (When the
project's one permission policy lands, each of these asks it instead.)"""

from __future__ import annotations

from models import Member, Role


def sees_department_calls(member: Member) -> bool:
    """`/mine` lists the department's open calls (liaisons and heads)."""
    return member.role in (Role.LIAISON, Role.HEAD)


def sees_dispatch_queue(member: Member) -> bool:
    """`/queue` lists what waits for the command centre (dispatchers, admins)."""
    return member.role in (Role.DISPATCHER, Role.ADMIN)


def raises_calls(member: Member) -> bool:
    """`/call`, `/mine` as the caller's list, and a photo that starts a call."""
    return member.role is Role.CALLER

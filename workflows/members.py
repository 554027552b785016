"""A member's own settings, changed by the member in chat."""

from __future__ import annotations

from models import Locale, Member, unit_of_work
from workflows.context import Context
from workflows.errors import NotFound


def set_locale(ctx: Context, member_id: int, locale: Locale) -> Member:
    """Any member switches the language the bot speaks to them (`/lang`)."""
    with unit_of_work(ctx.engine) as session:
        member = session.get(Member, member_id)
        if member is None:
            raise NotFound(f"no member {member_id}", what="member")
        member.locale = locale
        session.add(member)
        session.commit()
        return member

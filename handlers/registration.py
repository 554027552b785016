"""Who may talk to the bot: strangers are refused; an invite code binds a
chat identity to a member (`/start CODE`); admins issue codes (`/invite`)."""

from __future__ import annotations

from datetime import datetime

from handlers.errors import describe
from handlers.i18n import Translator, locale_from_hint
from handlers.messages import Incoming, Reply
from handlers.turn import Turn
from models import Member
from workflows import access, invites
from workflows.access import Command
from workflows.context import Context
from workflows.errors import WorkflowError


def stranger(ctx: Context, msg: Incoming) -> list[Reply]:
    """Someone the bot does not know: a polite refusal in their language (or
    Simplified Chinese), and nothing stored."""
    t = Translator(locale_from_hint(msg.language), ctx.rules.tz)
    return [Reply(t._("Sorry, this service is only for registered staff. If you should have "
                      "access, ask your administrator for an invite code and send "
                      "/start CODE."))]


def redeem(ctx: Context, msg: Incoming, now: datetime) -> tuple[Member | None, list[Reply]]:
    """`/start CODE`: bind the sender to the invited member."""
    t = Translator(locale_from_hint(msg.language), ctx.rules.tz)
    try:
        member = invites.redeem_invite(ctx, msg.args[0], msg.channel, msg.sender, now)
    except WorkflowError as error:
        return None, [Reply(describe(t, error))]
    t = Translator(member.locale, ctx.rules.tz)
    return member, [Reply(t._("Welcome, %(name)s! You are registered. Send /help to see what "
                              "you can do.", name=member.name))]


def welcome(turn: Turn) -> list[Reply]:
    """`/start` from a known member."""
    return turn.say(turn._("Welcome back, %(name)s. Send /help to see what you can do.",
                           name=turn.member.name))


def invite(turn: Turn) -> list[Reply]:
    """`/invite <member code>` (admins): a one-time code for that member."""
    if not access.may(turn.actor, Command.INVITE):
        return turn.say(turn._("Only an admin may do this."))
    if len(turn.msg.args) != 1:
        return turn.say(turn._("Usage: /invite <member code>"))
    try:
        code = invites.create_invite(turn.ctx, turn.msg.args[0], turn.member_id, turn.now)
    except WorkflowError as error:
        return turn.say(describe(turn.t, error))
    return turn.say(turn._(
        "Invite code for %(member)s: %(code)s (valid until %(until)s, once). They send: "
        "/start %(code)s", member=turn.msg.args[0], code=code.code,
        until=turn.t.datetime(code.expires_at)))

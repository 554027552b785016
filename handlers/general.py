"""What every member can do: /help (per role), /lang, /cancel, /mine."""

from __future__ import annotations

from handlers import cards
from handlers.buttons import lang_button
from handlers.i18n import N_, parse_locale
from handlers.labels import LANGUAGE_NAMES
from handlers.messages import Reply
from handlers.turn import Turn
from models import Locale, Role
from workflows import members, queries

READERS = frozenset({Role.DISPATCHER, Role.ADMIN, Role.SUPERVISOR})
DECIDERS = frozenset({Role.DISPATCHER, Role.ADMIN})

_HELP: list[tuple[frozenset[Role] | None, str]] = [
    (frozenset({Role.CALLER}), N_("/call: raise a call for help")),
    (frozenset({Role.CALLER}), N_("/mine: my calls, to withdraw or confirm them")),
    (frozenset({Role.LIAISON, Role.HEAD}),
     N_("Alerts come with buttons: acknowledge, respond, ask for an extension, return, "
        "resolve")),
    (READERS, N_("/stats [YYYY-MM]: the month's figures and ranking")),
    (READERS | {Role.HEAD},
     N_("/report [YYYY-MM]: the month's report, with the chart and the workbook")),
    (READERS, N_("/overdue: calls past a deadline")),
    (READERS, N_("/find <number or words>: find calls")),
    (DECIDERS, N_("/assign <number> <department code>: dispatch a call")),
    (DECIDERS, N_("/approve <request> [department code] or /refuse <request>: decide an "
                  "extension or a return")),
    (frozenset({Role.ADMIN}), N_("/invite <member code>: a one-time registration code")),
    (None, N_("/lang: language")),
    (None, N_("/cancel: stop what you are doing")),
    (None, N_("/help: this list")),
]


def help_(turn: Turn) -> list[Reply]:
    lines = [turn._("What you can do:")]
    lines += [turn._(text) for roles, text in _HELP if roles is None or turn.member.role in roles]
    return turn.say("\n".join(lines))


def lang(turn: Turn) -> list[Reply]:
    """`/lang` shows the choices; `/lang en` switches at once."""
    if turn.msg.args:
        return switch(turn, turn.msg.args[0])
    row = [lang_button(LANGUAGE_NAMES[locale.value], locale.value) for locale in Locale]
    return turn.say(turn._("Choose your language:"), [row])


def switch(turn: Turn, value: str) -> list[Reply]:
    locale = parse_locale(value)
    if locale is None:
        return turn.say(turn._("Unknown language. Choose zh_Hans, zh_Hant or en."))
    turn.member = members.set_locale(turn.ctx, turn.member_id, locale)
    turn.t = type(turn.t)(locale, turn.t.tz)
    return turn.say(turn._("I will speak %(language)s with you.",
                           language=LANGUAGE_NAMES[locale.value]))


def cancel(turn: Turn) -> list[Reply]:
    if turn.dialog is None:
        return turn.say(turn._("There is nothing to cancel."))
    turn.end()
    return turn.say(turn._("Cancelled. Nothing was sent."))


def mine(turn: Turn) -> list[Reply]:
    """`/mine`: the caller's latest calls, each with what can be done now."""
    if turn.member.role is not Role.CALLER:
        return turn.say(turn._("Only town and village staff raise calls."))
    views = queries.calls_of_caller(turn.ctx, turn.member_id)
    if not views:
        return turn.say(turn._("You have not raised any calls yet. Send /call to raise one."))
    replies = [Reply(turn._("Your latest calls:"))]
    for view in views:
        buttons = cards.caller_buttons(turn.t, view)
        replies.append(Reply(cards.line(turn.t, view), tuple(tuple(r) for r in buttons)))
    return replies

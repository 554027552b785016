"""What every member can do: /help (per role), /lang, /cancel, /mine."""

from __future__ import annotations

from handlers import audience, cards, reports
from handlers.buttons import lang_button
from handlers.i18n import N_, parse_locale
from handlers.labels import LANGUAGE_NAMES
from handlers.messages import Reply
from handlers.turn import Turn
from models import Locale
from workflows import access, members, queries, queues
from workflows.access import Command, Permission

# Each line is shown to whoever `workflows.access` lets run its command;
# None: everyone. The department's line is about alert buttons, not a command.
_DEPARTMENT = "department"
_REPORT = "report"  # the district's report, or the member's own department's
_HELP: list[tuple[Command | Permission | str | None, str]] = [
    (Command.CALL, N_("/call: raise a call for help")),
    (Command.CALL, N_("/mine: my calls, to withdraw or confirm them")),
    (Command.CALL, N_("Or just send a photo of the problem: it starts a call")),
    (_DEPARTMENT,
     N_("Alerts come with buttons: acknowledge, respond, ask for an extension, return, "
        "resolve")),
    (_DEPARTMENT,
     N_("/mine: your department's open calls, most urgent first, with their buttons")),
    (Command.QUEUE, N_("/queue: calls and requests waiting for a decision")),
    (Command.ANSWER, N_("/answer: data requests your town has yet to answer")),
    (Command.REQUEST,
     N_("/request: ask the towns for data (数据报送), after checking what was reported")),
    (Command.BURDEN, N_("/burden [YYYY-MM]: the form-burden report")),
    (Command.STATS, N_("/stats [YYYY-MM]: the month's figures and ranking")),
    (_REPORT, N_("/report [YYYY-MM]: the month's report, with the chart and the workbook")),
    (Command.OVERDUE, N_("/overdue: calls past a deadline")),
    (Command.FIND, N_("/find <number or words>: find calls")),
    (Command.ASSIGN, N_("/assign <number> <department code>: dispatch a call")),
    (Command.APPROVE, N_("/approve <request> [department code] or /refuse <request>: decide an "
                         "extension or a return")),
    (Command.INVITE, N_("/invite <member code>: a one-time registration code")),
    (Command.BOARD, N_("/board: a link to the dispatch board")),
    (Permission.REVOKE_BOARD_SESSIONS,
     N_("/board revoke <member code> or all: end board sessions")),
    (None, N_("/lang: language")),
    (None, N_("/cancel: stop what you are doing")),
    (None, N_("/help: this list")),
]


def _shown(turn: Turn, what: Command | Permission | str | None) -> bool:
    if what is None:
        return True
    if isinstance(what, Command | Permission):
        return access.may(turn.actor, what)
    if what == _REPORT:
        return reports.report_scope(turn) is not None
    return turn.member.role in access.DEPARTMENT_ROLES


def help_(turn: Turn) -> list[Reply]:
    lines = [turn._("What you can do:")]
    lines += [turn._(text) for what, text in _HELP if _shown(turn, what)]
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
    """`/mine`: a caller's latest calls, or a liaison's or head's department's
    open calls, most urgent first — each with what can be done now."""
    if audience.sees_department_calls(turn.member):
        return _department_calls(turn)
    if not audience.raises_calls(turn.member):
        if audience.sees_dispatch_queue(turn.member):
            return turn.say(turn._("What waits for the command centre is in /queue."))
        return turn.say(turn._("Only town and village staff raise calls."))
    views = queries.calls_of_caller(turn.ctx, turn.member_id)
    if not views:
        return turn.say(turn._("You have not raised any calls yet. Send /call to raise one."))
    replies = [Reply(turn._("Your latest calls:"))]
    for view in views:
        buttons = cards.caller_buttons(turn.t, view)
        replies.append(Reply(cards.line(turn.t, view), tuple(tuple(r) for r in buttons)))
    return replies


def _department_calls(turn: Turn) -> list[Reply]:
    waiting = queues.department_calls(turn.ctx, turn.member.unit_id)
    if not waiting:
        return turn.say(turn._("Your department has no open calls."))
    replies = [Reply(turn._("Your department's open calls, most urgent first:"))]
    for item in waiting:
        text = cards.line(turn.t, item.view)
        if item.due is not None and item.limit is not None:
            text += "\n" + cards.time_left(turn.t, turn.ctx.rules, item.view, item.limit,
                                           item.due, turn.now)
        buttons = cards.department_buttons(turn.t, item.view, item.role)
        replies.append(Reply(text, tuple(tuple(r) for r in buttons)))
    return replies

"""The command menu a chat app shows (Telegram's `setMyCommands`), per role
and language: the commands of /help, each with a short description."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.i18n import N_, Translator
from models import Locale, Role
from workflows import access
from workflows.access import Actor, Command

# (command, the policy's command or None for everyone, description)
_MENU: list[tuple[str, Command | None, str]] = [
    ("call", Command.CALL, N_("Raise a call")),
    ("mine", Command.MINE, N_("My calls")),
    ("queue", Command.QUEUE, N_("Waiting for a decision")),
    ("answer", Command.ANSWER, N_("Answer data requests")),
    ("request", Command.REQUEST, N_("Ask the towns for data")),
    ("burden", Command.BURDEN, N_("Form-burden report")),
    ("stats", Command.STATS, N_("Monthly figures")),
    ("overdue", Command.OVERDUE, N_("Overdue calls")),
    ("find", Command.FIND, N_("Find calls")),
    ("assign", Command.ASSIGN, N_("Dispatch a call")),
    ("approve", Command.APPROVE, N_("Approve a request")),
    ("refuse", Command.REFUSE, N_("Refuse a request")),
    ("invite", Command.INVITE, N_("Invite a member")),
    ("board", Command.BOARD, N_("The dispatch board")),
    ("help", None, N_("What I can do")),
    ("lang", None, N_("Language")),
    ("cancel", None, N_("Stop what you are doing")),
]


def command_menu(role: Role, locale: Locale) -> list[tuple[str, str]]:
    """(command, description) pairs for `role`, described in `locale`. A
    command needs no call, so the policy answers it from the role alone."""
    t = Translator(locale, ZoneInfo("Asia/Shanghai"))
    someone = Actor(member_id=0, role=role, unit_id=0)
    return [(command, t._(text)) for command, what, text in _MENU
            if what is None or access.may(someone, what)]

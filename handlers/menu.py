"""The command menu a chat app shows (Telegram's `setMyCommands`), per role
and language: the commands of /help, each with a short description."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from handlers.i18n import N_, Translator
from models import Locale, Role

ALL = frozenset(Role)
CALLERS = frozenset({Role.CALLER})
READERS = frozenset({Role.DISPATCHER, Role.ADMIN, Role.SUPERVISOR})
DECIDERS = frozenset({Role.DISPATCHER, Role.ADMIN})

_MENU: list[tuple[str, frozenset[Role], str]] = [
    ("call", CALLERS, N_("Raise a call")),
    ("mine", CALLERS, N_("My calls")),
    ("stats", READERS, N_("Monthly figures")),
    ("report", READERS | {Role.HEAD}, N_("Monthly report with chart and workbook")),
    ("overdue", READERS, N_("Overdue calls")),
    ("find", READERS, N_("Find calls")),
    ("assign", DECIDERS, N_("Dispatch a call")),
    ("approve", DECIDERS, N_("Approve a request")),
    ("refuse", DECIDERS, N_("Refuse a request")),
    ("invite", frozenset({Role.ADMIN}), N_("Invite a member")),
    ("help", ALL, N_("What I can do")),
    ("lang", ALL, N_("Language")),
    ("cancel", ALL, N_("Stop what you are doing")),
]


def command_menu(role: Role, locale: Locale) -> list[tuple[str, str]]:
    """(command, description) pairs for `role`, described in `locale`."""
    t = Translator(locale, ZoneInfo("Asia/Shanghai"))
    return [(command, t._(text)) for command, roles, text in _MENU if role in roles]

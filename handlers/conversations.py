"""The conversations' entry point: one `Incoming` in, a list of `Reply` out.

`Conversations.handle` identifies the sender (strangers get a polite refusal
and nothing is stored), drops a platform's redelivery, loads the chat's
dialog from the database, and hands the message to the command, button or
dialog step it is for. It holds no state of its own: two instances — two
processes — on one database take turns in the same conversation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from handlers import (
    actions,
    audience,
    board,
    burden,
    dialogs,
    dispatch,
    freetext,
    general,
    raising,
    registration,
    reports,
)
from handlers.buttons import parse
from handlers.i18n import Translator
from handlers.messages import Incoming, Reply, compact
from handlers.turn import Turn
from models import HandledUpdate, session_scope
from workflows import accounts
from workflows.context import Context

log = logging.getLogger(__name__)

COMMANDS: dict[str, Callable[[Turn], list[Reply]]] = {
    "start": registration.welcome,
    "call": raising.start,
    "mine": general.mine,
    "help": general.help_,
    "lang": general.lang,
    "cancel": general.cancel,
    "stats": dispatch.stats,
    "report": reports.report_command,
    "overdue": dispatch.overdue,
    "queue": dispatch.queue,
    "find": dispatch.find,
    "assign": dispatch.assign,
    "approve": lambda turn: dispatch.decide(turn, approve=True),
    "refuse": lambda turn: dispatch.decide(turn, approve=False),
    "invite": registration.invite,
    "board": board.login_link,
    "request": burden.start,
    "answer": burden.answer_command,
    "burden": burden.report,
}

# Commands that leave a dialog in progress as it is, with its question asked again.
_KEEPS_DIALOG = frozenset(COMMANDS) - {"cancel", "call", "request"}


class Conversations:
    """Every conversation of youhu, for every channel."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def handle(self, msg: Incoming, now: datetime, once: bool = False) -> list[Reply]:
        """Answer one message from a member (or a stranger). `once`: the
        caller guarantees the delivery is handled once (the durable inbox,
        whose row is marked done in the same transaction), so no
        `HandledUpdate` is written for it."""
        member = accounts.member_by_account(self.ctx, msg.channel, msg.sender)
        if msg.command == "start" and msg.args and (member is None or msg.channel != "console"):
            if not once and self._seen(msg, now):
                return []
            _, replies = registration.redeem(self.ctx, msg, now)
            return replies
        if member is None:
            return registration.stranger(self.ctx, msg)
        if not once and self._seen(msg, now):
            return []
        turn = Turn(
            ctx=self.ctx,
            msg=msg,
            member=member,
            t=Translator(member.locale, self.ctx.rules.tz),
            now=now,
            dialog=dialogs.load(self.ctx, msg.channel, dialogs.chat_key(msg.chat, msg.sender)),
        )
        if msg.command is not None:
            return compact(self._command(turn))
        if msg.button is not None:
            return compact(self._button(turn))
        if turn.dialog is not None:
            flow = actions.FLOWS.get(turn.dialog.flow)
            if flow is None:  # a flow from an older version: start afresh
                turn.end()
            else:
                typed = _typed_button(turn, flow.prompt(turn, turn.dialog))
                if typed is not None:  # the label of a key of Telegram's reply keyboard
                    turn.msg = replace(msg, text=None, button=typed)
                    return compact(self._button(turn))
                return compact(flow.on_input(turn, turn.dialog))
        if (msg.photo is not None or msg.location is not None) and audience.raises_calls(member):
            return compact(raising.start_with(turn))
        return compact(freetext.answer(turn))

    def _seen(self, msg: Incoming, now: datetime) -> bool:
        """True when this delivery was handled before (platforms redeliver
        what they think was lost). Recorded before handling: a crash midway
        loses the message rather than doing its action twice."""
        if msg.delivery_id is None:
            return False
        try:
            with session_scope(self.ctx.engine) as session:
                session.add(HandledUpdate(channel=msg.channel, delivery_id=msg.delivery_id,
                                          handled_at=now))
                session.commit()
        except IntegrityError:
            log.info("dropping redelivered %s update %s", msg.channel, msg.delivery_id)
            return True
        return False

    def _command(self, turn: Turn) -> list[Reply]:
        name = turn.msg.command or ""
        handler = COMMANDS.get(name)
        if handler is None:
            replies = turn.say(turn._("Unknown command /%(command)s. Send /help to see what you "
                                      "can do.", command=name))
        elif name == "start" and turn.msg.args:
            replies = self._console_start(turn)
        else:
            replies = handler(turn)
        if name in _KEEPS_DIALOG or handler is None:
            replies += self._reminder(turn)
        return replies

    def _console_start(self, turn: Turn) -> list[Reply]:
        """On the console, `/start CODE` only checks and uses up the code
        (the console has no account to bind)."""
        _, replies = registration.redeem(self.ctx, turn.msg, turn.now)
        return replies

    def _reminder(self, turn: Turn) -> list[Reply]:
        """After a command in the middle of a dialog: the dialog is intact,
        and its question is asked again."""
        if turn.dialog is None:
            return []
        flow = actions.FLOWS.get(turn.dialog.flow)
        if flow is None:
            return []
        return [Reply(turn._("(What you were doing is kept. /cancel drops it.)")),
                flow.prompt(turn, turn.dialog)]

    def _button(self, turn: Turn) -> list[Reply]:
        pressed = parse(turn.msg.button or "")
        if pressed is None:
            return turn.say(turn._("Unknown button; nothing changed.")) + self._reminder(turn)
        if pressed.kind == "call":
            return actions.press(turn, pressed)
        if pressed.kind == "request":
            return dispatch.press(turn, pressed)
        if pressed.kind == "data":
            return burden.press(turn, pressed)
        if pressed.kind == "lang":
            return general.switch(turn, pressed.value)
        dialog = turn.dialog
        if dialog is None or pressed.nonce != dialog.nonce:
            return turn.say(turn._("That button belongs to a finished conversation; nothing "
                                   "changed.")) + self._reminder(turn)
        if pressed.value == "x":
            return general.cancel(turn)
        return actions.FLOWS[dialog.flow].on_button(turn, dialog, pressed.value)


def _typed_button(turn: Turn, prompt: Reply) -> str | None:
    """The data of the pending question's button whose label the member
    typed (what a key of a reply keyboard sends), or None."""
    typed = (turn.msg.text or "").strip()
    if not typed or turn.msg.photo is not None:
        return None
    return next((b.data for b in prompt.all_buttons if b.label.strip() == typed), None)

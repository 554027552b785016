"""One turn of a conversation: the message, who sent it, their dialog, and
the helpers every handler uses to answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from handlers import dialogs
from handlers.buttons import flow_button, new_nonce
from handlers.dialogs import DialogState
from handlers.i18n import Translator
from handlers.messages import Button, Incoming, Reply
from models import Member
from workflows.access import Actor
from workflows.context import Context


@dataclass
class Turn:
    """What a handler gets: the context, the incoming message, the member
    (already identified), their translator, the time, and their dialog."""

    ctx: Context
    msg: Incoming
    member: Member
    t: Translator
    now: datetime
    dialog: DialogState | None

    @property
    def chat_key(self) -> str:
        return dialogs.chat_key(self.msg.chat, self.msg.sender)

    @property
    def member_id(self) -> int:
        return self.member.id or 0

    @property
    def actor(self) -> Actor:
        """The member as `workflows.access` sees them (for a command's check;
        the use cases build their own from the database)."""
        return Actor.of(self.member)

    def _(self, message: str, **params: Any) -> str:
        return self.t._(message, **params)

    def say(
        self,
        text: str,
        buttons: Sequence[Sequence[Button]] = (),
        photos: Sequence[str] = (),
    ) -> list[Reply]:
        return [Reply(text, tuple(tuple(row) for row in buttons if row), tuple(photos))]

    # --- dialog state -----------------------------------------------------

    def begin(self, flow: str, step: str, **data: Any) -> DialogState:
        """Open a dialog (with a fresh nonce for its buttons) and save it."""
        state = DialogState(flow, step, {"nonce": new_nonce(), **data})
        self.keep(state)
        return state

    def keep(self, state: DialogState) -> None:
        """Save `state` now: the next message may reach another process."""
        dialogs.save(self.ctx, self.msg.channel, self.chat_key, self.member_id, state, self.now)
        self.dialog = state

    def end(self) -> None:
        dialogs.clear(self.ctx, self.msg.channel, self.chat_key)
        self.dialog = None

    def choice(self, state: DialogState, label: str, value: str) -> Button:
        return flow_button(label, state.nonce, value)

    def cancel_button(self, state: DialogState) -> Button:
        return flow_button(self._("Cancel"), state.nonce, "x")


class Flow(Protocol):
    """A conversation that asks questions: raising a call, a liaison's note…"""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        """The question `state` waits on (asked again after an interruption)."""

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        """Text, a photo or a location sent while `state` waits."""

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        """A press on one of this dialog's buttons (not "x", cancel)."""

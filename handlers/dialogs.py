"""Dialog state in the database: which question a chat is waiting on, and the
half-filled answers. Saved at every step (see `models.Dialog`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from models import Dialog, HandledUpdate, session_scope
from workflows.context import Context


@dataclass
class DialogState:
    """An open conversation: its `flow` (e.g. "raise"), the `step` waiting
    for an answer, and `data` so far (JSON-serialisable; `nonce` marks its
    buttons)."""

    flow: str
    step: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def nonce(self) -> str:
        return str(self.data.get("nonce", ""))


def chat_key(chat: str, sender: str) -> str:
    """Where a dialog is kept: the chat, and in a group chat the sender too,
    so two members in one group never answer each other's questions."""
    return chat if chat == sender else f"{chat}/{sender}"


def load(ctx: Context, channel: str, chat: str) -> DialogState | None:
    with session_scope(ctx.engine) as session:
        row = session.get(Dialog, (channel, chat))
        if row is None:
            return None
        return DialogState(row.flow, row.step, dict(row.data))


def save(ctx: Context, channel: str, chat: str, member_id: int, state: DialogState,
         now: datetime) -> None:
    """Write the state; committed before the bot answers, so the answer never
    describes a step the database does not have."""
    with session_scope(ctx.engine) as session:
        # An UPDATE first (a dialog's later steps), an INSERT only for a new
        # one: no read before the write.
        values: dict[str, Any] = {"member_id": member_id, "flow": state.flow,
                                  "step": state.step, "data": dict(state.data),
                                  "updated_at": now}
        updated = session.execute(sa.update(Dialog).where(
            col(Dialog.channel) == channel, col(Dialog.chat) == chat).values(**values))
        if not getattr(updated, "rowcount", 0):
            session.add(Dialog(channel=channel, chat=chat, **values))
        session.commit()


def claim_step(ctx: Context, channel: str, chat: str, step: str, claimed: str) -> bool:
    """Move the dialog from `step` to `claimed` if it is still at `step`, in
    one statement: of two presses racing (a double tap handled by two
    processes) exactly one wins, so a call is never raised twice."""
    with session_scope(ctx.engine) as session:
        result = session.execute(
            sa.update(Dialog)
            .where(col(Dialog.channel) == channel, col(Dialog.chat) == chat,
                   col(Dialog.step) == step)
            .values(step=claimed)
        )
        session.commit()
        return bool(getattr(result, "rowcount", 0) == 1)


def prune(ctx: Context, before: datetime) -> int:
    """Forget dialogs untouched since `before` (abandoned half-way) and the
    record of deliveries handled before then (platforms redeliver within
    minutes, not weeks). For a periodic routine; returns rows removed."""
    with session_scope(ctx.engine) as session:
        removed = 0
        for model, column in ((Dialog, Dialog.updated_at),
                              (HandledUpdate, HandledUpdate.handled_at)):
            result = session.execute(sa.delete(model).where(col(column) < before))
            removed += int(getattr(result, "rowcount", 0) or 0)
        session.commit()
        return removed


def clear(ctx: Context, channel: str, chat: str) -> None:
    with session_scope(ctx.engine) as session:
        row = session.get(Dialog, (channel, chat))
        if row is not None:
            session.delete(row)
            session.commit()

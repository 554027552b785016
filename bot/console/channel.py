"""The console channel: the conversations in a terminal, no token, no network.

`youhu console --as <member code>` reads one input per line — from a
terminal or piped standard input — and prints the bot's replies:

- text is sent as typed; `/command args` is a command;
- a number presses the button shown with that number (`'5` sends "5" as text);
- `photo PATH [caption]` sends the image file at PATH as a photo, and
  `file PATH` any file (a filled-in Excel sheet) as a document; files the
  bot sends are printed as `[file] name: path` (in the media store);
- `lat,lon` (e.g. `23.28,113.27`) shares a location;
- `:as <member code>` switches to another member; `:quit` ends; `#` starts a comment.

Each input goes the way a platform's update goes (`bot.inbox`): stored in
the inbox (channel "console", the session as its chat), then handled — the
conversation's effects committed with the record that it was handled — and
answered. After every input the messages the outbox holds for the current
member are delivered too (recorded as a `Delivery` on channel "console"),
so one person can play every side of a call by switching members.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlmodel import col, select

from bot.inbox import converse, from_json
from handlers.conversations import Conversations
from handlers.messages import Button, Incoming, Location, Reply
from handlers.notices import render
from models import Delivery, Member, OutboxMessage, OutboxStatus, Unit, session_scope
from workflows import accounts, inbox
from workflows.context import Context

CHANNEL = "console"
_LOCATION = re.compile(r"^\s*(-?\d{1,3}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


class Console:
    """One terminal session, acting as one member at a time."""

    def __init__(self, ctx: Context, member_code: str, out: TextIO,
                 clock: Callable[[], datetime]) -> None:
        self.ctx = ctx
        self.conversations = Conversations(ctx)
        self.member_code = member_code
        self.out = out
        self.clock = clock
        self.buttons: list[Button] = []
        # The session is the console's chat in the inbox; its inputs are numbered.
        self.session = "console-" + secrets.token_hex(6)
        self._inputs = 0

    def run(self, lines: Iterable[str]) -> int:
        self._announce()
        self._deliver()
        for raw in lines:
            line = raw.rstrip("\n")
            if line.strip() in (":quit", ":q"):
                break
            self.feed(line)
        return 0

    def feed(self, line: str) -> None:
        """Handle one line of input."""
        stripped = line.strip()
        if stripped.startswith("#"):
            return
        self._echo(line)
        if stripped.startswith(":as"):
            code = stripped[3:].strip()
            if not code:
                self._print("usage: :as <member code>")
                return
            self.member_code = code
            self.buttons = []
            self._announce()
            self._deliver()
            return
        payload = self._payload(line)
        if payload is None:
            return
        self._show(self._through_inbox(payload), fresh=True)
        self._deliver(fresh=False)

    def _payload(self, line: str) -> dict[str, Any] | None:
        """What the input is, as the inbox keeps it (a button number resolved
        to the button's data); None, with a word why, for an unusable input."""
        member = {"member": self.member_code}
        stripped = line.strip()
        if stripped.isdigit() and self.buttons:
            number = int(stripped)
            if 1 <= number <= len(self.buttons):
                return {**member, "button": self.buttons[number - 1].data}
            self._print(f"(no button {number}; the buttons are 1–{len(self.buttons)})")
            return None
        if stripped.startswith("'"):
            return {**member, "text": stripped[1:]}
        if stripped.startswith(("photo ", "file ")) or stripped in ("photo", "file"):
            parts = stripped.split(maxsplit=2)
            if len(parts) < 2:
                self._print(f"usage: {parts[0]} PATH" + (" [caption]" if parts[0] == "photo"
                                                          else ""))
                return None
            path = Path(parts[1]).expanduser()
            if not path.is_file():
                self._print(f"(no such file: {path})")
                return None
            return {**member, "photo": str(path.resolve()),
                    "caption": parts[2] if len(parts) > 2 else None}
        match = _LOCATION.match(stripped)
        if match:
            return {**member, "location": [float(match[1]), float(match[2])]}
        return {**member, "line": line}

    @staticmethod
    def _incoming(payload: dict[str, Any]) -> Incoming:
        """The stored input as the conversations take it (no delivery id: the
        inbox has already made sure it is handled once)."""
        code = str(payload["member"])
        who = (CHANNEL, code, code)
        if "button" in payload:
            return Incoming(*who, button=str(payload["button"]))
        if "text" in payload:
            return Incoming(*who, text=str(payload["text"]))
        if "photo" in payload:
            caption = payload.get("caption")
            return Incoming(*who, photo=Path(payload["photo"]).read_bytes(),
                            text=str(caption) if caption is not None else None)
        if "location" in payload:
            lat, lon = payload["location"]
            return Incoming(*who, location=Location(float(lat), float(lon)))
        return Incoming.from_text(CHANNEL, code, code, str(payload.get("line", "")))

    def _through_inbox(self, payload: dict[str, Any]) -> list[Reply]:
        """Store the input, then handle and answer it as the inbox's worker
        would (this session's chat only: one input at a time, in order)."""
        self._inputs += 1
        inbox.store(self.ctx, CHANNEL, f"{self.session}:{self._inputs}", self.session,
                    payload, self.clock())
        replies: list[Reply] = []
        for item in inbox.claim(self.ctx, CHANNEL, self.clock(), limit=1, chat=self.session):
            try:
                replies = (from_json(item.result or []) if item.done else
                           converse(self.ctx, self.conversations, item,
                                    self._incoming(item.payload), self.clock))
            except Exception as error:
                inbox.failed(self.ctx, item, self.clock(), f"{type(error).__name__}: {error}")
                raise
            inbox.answered(self.ctx, item, self.clock())
        return replies

    # --- output ------------------------------------------------------------

    def _echo(self, line: str) -> None:
        if not sys.stdin.isatty() or self.out is not sys.stdout:
            self._print(f"{self.member_code}> {line}")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _show(self, replies: list[Reply], fresh: bool) -> None:
        if fresh:
            self.buttons = []
        for reply in replies:
            lines = reply.text.splitlines() or [""]
            self._print("  " + "\n  ".join(lines))
            for sha in reply.photos:
                self._print(f"    [photo] {self.ctx.media.path(sha)}")
            for document in reply.documents:
                self._print(f"    [file] {document.name}: {self.ctx.media.path(document.sha256)}")
            for row in reply.buttons:
                cells = []
                for button in row:
                    self.buttons.append(button)
                    cells.append(f"[{len(self.buttons)}] {button.label}")
                self._print("    " + "   ".join(cells))

    def _announce(self) -> None:
        with session_scope(self.ctx.engine) as session:
            member = session.exec(select(Member).where(Member.code == self.member_code)).first()
            unit = session.get(Unit, member.unit_id) if member else None
        if member is None:
            self._print(f"— {self.member_code}: no such member (you are a stranger now)")
        else:
            self._print(f"— acting as {member.name} ({member.code}, {member.role.value}, "
                        f"{unit.name if unit else '?'})")

    def _deliver(self, fresh: bool = False) -> None:
        """Print the current member's queued messages and record them delivered."""
        now = self.clock()
        with session_scope(self.ctx.engine) as session:
            member = session.exec(select(Member).where(Member.code == self.member_code)).first()
            if member is None:
                return
            delivered = select(Delivery.message_id).where(Delivery.channel == CHANNEL)
            messages = list(session.exec(
                select(OutboxMessage).where(
                    OutboxMessage.member_id == member.id,
                    OutboxMessage.status == OutboxStatus.PENDING,
                    col(OutboxMessage.not_before) <= now,
                    col(OutboxMessage.id).not_in(delivered),
                ).order_by(col(OutboxMessage.id))
            ))
        if not messages:
            return
        if fresh:
            self.buttons = []
        for message in messages:
            self._print(f"  ✉ [{message.template}]")
            self._show(render(self.ctx, member, message.template, message.params,
                              message.call_id), fresh=False)
        with session_scope(self.ctx.engine) as session:
            for message in messages:
                session.add(Delivery(message_id=message.id or 0, channel=CHANNEL,
                                     delivered_at=now))
                # A member with a real channel still gets it there from the
                # deliverer; only a console-only member's message is done here.
                if not accounts.account_map(session, member.id or 0):
                    row = session.get(OutboxMessage, message.id)
                    if row is not None:
                        row.status = OutboxStatus.DELIVERED
                        row.delivered_at = now
                        session.add(row)
            session.commit()


def read_lines(stream: TextIO) -> Iterable[str]:
    """Lines from a terminal (with a prompt) or from a pipe."""
    if stream.isatty():
        while True:
            try:
                yield input("> ")
            except EOFError:
                return
    else:
        yield from stream

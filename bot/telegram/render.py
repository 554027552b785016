"""How a `Reply` looks on Telegram: text cut to the message limit, inline
buttons or a reply keyboard, and what a pressed message says afterwards."""

from __future__ import annotations

from collections.abc import Sequence

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from handlers.buttons import parse as parse_button
from handlers.messages import Reply
from workflows.photos import image_type

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at line ends where
    possible so a card is not split mid-line."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def keyboard(reply: Reply) -> Markup | None:
    """Inline buttons; or, for a reply that asks for the location, a reply
    keyboard: "📍 share my location" (one tap, `request_location`) above the
    reply's buttons as keys that send their label — a message carries one
    keyboard or the other, never both."""
    if reply.share_location:
        rows = [[KeyboardButton(reply.share_location, request_location=True)]]
        rows += [[KeyboardButton(b.label) for b in row] for row in reply.buttons]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
         for row in reply.buttons]
    )


def extension(data: bytes) -> str:
    kind = image_type(data)
    return kind.split("/")[1].replace("jpeg", "jpg") if kind else "bin"


def pressed_label(message: Message, data: str) -> str | None:
    """The label of the inline button with `data` on `message`."""
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def outcome(pressed: str, label: str | None, replies: Sequence[Reply]) -> str:
    """What a pressed message says it led to, once its buttons are retired:
    the choice made, for an answer in a dialog or a press that opened one
    (its next question carries the dialog's buttons); else the first line of
    the answer ("您已签收 BY-2026-000001。", or why nothing changed)."""
    first = next((r for r in replies if r.text.strip()), None)
    opened = first is not None and any(b.data.startswith("f:") for b in first.all_buttons)
    press = parse_button(pressed)
    if label and (opened or (press is not None and press.kind == "flow")):
        return "✓ " + label
    return first.text.strip().splitlines()[0] if first is not None else ("✓ " + (label or ""))

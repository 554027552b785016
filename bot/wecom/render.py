"""How a `Reply` looks on WeCom: text cut at 2,048 bytes, and buttons as
button_interaction template cards (always with a main_title)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from handlers.messages import Button

TEXT_LIMIT = 2048  # bytes of UTF-8; WeCom cuts longer text silently

CARD_BUTTONS = 6  # button_interaction's button_list holds at most six

TITLE_LIMIT = 26  # characters WeCom recommends for main_title.title

SUBTITLE_LIMIT = 112  # characters WeCom recommends for sub_title_text


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` bytes of UTF-8, cut at a line end
    where one is in the second half of a piece, else between characters."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        head = rest.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
        cut = head.rfind("\n")
        cut = cut if cut > len(head) // 2 else len(head)
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with "…" when cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def task_id(call_id: int | None) -> str:
    """A card's task_id: unique per card for the app (WeCom refuses a reused
    one), at most 128 of letters, digits and `_-@`."""
    return f"yh{call_id or 0}-{secrets.token_hex(8)}"


def template_cards(text: str, buttons: Sequence[Button], call_id: int | None
                   ) -> tuple[list[dict[str, Any]], bool]:
    """The button_interaction cards for a reply with buttons, and whether
    its text is too long for a card (then it is sent as text first).

    Six buttons a card; the first card carries the text, the others the
    title and "(n/m)" so a member sees they belong together. Every card has
    a main_title (WeCom requires it for button_interaction and refuses the
    card with 40058 without): the first line if short, else its start, with
    the whole text in the sub-title."""
    stripped = text.strip()
    head, _, rest = stripped.partition("\n")
    head, rest = head.strip(), rest.strip()
    if len(head) <= TITLE_LIMIT:
        title, body = head, rest
    else:  # the first line is a sentence: its start is the title, all of it the sub-title
        title, body = clip(head, TITLE_LIMIT), stripped
    title = title or "—"  # WeCom requires main_title for a button_interaction card
    too_long = len(body) > SUBTITLE_LIMIT
    body = clip(body, SUBTITLE_LIMIT)
    unique: dict[str, Button] = {}
    for button in buttons:  # WeCom refuses a card with two buttons of one key
        unique.setdefault(button.data, button)
    chunks = [list(unique.values())[i:i + CARD_BUTTONS]
              for i in range(0, len(unique), CARD_BUTTONS)]
    cards: list[dict[str, Any]] = []
    for number, chunk in enumerate(chunks, 1):
        card_title = title
        if len(chunks) > 1:
            suffix = f" ({number}/{len(chunks)})"
            card_title = clip(title, TITLE_LIMIT - len(suffix)) + suffix
        card: dict[str, Any] = {
            "card_type": "button_interaction",
            "task_id": task_id(call_id),
            "main_title": {"title": card_title},
            "button_list": [{"text": b.label, "style": 1, "key": b.data} for b in chunk],
        }
        if number == 1 and body:
            card["sub_title_text"] = body
        cards.append(card)
    return cards, too_long

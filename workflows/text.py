"""What counts as words in a member's text.

A client can send a message made only of invisible characters — zero-width
spaces and joiners, a byte-order mark, ideographic spaces — which `str.strip`
keeps. Such a text says nothing, so it is refused as empty wherever words are
required (a description, a reason, a note).
"""

from __future__ import annotations

import unicodedata

# Unicode categories that show nothing on their own: format characters
# (U+200B–U+200F, U+2060, U+FEFF…), separators and control characters.
_INVISIBLE = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc", "Mn", "Me"})


def blank(text: str | None) -> bool:
    """True when `text` has no visible character at all."""
    return not any(unicodedata.category(char) not in _INVISIBLE for char in text or "")


def clean(text: str | None) -> str:
    """`text` without surrounding whitespace and without NUL characters
    (which show nothing and which PostgreSQL cannot store), or "" when it
    shows nothing."""
    return "" if blank(text) else (text or "").replace("\x00", "").strip()

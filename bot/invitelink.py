"""An invite as the member opens it: the Telegram deep link
`https://t.me/<bot username>?start=<code>` and its QR code as a PNG.

The bot's username comes from `getMe`. `youhu run` records it when the bot
connects (it calls getMe anyway), in a small file next to the media store —
the storage every worker shares — so `youhu invite` usually prints the link
without a network call; with no record yet it asks getMe itself. The record
is keyed by the bot's id (the token's prefix): a new token is asked again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import segno
from telegram import Bot
from telegram.error import TelegramError

from bot.settings import TelegramSettings

log = logging.getLogger(__name__)

CACHE_NAME = ".telegram-bot.json"
QR_SCALE = 10  # pixels per module: a 33×33 code is 410 px with its border, easy to scan


def _bot_id(settings: TelegramSettings) -> str | None:
    if settings.token is None:
        return None
    return settings.token.get_secret_value().partition(":")[0] or None


def remember_username(media_root: Path, settings: TelegramSettings, username: str) -> None:
    """Record the bot's username (after getMe)."""
    bot_id = _bot_id(settings)
    if bot_id is None or not username:
        return
    try:
        media_root.mkdir(parents=True, exist_ok=True)
        path = media_root / CACHE_NAME
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"bot_id": bot_id, "username": username}),
                             encoding="utf-8")
        temporary.replace(path)  # atomic: a reader never sees half a file
    except OSError as error:  # a read-only volume: the link is asked for when needed
        log.warning("recording the bot's username: %s", error)


def _remembered(media_root: Path, settings: TelegramSettings) -> str | None:
    try:
        data = json.loads((media_root / CACHE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("bot_id") == _bot_id(settings):
        username = data.get("username")
        return str(username) if username else None
    return None


async def _ask(settings: TelegramSettings) -> str | None:
    assert settings.token is not None
    bot = Bot(settings.token.get_secret_value(), base_url=settings.base_url,
              base_file_url=settings.base_file_url)
    async with bot:  # initialize() is the getMe
        return bot.username


def bot_username(media_root: Path, settings: TelegramSettings) -> str | None:
    """The bot's username: recorded, or asked (then recorded). None without a
    token or when Telegram cannot be reached (the reason is logged)."""
    if settings.token is None:
        return None
    username = _remembered(media_root, settings)
    if username is None:
        try:
            username = asyncio.run(_ask(settings))
        except (TelegramError, OSError) as error:
            log.warning("asking Telegram for the bot's username: %s", error)
            return None
        if username:
            remember_username(media_root, settings, username)
    return username


def deep_link(username: str, code: str) -> str:
    """The link that opens the bot and sends `/start <code>` in one tap."""
    return f"https://t.me/{username}?start={code}"


def write_qr(link: str, path: Path) -> Path:
    """The QR code of `link` as a PNG at `path` (error correction M: it still
    scans from a forwarded, recompressed screenshot)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    segno.make(link, error="m", micro=False).save(str(path), kind="png", scale=QR_SCALE,
                                                 border=4)
    return path

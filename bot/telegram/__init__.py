"""The Telegram channel: `render` (how a reply looks on Telegram) and
`channel` (python-telegram-bot connected to the inbox and the conversations;
PTB's `Bot` is the client)."""

from bot.telegram.channel import TelegramChannel
from bot.telegram.render import split_text

__all__ = ["TelegramChannel", "split_text"]

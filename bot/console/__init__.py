"""The console channel: a terminal session speaking to the conversations as
one member, for the demo and for trying the bot without any platform."""

from bot.console.channel import Console, read_lines

__all__ = ["Console", "read_lines"]

"""The WeCom (企业微信) channel: `client` (WeCom's API over httpx), `render`
(text and template cards) and `channel` (the signed callback and sending)."""

from bot.wecom.channel import WeComChannel
from bot.wecom.client import WeComClient, WeComError

__all__ = ["WeComChannel", "WeComClient", "WeComError"]

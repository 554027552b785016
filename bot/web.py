"""The one ASGI application: the Telegram webhook and (with WeCom) its
callback, served by uvicorn. It answers at once and leaves the work to the
channel's queue, so a platform never waits on the database."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import Generator
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.telegram import TelegramChannel

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 1024 * 1024  # a Telegram update is a few KB; refuse anything absurd
DEFAULT_TELEGRAM_PATH = "/telegram/webhook"


def telegram_path(webhook_url: str | None) -> str:
    """The path the webhook is served at: the path of `telegram.webhook_url`."""
    path = urlsplit(webhook_url or "").path
    return path if path and path != "/" else DEFAULT_TELEGRAM_PATH


def telegram_route(channel: TelegramChannel, path: str, secret: str | None) -> Route:
    """POST updates here; the `X-Telegram-Bot-Api-Secret-Token` header must
    carry the configured secret (compared in constant time)."""

    async def receive(request: Request) -> Response:
        if secret is not None:
            given = request.headers.get("x-telegram-bot-api-secret-token", "")
            if not hmac.compare_digest(given.encode(), secret.encode()):
                log.warning("telegram webhook: wrong secret token from %s",
                            request.client.host if request.client else "?")
                return PlainTextResponse("forbidden", status_code=403)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return PlainTextResponse("too large", status_code=413)
        try:
            data = json.loads(body)
        except ValueError:
            return PlainTextResponse("not JSON", status_code=400)
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return PlainTextResponse("not an update", status_code=400)
        await channel.feed(data)
        return PlainTextResponse("ok")

    return Route(path, receive, methods=["POST"])


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes — read no
    further than that, so an endless body costs nothing."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(routes: list[BaseRoute]) -> Starlette:
    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/healthz", health), *routes])


class Server(uvicorn.Server):
    """uvicorn, leaving signals to `youhu run`, which stops the channels and
    the scheduler in order before the server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

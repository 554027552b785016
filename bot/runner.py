"""`youhu run`: everything configured — the Telegram bot (polling or webhook),
the WeCom app, the scheduler and the deliverer — until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

import uvicorn
from starlette.routing import BaseRoute

from bot.app import build_context
from bot.delivery import Channel, Deliverer
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.telegram import TelegramChannel
from bot.web import Server, build_app, telegram_path, telegram_route
from models.db import schema_is_current

log = logging.getLogger(__name__)

NO_CHANNEL = """youhu run: no channel is configured.

Connect a Telegram bot: create one with @BotFather, then
  export YOUHU_TELEGRAM__TOKEN=123456:ABC...      (polling; no public address needed)
or set [telegram] token = "..." in the file named by --config / YOUHU_CONFIG.
For WeCom, see the README ("Connecting a WeCom app").

To try the conversations without any token or network:
  youhu console --as li-ming
"""


def _now() -> datetime:
    return datetime.now(UTC)


async def run(settings: Settings) -> int:
    """Run until a signal; returns the exit code."""
    if not schema_is_current(settings.database.url):
        print("youhu run: the database is not initialised or not up to date; "
              "run `youhu init` first.")
        return 2
    ctx = build_context(settings)
    channels: list[Channel] = []
    routes: list[BaseRoute] = []
    scheduler: Scheduler | None = None

    def kick() -> None:
        if scheduler is not None:
            scheduler.kick()

    telegram: TelegramChannel | None = None
    if settings.telegram.token is not None:
        telegram = TelegramChannel(ctx, settings.telegram, _now, on_queued=kick)
        channels.append(telegram)
        if settings.telegram.mode == "webhook":
            if not settings.telegram.webhook_url:
                print("youhu run: telegram.mode is webhook but telegram.webhook_url is not set")
                return 2
            secret = settings.telegram.webhook_secret
            routes.append(telegram_route(telegram, telegram_path(settings.telegram.webhook_url),
                                         secret.get_secret_value() if secret else None))
    if not channels:
        print(NO_CHANNEL)
        return 2

    deliverer = Deliverer(ctx, channels, _now)
    scheduler = Scheduler(ctx, deliverer, _now, settings.scheduler.sweep_seconds,
                          settings.scheduler.deliver_seconds, settings.scheduler.digest_at)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    server: Server | None = None
    serving: asyncio.Task[None] | None = None
    if routes:
        config = uvicorn.Config(build_app(routes), host=settings.http.host,
                                port=settings.http.port, log_level="warning",
                                access_log=False, lifespan="off")
        server = Server(config)
        serving = asyncio.create_task(server.serve())
    if telegram is not None:
        await telegram.start()
    scheduler.start()
    log.info("youhu is running (%s)", ", ".join(c.name for c in channels))
    print(f"youhu is running: {', '.join(c.name for c in channels)}. Stop with Ctrl-C.",
          flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await scheduler.stop()
        if telegram is not None:
            await telegram.stop()
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
        ctx.engine.dispose()
    print("youhu stopped.", flush=True)
    return 0

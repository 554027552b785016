"""`youhu run`: everything configured — the Telegram bot (polling or webhook),
the WeCom app (its callback served with the webhook on `http.host`:`http.port`),
the Open311 API when `open311.enabled`, the dispatch board when `board.url`
is set, the scheduler and the deliverer — until SIGTERM or Ctrl-C. Either
channel runs alone or both together."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime, timedelta

import uvicorn
from starlette.routing import BaseRoute

from bot.app import build_context
from bot.board import Board, board_routes
from bot.delivery import Channel, Deliverer
from bot.open311 import open311_routes
from bot.scheduler import Scheduler
from bot.settings import Settings
from bot.telegram import TelegramChannel
from bot.web import Server, build_app, telegram_path, telegram_route
from bot.wecom import WeComChannel
from models.db import schema_is_current

log = logging.getLogger(__name__)

NO_CHANNEL = """youhu run: no channel is configured.

Connect a Telegram bot: create one with @BotFather, then
  export YOUHU_TELEGRAM__TOKEN=123456:ABC...      (polling; no public address needed)
or set [telegram] token = "..." in the file named by --config / YOUHU_CONFIG.

Connect a WeCom (企业微信) self-built app: set all five of
  YOUHU_WECOM__CORP_ID, YOUHU_WECOM__AGENT_ID, YOUHU_WECOM__SECRET,
  YOUHU_WECOM__TOKEN, YOUHU_WECOM__ENCODING_AES_KEY
(or [wecom] in the config file); WeCom posts to https://<host>/wecom/callback,
served on [http] host and port. The README ("Connecting a WeCom app") says
how to create the app.

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
    wecom: WeComChannel | None = None
    if settings.wecom.configured:
        missing = settings.wecom.missing()
        if missing:
            print(f"youhu run: WeCom is half configured: set wecom.{', wecom.'.join(missing)} "
                  "too (see the README, \"Connecting a WeCom app\")")
            return 2
        wecom = WeComChannel(ctx, settings.wecom, _now, on_queued=kick)
        channels.append(wecom)
        routes.append(wecom.route())
    if not channels:
        print(NO_CHANNEL)
        return 2
    board: Board | None = None
    if ctx.board_url is not None:
        board, board_routes_ = board_routes(ctx, _now, changed=kick)
        routes.extend(board_routes_)
    if settings.open311.enabled:
        routes.extend(open311_routes(ctx, _now, settings.open311.max_body_bytes,
                                     settings.open311.media_timeout_seconds,
                                     settings.open311.media_private_addresses))

    deliverer = Deliverer(ctx, channels, _now)
    scheduler = Scheduler(ctx, deliverer, _now, settings.scheduler.sweep_seconds,
                          settings.scheduler.deliver_seconds, settings.scheduler.digest_at,
                          keep=timedelta(days=settings.scheduler.keep_days))
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
    if wecom is not None:
        await wecom.start()
    scheduler.start()
    if board is not None:
        print(f"The dispatch board is at {ctx.board_url}/board/ "
              f"(served on {settings.http.host}:{settings.http.port}).", flush=True)
    serving_names = ([c.name for c in channels] + (["open311"] if settings.open311.enabled
                                                   else []) + (["board"] if board else []))
    log.info("youhu is running (%s)", ", ".join(serving_names))
    print(f"youhu is running: {', '.join(serving_names)}. Stop with Ctrl-C.", flush=True)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        # Within seconds whatever the backlog (systemd, Docker and Kubernetes
        # kill after 10 s): the sends in hand finish, every other claim is
        # released for the next start, then the rounds wind down.
        await deliverer.stop()
        await scheduler.stop()
        if telegram is not None:
            await telegram.stop()
        if board is not None:
            board.stopping.set()  # end the live streams, or the server waits on them
        if server is not None:
            server.should_exit = True  # no new callbacks while the last ones finish
        if wecom is not None:
            await wecom.stop()
        if serving is not None:
            await serving
        ctx.engine.dispose()
    print("youhu stopped.", flush=True)
    return 0

"""A fake Telegram Bot API server on 127.0.0.1, for tests and benchmarks.

Who uses this: tests and benchmarks that run the *real* python-telegram-bot
``Application`` (or a bare ``Bot``) against it over HTTP — the network is
faked, not the library (style.md, example 9)::

    with FakeTelegram() as tg:
        app = (Application.builder().token(tg.token)
               .base_url(f"{tg.url}/bot").base_file_url(f"{tg.url}/file/bot").build())
        ...
        tg.user_sends_text(42, "你好")
        reply = tg.wait_for(lambda m: m.chat_id == 42)

PTB appends the token to ``base_url``, so it calls ``{url}/bot<token>/<method>``
and downloads ``{url}/file/bot<token>/<file_path>``. Like Telegram, the fake
takes GET or POST with a JSON, form-encoded or multipart body (PTB sends
form fields whose objects are JSON strings, and multipart when it uploads),
matches method names case-insensitively, answers an unknown method with 404
and a wrong token with 401.

What it does, so that tests catch what real Telegram would refuse:

- every message the bot sends or edits is recorded as a ``SentMessage`` and
  answered with a Message that PTB de-jsons (``from`` the bot, ``chat``,
  ``date``, text or caption and photo sizes, an inline keyboard echoed); a reply
  keyboard (keys under the input field, `request_location`) or its removal is
  checked and kept per chat (``reply_keyboard``); edits take inline keyboards only;
- updates a user would cause (``user_sends_text``, ``user_sends_photo``,
  ``user_presses``…) queue for ``getUpdates`` (long polling, waits capped at
  ``max_poll_timeout``), or, once a webhook is set, are POSTed to it with the
  ``X-Telegram-Bot-Api-Secret-Token`` header; ``getUpdates`` while a webhook
  is set answers 409 Conflict, as Telegram does;
- 400 Bad Request, with Telegram's wording, for text over 4096 or a caption
  over 1024 characters (UTF-16 units, after HTML parsing), empty text, HTML
  that Telegram cannot parse (an unescaped ``<``, an unsupported or unclosed
  tag, a named entity other than ``&lt; &gt; &amp; &quot;``), callback data
  over 64 bytes, an unknown file_id, editing a message that does not exist
  or with nothing changed ("message is not modified"), answering an unknown
  or already answered callback query, a malformed command list, and an
  uploaded photo Telegram would refuse (over 10 MB: PHOTO_SAVE_FILE_INVALID;
  width + height over 10,000 or sides beyond 20:1: PHOTO_INVALID_DIMENSIONS,
  read with Pillow; bytes Pillow cannot read are let through);
- failures on demand (``fail_next``: 429 with ``retry_after``, 500, or 502
  with nginx's HTML page like the real one), slow answers (``slow_next``),
  and, when configured, Telegram's rate limits (a sliding one-second window
  overall and per chat; off by default).

What it does not do: groups beyond a ``chat`` with a negative id, inline
mode, payments, webhook retries (a delivery is made once; its status is
recorded), Markdown parsing (only ``parse_mode="HTML"`` is checked).

Uploaded photos are stored; a photo the user sends is stored as three sizes
(90, 320 and 1280 px wide, largest last, each its own file_id and file). Only
the largest holds the bytes the test gave; the smaller ones hold
``b"fake-thumbnail-<width>px:" + …``, so a test can tell which size the bot
downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import io
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

import httpx
import uvicorn
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

JSON = dict[str, Any]
ChatId = int | str

DEFAULT_TOKEN = "123456789:AAFakeTelegramTokenForTests_0123456"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64

_INT_FIELDS = {"message_id", "offset", "limit", "timeout", "user_id", "max_connections",
               "cache_time", "message_thread_id", "reply_to_message_id", "from_chat_id"}
_JSON_FIELDS = {"reply_markup", "media", "commands", "scope", "entities", "caption_entities",
                "allowed_updates", "reply_parameters", "link_preview_options",
                "drop_pending_updates", "show_alert", "disable_notification", "protect_content",
                "has_spoiler", "show_caption_above_media", "disable_web_page_preview",
                "allow_sending_without_reply"}
# The methods that count against Telegram's message limits.
_RATE_LIMITED = frozenset(m.lower() for m in (
    "sendMessage", "sendPhoto", "sendMediaGroup", "sendDocument", "sendLocation",
    "copyMessage", "forwardMessage"))
_SEND_METHODS = frozenset(m.lower() for m in ("sendMessage", "sendPhoto", "sendMediaGroup",
                                               "sendDocument"))
# Telegram's limit for a file a bot uploads (sendDocument): 50 MB.
DOCUMENT_LIMIT = 50 * 1024 * 1024
# What Telegram takes as a photo (https://core.telegram.org/bots/api#sendphoto).
PHOTO_MAX_BYTES = 10 * 1024 * 1024
PHOTO_MAX_SIDE_SUM = 10_000
PHOTO_MAX_RATIO = 20
# Accepted and answered `true` without further checks, so a bot that calls them
# does not get PTB's InvalidToken (its reading of a 404).
_NO_OPS = frozenset(m.lower() for m in (
    "sendChatAction", "deleteMessage", "setChatMenuButton", "setMyDescription",
    "setMyShortDescription", "setMyName", "close", "logOut"))
_HTML_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
              "tg-spoiler", "a", "tg-emoji", "code", "pre", "blockquote", "tg-time"}
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>")
_HTML_ENTITY = re.compile(r"&(#[0-9]+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LANGUAGE = re.compile(r"[a-z]{2}")
_NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
              b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>"
              b"\r\n</body>\r\n</html>\r\n")
_USE_WEBHOOK_SECRET: Any = object()  # post_raw_update's default: the secret setWebhook gave


@dataclass(frozen=True)
class SentMessage:
    """One thing the bot did in a chat: a message sent or edited, or a callback answered.

    ``text`` and ``caption`` are as the bot sent them (HTML tags included).
    ``photos`` holds, per photo, the uploaded bytes, or the file_id / URL string
    the bot sent instead (``FakeTelegram.file_bytes`` resolves a file_id).
    For ``sendMediaGroup`` there is one record per call: ``caption`` is the
    first item's, ``message_ids`` lists every message of the album.
    ``answerCallbackQuery`` records have ``chat_id`` None and the answer in
    ``text``; ``params`` holds every parameter (``callback_query_id``,
    ``show_alert``, ``parse_mode``…).
    """

    method: str
    chat_id: ChatId | None
    text: str | None
    caption: str | None
    reply_markup: JSON | None
    photos: list[bytes | str]
    message_id: int | None
    at: float  # time.monotonic()
    message_ids: tuple[int, ...] = ()
    params: JSON = field(default_factory=dict)
    documents: list[bytes] = field(default_factory=list)  # sendDocument uploads

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row after row (empty without one)."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


@dataclass(frozen=True)
class ApiCall:
    """Any request to a Bot API method, failed ones included (uploads by name only)."""

    method: str
    params: JSON
    status: int
    at: float


@dataclass(frozen=True)
class Accepted:
    """A rate-limited send that was accepted, for computing achieved rates."""

    method: str
    chat_id: ChatId | None
    at: float


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes


@dataclass
class _Failure:
    status: int
    retry_after: int
    description: str | None
    remaining: int


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad_request(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _chat_id(value: Any) -> ChatId:
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text


def _coerce(name: str, value: Any) -> Any:
    """A form field (always a string) as the type Telegram would read it."""
    if not isinstance(value, str):
        return value
    if name == "chat_id":
        return _chat_id(value)
    if name in _INT_FIELDS and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Form fields and uploaded files of a multipart/form-data body.

    By hand, because Starlette's form parser needs python-multipart, which
    the project does not install.
    """
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise _bad_request("multipart body without a boundary")
    delimiter = b"\r\n--" + match.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value
        name = re.search(r'\bname="([^"]*)"', disposition)
        if name is None:
            continue
        if re.search(r'\bfilename\*?=', disposition):
            files[name.group(1)] = data
            filename = re.search(r'\bfilename="([^"]*)"', disposition)
            if filename is not None:  # a sent document keeps its name
                fields[f"{name.group(1)}:filename"] = filename.group(1)
        else:
            fields[name.group(1)] = data.decode("utf-8")
    return fields, files


def _check_photo(data: bytes) -> None:
    """Raise Telegram's 400 for an uploaded photo it would refuse: over 10 MB,
    width + height over 10,000 or sides beyond 20:1. Bytes Pillow cannot read
    as an image are let through (tests use tiny stand-ins for JPEGs)."""
    if len(data) > PHOTO_MAX_BYTES:
        raise _bad_request("PHOTO_SAVE_FILE_INVALID")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return
    if (width + height > PHOTO_MAX_SIDE_SUM
            or max(width, height) > PHOTO_MAX_RATIO * max(min(width, height), 1)):
        raise _bad_request("PHOTO_INVALID_DIMENSIONS")


def _check_html(text: str) -> None:
    """Raise Telegram's 400 for HTML it would not parse."""
    stack: list[str] = []
    position = 0
    while (start := text.find("<", position)) != -1:
        tag = _HTML_TAG.match(text, start)
        offset = len(text[:start].encode("utf-8"))
        if tag is None:
            raise _bad_request(
                f"can't parse entities: Unexpected end of name token at byte offset {offset}")
        closing, name = tag.group(1) == "/", tag.group(2).lower()
        if name not in _HTML_TAGS:
            kind = "end" if closing else "start"
            raise _bad_request(f'can\'t parse entities: Unsupported {kind} tag "{name}" at byte '
                               f"offset {offset}")
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            raise _bad_request(f'can\'t parse entities: Unmatched end tag at byte offset {offset}, '
                               f'expected "</{stack[-1] if stack else name}>", found "</{name}>"')
        position = tag.end()
    if stack:
        raise _bad_request(f'can\'t parse entities: Can\'t find end tag corresponding to start '
                           f'tag "{stack[-1]}"')
    for entity in _HTML_ENTITY.finditer(text):
        if entity.group(1)[0] != "#" and entity.group(1) not in {"lt", "gt", "amp", "quot"}:
            raise _bad_request(f'can\'t parse entities: Unsupported HTML entity '
                               f'"&{entity.group(1)};"')


def _visible(text: str, parse_mode: Any) -> str:
    """The text a user sees: for HTML, after checking it, without tags or entities."""
    if isinstance(parse_mode, str) and parse_mode.lower() == "html":
        _check_html(text)
        return html.unescape(_HTML_TAG.sub("", text))
    return text


def _check_reply_keyboard(markup: JSON, chat_id: ChatId | None) -> None:
    """A ReplyKeyboardMarkup (keys under the input field) or ReplyKeyboardRemove,
    as Telegram checks them: rows of buttons with text; `request_location`
    and the like only in private chats; remove_keyboard must be true."""
    if "remove_keyboard" in markup:
        if markup["remove_keyboard"] is not True:
            raise _bad_request("can't parse reply keyboard markup JSON object")
        return
    rows = markup.get("keyboard")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    for row in rows:
        for button in row:
            text = button.get("text") if isinstance(button, dict) else button
            if not isinstance(text, str) or not text.strip():
                raise _bad_request("can't parse keyboard button: text is empty")
            asks = isinstance(button, dict) and (button.get("request_location")
                                                 or button.get("request_contact"))
            if asks and isinstance(chat_id, int) and chat_id < 0:
                raise _bad_request("KEYBOARD_BUTTON_REQUEST_LOCATION_INVALID")


def _check_markup(markup: Any, chat_id: ChatId | None = None, inline_only: bool = False
                  ) -> JSON | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise _bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        if inline_only:  # an edit takes an inline keyboard only
            raise _bad_request("REPLY_MARKUP_INVALID")
        _check_reply_keyboard(markup, chat_id)
        return markup
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_LIMIT:
                raise _bad_request("BUTTON_DATA_INVALID")
    return markup


class FakeTelegram:
    """The Bot API for one bot, served by uvicorn from a background thread.

    Start it with ``with FakeTelegram() as tg:``, ``async with …``, or
    ``start()`` / ``stop()``; ``url`` is then ``http://127.0.0.1:PORT``. The
    server has its own thread and event loop, so it works with PTB running in
    the test's ``asyncio.run`` and with benchmarks alike.

    Records (``sent``, ``requests``, ``accepted``, ``webhook_responses``,
    ``too_many_requests``) are thread-safe snapshots. ``wait_for`` and
    ``wait_until`` block the calling thread: inside an event loop that also
    runs the bot, await ``wait_for_async`` / ``wait_until_async`` instead.

    ``limit_global_per_sec`` / ``limit_per_chat_per_sec`` switch on Telegram's
    rate limits: a send that would make more than that many accepted sends in
    the last second (overall, or to its chat) is answered 429 with
    ``retry_after`` 1 and counted in ``too_many_requests`` (split into
    ``too_many_overall`` and ``too_many_per_chat``). The window slides and is
    strict: at most that many accepted sends in any one second, measured on
    ``clock`` (``time.monotonic``; a test may pass its own) when the request
    is handled — as Telegram counts a message when it arrives. A media group
    counts as one send. ``webhook_concurrency`` is how many webhook deliveries
    may be in flight at once (1: in order, one after the other).
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *,
                 limit_global_per_sec: int | None = None,
                 limit_per_chat_per_sec: int | None = None,
                 max_poll_timeout: float = 1.0,
                 webhook_concurrency: int = 1,
                 bot_first_name: str = "有呼必应 (test)",
                 bot_username: str = "youhu_test_bot",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token = token
        self.clock = clock  # the rate limits' clock (a test may drive it)
        self.limit_global_per_sec = limit_global_per_sec
        self.limit_per_chat_per_sec = limit_per_chat_per_sec
        self.max_poll_timeout = max_poll_timeout
        self.webhook_concurrency = webhook_concurrency
        bot_id = token.partition(":")[0]
        self.bot_user: JSON = {
            "id": int(bot_id) if bot_id.isdigit() else 123456789, "is_bot": True,
            "first_name": bot_first_name, "username": bot_username,
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

        self._changed = threading.Condition(threading.RLock())
        self._message_ids = itertools.count(1)
        self._update_ids = itertools.count(100_001)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._sent: list[SentMessage] = []
        self._requests: list[ApiCall] = []
        self._accepted: list[Accepted] = []
        self._too_many_requests = 0
        self._too_many_overall = 0
        self._webhook_responses: list[int] = []
        self._pending: deque[JSON] = deque()  # updates for getUpdates
        self._messages: dict[int, JSON] = {}  # the bot's messages by message_id
        self._reply_keyboards: dict[ChatId, JSON] = {}  # the keys shown under each input field
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._photo_sets: dict[str, list[JSON]] = {}  # any size's file_id -> all sizes
        self._callbacks: dict[str, ChatId] = {}  # unanswered callback_query_id -> user
        self._users: dict[int, JSON] = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._failures: dict[str, deque[_Failure]] = {}
        self._delays: dict[str, deque[float]] = {}
        self._window_global: deque[float] = deque()
        self._window_chat: dict[ChatId, deque[float]] = {}
        self._webhook_url = ""
        self._webhook_secret: str | None = None

        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._new_updates: asyncio.Event | None = None
        self._deliveries: asyncio.Queue[JSON] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False

        self._handlers: dict[str, Callable[[JSON, dict[str, bytes]], Any]] = {
            "getme": lambda p, f: self.bot_user,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "sendmediagroup": self._send_media_group,
            "senddocument": self._send_document,
            "editmessagetext": self._edit_text,
            "editmessagecaption": self._edit_caption,
            "editmessagereplymarkup": self._edit_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "getfile": self._get_file,
            "setmycommands": self._set_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getmycommands": self._get_my_commands,
        }
        self.app = Starlette(routes=[
            Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
        ])

    # --- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: use ``f"{url}/bot"`` and ``f"{url}/file/bot"`` in PTB."""
        if self._port is None:
            raise RuntimeError("FakeTelegram is not running: start() it or use `with`")
        return f"http://127.0.0.1:{self._port}"

    @property
    def base_url(self) -> str:
        """What ``ApplicationBuilder.base_url`` takes (PTB appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """What ``ApplicationBuilder.base_file_url`` takes (PTB appends the token)."""
        return f"{self.url}/file/bot"

    def start(self) -> FakeTelegram:
        if self._thread is not None:
            raise RuntimeError("FakeTelegram is already running")
        # Listening before the thread starts: the port is known at once, and
        # early connections wait in the backlog instead of being refused.
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that
        # say they are TCP, and without it each answer waits ~40 ms for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        self._port = sock.getsockname()[1]
        # Keep-alive longer than httpx's 5 s pool expiry: with both at 5 s the
        # server may close a connection the client is just reusing (ReadError).
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                loop="asyncio", timeout_graceful_shutdown=2,
                                timeout_keep_alive=75)
        self._server = uvicorn.Server(config)
        self._stopping = False
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(sock),),
                                        name="fake-telegram", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10  # a safety net against a server that never starts
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the fake Telegram server did not start")
            time.sleep(0.002)
        return self

    def stop(self) -> None:
        loop, server, thread = self._loop, self._server, self._thread
        if server is not None:
            server.should_exit = True
        if loop is not None and not loop.is_closed():
            # Long polls return at once instead of holding up the shutdown.
            self._stopping = True
            loop.call_soon_threadsafe(self._wake_pollers)
        if thread is not None:
            thread.join(timeout=10)
        self._thread = self._server = self._loop = None
        self._port = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> FakeTelegram:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    async def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        self._loop = asyncio.get_running_loop()
        self._new_updates = asyncio.Event()
        self._deliveries = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=10)
        workers = [asyncio.create_task(self._deliver_webhooks())
                   for _ in range(max(1, self.webhook_concurrency))]
        try:
            await self._server.serve(sockets=[sock])
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self._client.aclose()

    # --- what tests read ----------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        with self._changed:
            return list(self._sent)

    def sent_since(self, index: int) -> list[SentMessage]:
        """The sent records from ``index`` on (cheaper than ``sent`` for a poller)."""
        with self._changed:
            return self._sent[index:]

    @property
    def requests(self) -> list[ApiCall]:
        """Every Bot API request answered, in order, with its HTTP status."""
        with self._changed:
            return list(self._requests)

    @property
    def accepted(self) -> list[Accepted]:
        """Every accepted send of a rate-limited method (limits on or off)."""
        with self._changed:
            return list(self._accepted)

    @property
    def too_many_requests(self) -> int:
        """How many sends the rate limits refused with 429 (``fail_next`` not counted)."""
        with self._changed:
            return self._too_many_requests

    @property
    def too_many_overall(self) -> int:
        """The 429s for the overall limit (the bot's last second was full)."""
        with self._changed:
            return self._too_many_overall

    @property
    def too_many_per_chat(self) -> int:
        """The 429s for the per-chat limit only (the bot's second had room)."""
        with self._changed:
            return self._too_many_requests - self._too_many_overall

    @property
    def webhook_responses(self) -> list[int]:
        """HTTP status of each webhook delivery, in order; 0 when nothing answered."""
        with self._changed:
            return list(self._webhook_responses)

    @property
    def webhook_url(self) -> str:
        with self._changed:
            return self._webhook_url

    @property
    def pending_updates(self) -> list[JSON]:
        """Updates waiting for getUpdates (not yet confirmed by an offset)."""
        with self._changed:
            return list(self._pending)

    def messages_to(self, chat_id: ChatId, include_edits: bool = False) -> list[SentMessage]:
        """What the bot sent to ``chat_id`` (and, if asked, its edits there), in order."""
        wanted = _chat_id(chat_id)
        return [m for m in self.sent if m.chat_id == wanted and (
            m.method.lower() in _SEND_METHODS or (include_edits and m.method.startswith("edit")))]

    def reply_keyboard(self, chat_id: ChatId) -> JSON | None:
        """The reply keyboard the bot last showed in ``chat_id`` (None: none, or removed)."""
        with self._changed:
            return copy.deepcopy(self._reply_keyboards.get(chat_id))

    def callback_answers(self) -> list[SentMessage]:
        return [m for m in self.sent if m.method.lower() == "answercallbackquery"]

    def message(self, message_id: int) -> JSON:
        """The bot's message as it stands now (after edits), as Telegram would send it."""
        with self._changed:
            return copy.deepcopy(self._messages[message_id])

    def file_bytes(self, file_id: str) -> bytes:
        with self._changed:
            return self._files[file_id].data

    def my_commands(self, scope: JSON | None = None, language_code: str = "") -> list[JSON]:
        """The command menu set for ``scope`` (default: all private chats) and language."""
        with self._changed:
            return list(self._commands.get((self._scope_key(scope), language_code), []))

    def wait_for(self, predicate: Callable[[SentMessage], bool] = lambda m: True,
                 timeout: float = 10, since: int = 0) -> SentMessage:
        """The first sent record from index ``since`` on that satisfies ``predicate``,
        waiting for it if need be.

        Pass ``since=len(tg.sent)`` taken before acting to wait for a new one.
        The timeout is only a safety net for a broken test: ``TimeoutError``
        rather than a hang, never the thing asserted.
        """
        found: list[SentMessage] = []

        def search() -> bool:
            found.extend(m for m in self._sent[since:] if predicate(m))
            return bool(found)

        self.wait_until(search, timeout, what="a matching sent message")
        return found[0]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10,
                   what: str = "the condition") -> None:
        """Block until ``condition()`` holds; re-checked whenever a record changes."""
        with self._changed:
            if not self._changed.wait_for(condition, timeout):
                recent = [(m.method, m.chat_id, m.text or m.caption) for m in self._sent[-5:]]
                calls = [(c.method, c.status) for c in self._requests[-5:]]
                raise TimeoutError(f"{what} did not come within {timeout} s; last sent: "
                                   f"{recent}; last requests: {calls}")

    async def wait_for_async(self, predicate: Callable[[SentMessage], bool] = lambda m: True,
                             timeout: float = 10, since: int = 0) -> SentMessage:
        """``wait_for`` for a test inside an event loop (does not block the loop)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout, since)

    async def wait_until_async(self, condition: Callable[[], bool], timeout: float = 10) -> None:
        await asyncio.to_thread(self.wait_until, condition, timeout)

    def clear(self) -> None:
        """Forget what was recorded (sent, requests, accepted, 429s, webhook statuses)."""
        with self._changed:
            self._sent.clear()
            self._requests.clear()
            self._accepted.clear()
            self._too_many_requests = 0
            self._too_many_overall = 0
            self._webhook_responses.clear()

    # --- failures on demand -------------------------------------------------

    def fail_next(self, method: str, status: int = 429, retry_after: int = 2, count: int = 1,
                  description: str | None = None) -> None:
        """Answer the next ``count`` calls of ``method`` with an error, as Telegram does.

        429 carries ``parameters.retry_after`` (PTB raises ``RetryAfter``); 502
        is nginx's HTML page (PTB raises ``NetworkError``); any other status is
        Telegram's JSON error. Nothing is recorded as sent for a failed call.
        """
        with self._changed:
            self._failures.setdefault(method.lower(), deque()).append(
                _Failure(status, retry_after, description, count))

    def slow_next(self, method: str, seconds: float, count: int = 1) -> None:
        """Delay the answer to the next ``count`` calls of ``method`` (which then succeed),
        e.g. to make the client time out on a message Telegram did deliver."""
        with self._changed:
            self._delays.setdefault(method.lower(), deque()).extend([seconds] * count)

    # --- what users do ------------------------------------------------------

    def set_user(self, user_id: int, first_name: str | None = None,
                 language_code: str | None = None, username: str | None = None,
                 last_name: str | None = None) -> JSON:
        """Create or change the Telegram user ``user_id``; returns its User JSON."""
        with self._changed:
            user = self._users.setdefault(user_id, {
                "id": user_id, "is_bot": False, "first_name": f"User {user_id}",
                "language_code": "zh-hans"})
            for key, value in (("first_name", first_name), ("language_code", language_code),
                               ("username", username), ("last_name", last_name)):
                if value is not None:
                    user[key] = value
            return dict(user)

    def user_sends_text(self, user_id: int, text: str, first_name: str | None = None,
                        language_code: str | None = None) -> JSON:
        message = self._user_message(user_id, first_name, language_code)
        message["text"] = text
        return self._push({"message": message})

    def user_sends_command(self, user_id: int, command: str, argument: str | None = None,
                           first_name: str | None = None,
                           language_code: str | None = None) -> JSON:
        """``/command`` (with a ``bot_command`` entity), e.g. ``/start CODE``."""
        command = command if command.startswith("/") else f"/{command}"
        message = self._user_message(user_id, first_name, language_code)
        message["text"] = command if argument is None else f"{command} {argument}"
        message["entities"] = [{"type": "bot_command", "offset": 0,
                                "length": _utf16_len(command)}]
        return self._push({"message": message})

    def user_sends_photo(self, user_id: int, data: bytes, caption: str | None = None,
                         media_group_id: str | None = None, first_name: str | None = None,
                         language_code: str | None = None) -> JSON:
        """A photo, stored as three sizes (largest last; only it holds ``data``)."""
        message = self._user_message(user_id, first_name, language_code)
        message["photo"] = self._store_photo(data, thumbnails=True)
        if caption is not None:
            message["caption"] = caption
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        return self._push({"message": message})

    def user_sends_document(self, user_id: int, data: bytes, file_name: str = "IMG_0001.jpg",
                            mime_type: str = "image/jpeg", caption: str | None = None,
                            first_name: str | None = None,
                            language_code: str | None = None) -> JSON:
        """A file sent as a file (a photo "without compression"): one document."""
        message = self._user_message(user_id, first_name, language_code)
        with self._changed:
            stored = self._store_file(data, "documents", "")
        message["document"] = {"file_id": stored.file_id,
                               "file_unique_id": stored.file_unique_id,
                               "file_name": file_name, "mime_type": mime_type,
                               "file_size": len(data)}
        if caption is not None:
            message["caption"] = caption
        return self._push({"message": message})

    def user_sends_album(self, user_id: int, photos: Iterable[bytes],
                         caption: str | None = None) -> list[JSON]:
        """Several photos with one media_group_id, the caption on the first, as Telegram
        delivers an album: one update per photo."""
        group = f"fake-album-{next(self._file_ids)}"
        return [self.user_sends_photo(user_id, data, caption if i == 0 else None, group)
                for i, data in enumerate(photos)]

    def user_sends_location(self, user_id: int, latitude: float, longitude: float,
                            first_name: str | None = None,
                            language_code: str | None = None) -> JSON:
        message = self._user_message(user_id, first_name, language_code)
        message["location"] = {"latitude": latitude, "longitude": longitude}
        return self._push({"message": message})

    def user_presses(self, user_id: int, message_id: int, data: str) -> JSON:
        """A button press: a callback_query on the bot's message ``message_id``.

        ``data`` need not be anything the bot sent (to test forged data). A
        message_id the bot never sent gets a minimal stand-in message.
        """
        user = self.set_user(user_id)
        with self._changed:
            message = self._messages.get(message_id) or {
                "message_id": message_id, "from": self.bot_user, "date": int(time.time()),
                "chat": self._chat(user_id), "text": ""}
            query_id = f"fake-callback-{next(self._callback_ids)}"
            self._callbacks[query_id] = user_id
            message = copy.deepcopy(message)
        return self._push({"callback_query": {
            "id": query_id, "from": user, "message": message,
            "chat_instance": f"fake-chat-instance-{user_id}", "data": data}})

    def enqueue_update(self, update: JSON) -> JSON:
        """Deliver a given update (its update_id kept) as injected ones are: to the
        webhook, or to getUpdates — where, as on Telegram, an update_id below the
        offset the bot confirmed is dropped."""
        return self._push(update, keep_id=True)

    def post_raw_update(self, update: JSON, secret: str | None = _USE_WEBHOOK_SECRET,
                        url: str | None = None) -> int:
        """POST ``update`` to the webhook now and return the HTTP status (0: no answer).

        ``secret`` defaults to the one setWebhook gave; None sends no header.
        Blocks the calling thread: inside the event loop that serves the
        webhook, ``await apost_raw_update(...)`` instead.
        """
        future = asyncio.run_coroutine_threadsafe(
            self._post_update(update, secret, url), self._running_loop())
        return future.result(timeout=30)

    async def apost_raw_update(self, update: JSON, secret: str | None = _USE_WEBHOOK_SECRET,
                               url: str | None = None) -> int:
        future = asyncio.run_coroutine_threadsafe(
            self._post_update(update, secret, url), self._running_loop())
        return await asyncio.wrap_future(future)

    # --- internals: updates -------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("FakeTelegram is not running")
        return self._loop

    def _chat(self, chat_id: ChatId) -> JSON:
        if isinstance(chat_id, int) and chat_id > 0:
            user = self._users.get(chat_id, {"first_name": f"User {chat_id}"})
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
            return chat
        if isinstance(chat_id, int):
            return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        return {"id": -1000000000001, "type": "channel", "title": chat_id,
                "username": chat_id.lstrip("@")}

    def _user_message(self, user_id: int, first_name: str | None,
                      language_code: str | None) -> JSON:
        user = self.set_user(user_id, first_name, language_code)
        with self._changed:
            return {"message_id": next(self._message_ids), "from": user,
                    "chat": self._chat(user_id), "date": int(time.time())}

    def _push(self, update: JSON, keep_id: bool = False) -> JSON:
        if not keep_id:
            update = {"update_id": next(self._update_ids), **update}
        with self._changed:
            webhook = bool(self._webhook_url)
            if not webhook:
                self._pending.append(update)
            self._changed.notify_all()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if webhook:
                assert self._deliveries is not None
                loop.call_soon_threadsafe(self._deliveries.put_nowait, update)
            else:
                loop.call_soon_threadsafe(self._wake_pollers)
        elif webhook:
            raise RuntimeError("FakeTelegram is not running")
        return update

    def _wake_pollers(self) -> None:
        # Each long poll waits on the event it saw before looking at the queue,
        # so setting it and putting a fresh one in its place loses no wake-up.
        if self._new_updates is not None:
            self._new_updates.set()
            self._new_updates = asyncio.Event()

    async def _deliver_webhooks(self) -> None:
        assert self._deliveries is not None
        while True:
            update = await self._deliveries.get()
            await self._post_update(update, _USE_WEBHOOK_SECRET, None)

    async def _post_update(self, update: JSON, secret: str | None, url: str | None) -> int:
        assert self._client is not None
        with self._changed:
            url = url or self._webhook_url
            if secret is _USE_WEBHOOK_SECRET:
                secret = self._webhook_secret
        if not url:
            raise RuntimeError("no webhook is set and no url was given")
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        try:
            response = await self._client.post(url, json=update, headers=headers)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        with self._changed:
            self._webhook_responses.append(status)
            self._changed.notify_all()
        return status

    # --- internals: HTTP ----------------------------------------------------

    async def _params(self, request: Request) -> tuple[JSON, dict[str, bytes]]:
        params: JSON = dict(request.query_params)
        files: dict[str, bytes] = {}
        content_type = request.headers.get("content-type", "")
        body = await request.body()
        if not body:
            pass
        elif content_type.startswith("application/json"):
            try:
                decoded = json.loads(body)
            except ValueError as error:
                raise _bad_request("can't parse JSON body") from error
            if not isinstance(decoded, dict):
                raise _bad_request("JSON body must be an object")
            params.update(decoded)
        elif content_type.startswith("multipart/form-data"):
            fields, files = _parse_multipart(content_type, body)
            params.update(fields)
        else:
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return {name: _coerce(name, value) for name, value in params.items()}, files

    @staticmethod
    def _answer(status: int, body: JSON) -> Response:
        return Response(json.dumps(body, ensure_ascii=False), status_code=status,
                        media_type="application/json")

    def _record(self, method: str, params: JSON, files: dict[str, bytes], status: int) -> None:
        logged = dict(params)
        if files:
            logged["_files"] = sorted(files)
        with self._changed:
            self._requests.append(ApiCall(method, logged, status, time.monotonic()))
            self._changed.notify_all()

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            self._record(method, {}, {}, 401)
            return self._answer(401, {"ok": False, "error_code": 401,
                                      "description": "Unauthorized"})
        name = method.lower()
        params: JSON = {}
        files: dict[str, bytes] = {}
        try:
            params, files = await self._params(request)
            with self._changed:
                failures = self._failures.get(name)
                failure = failures[0] if failures else None
                if failure is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        assert failures is not None
                        failures.popleft()
                delays = self._delays.get(name)
                delay = delays.popleft() if delays else 0.0
            if failure is not None:
                self._record(method, params, files, failure.status)
                return self._failure_response(failure)
            if delay:
                await asyncio.sleep(delay)
            result: Any
            if name == "getupdates":
                result = await self._get_updates(params)
            elif name in _NO_OPS:
                result = True
            elif name in self._handlers:
                # Checking the limits, handling and counting happen without an
                # await in between, so concurrent sends cannot slip past a limit.
                with self._changed:
                    if name in _RATE_LIMITED:
                        self._check_rate(params.get("chat_id"))
                    result = self._handlers[name](params, files)
                    if name in _RATE_LIMITED:
                        self._count_send(method, params.get("chat_id"))
            else:
                self._record(method, params, files, 404)
                return self._answer(404, {"ok": False, "error_code": 404,
                                          "description": "Not Found: method not found"})
        except _ApiError as error:
            self._record(method, params, files, error.status)
            body: JSON = {"ok": False, "error_code": error.status,
                          "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            return self._answer(error.status, body)
        self._record(method, params, files, 200)
        return self._answer(200, {"ok": True, "result": result})

    def _failure_response(self, failure: _Failure) -> Response:
        if failure.status == 502 and failure.description is None:
            return Response(_NGINX_502, status_code=502, media_type="text/html")
        body: JSON = {"ok": False, "error_code": failure.status}
        if failure.status == 429:
            body["description"] = (failure.description
                                   or f"Too Many Requests: retry after {failure.retry_after}")
            body["parameters"] = {"retry_after": failure.retry_after}
        else:
            default = {500: "Internal Server Error", 502: "Bad Gateway",
                       503: "Service Unavailable", 504: "Gateway Timeout"}
            body["description"] = failure.description or default.get(failure.status, "Error")
        return self._answer(failure.status, body)

    async def _download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return self._answer(401, {"ok": False, "error_code": 401,
                                      "description": "Unauthorized"})
        with self._changed:
            stored = self._files_by_path.get(request.path_params["path"])
        if stored is None:
            return self._answer(404, {"ok": False, "error_code": 404,
                                      "description": "Not Found"})
        return Response(stored.data, media_type="application/octet-stream")

    # --- internals: rate limits ---------------------------------------------

    def _check_rate(self, chat_id: Any) -> None:
        """Refuse a send that would make more than the limit's accepted sends
        within the last second, overall or to its chat (a sliding window: a
        send exactly one second after another no longer counts it). A send
        over both limits is counted as an overall 429."""
        now = self.clock()
        overall = self._window_global
        chat = (self._window_chat.setdefault(_chat_id(chat_id), deque())
                if chat_id is not None else None)
        for window in (overall, chat):
            while window and window[0] <= now - 1.0:
                window.popleft()
        full_overall = (self.limit_global_per_sec is not None
                        and len(overall) >= self.limit_global_per_sec)
        full_chat = (chat is not None and self.limit_per_chat_per_sec is not None
                     and len(chat) >= self.limit_per_chat_per_sec)
        if full_overall or full_chat:
            self._too_many_requests += 1
            self._too_many_overall += full_overall
            raise _ApiError(429, "Too Many Requests: retry after 1", {"retry_after": 1})

    def _count_send(self, method: str, chat_id: Any) -> None:
        now = self.clock()
        chat = None if chat_id is None else _chat_id(chat_id)
        self._window_global.append(now)
        if chat is not None:
            self._window_chat.setdefault(chat, deque()).append(now)
        self._accepted.append(Accepted(method, chat, now))

    # --- internals: files ---------------------------------------------------

    def _store_file(self, data: bytes, folder: str, suffix: str) -> _StoredFile:
        number = next(self._file_ids)
        stored = _StoredFile(file_id=f"AgACAgUAAxkFAKE{number:06d}{folder[:3]}",
                             file_unique_id=f"AQADFAKE{number:06d}",
                             file_path=f"{folder}/file_{number}{suffix}", data=data)
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _store_photo(self, data: bytes, thumbnails: bool) -> list[JSON]:
        """Telegram's PhotoSize list for a new photo, smallest first."""
        with self._changed:
            widths = [90, 320, 1280] if thumbnails else [90, 1280]
            sizes: list[JSON] = []
            for width in widths:
                content = data if width == widths[-1] else (
                    f"fake-thumbnail-{width}px:".encode() + data[:64])
                stored = self._store_file(content, "photos", ".jpg")
                sizes.append({"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                              "width": width, "height": width * 3 // 4,
                              "file_size": len(content)})
            for size in sizes:
                self._photo_sets[size["file_id"]] = sizes
            return sizes

    def _photo_input(self, value: Any, files: dict[str, bytes],
                     field_name: str) -> tuple[bytes | str, list[JSON]]:
        """What the bot gave as a photo (upload, attach://, file_id or URL): the
        recorded value and the PhotoSize list of the message."""
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name not in files:
                raise _bad_request(f"file of field {name} not found")
            _check_photo(files[name])
            return files[name], self._store_photo(files[name], thumbnails=False)
        if value is None and field_name in files:
            _check_photo(files[field_name])
            return files[field_name], self._store_photo(files[field_name], thumbnails=False)
        if isinstance(value, str) and value in self._photo_sets:
            return value, self._photo_sets[value]
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return value, self._store_photo(value.encode(), thumbnails=False)
        if not value:
            raise _bad_request("there is no photo in the request")
        raise _bad_request("wrong file identifier/HTTP URL specified")

    # --- internals: methods -------------------------------------------------

    def _new_message(self, params: JSON, chat_id: ChatId, **content: Any) -> JSON:
        message: JSON = {"message_id": next(self._message_ids), "from": self.bot_user,
                         "chat": self._chat(chat_id), "date": int(time.time()), **content}
        markup = _check_markup(params.get("reply_markup"), chat_id)
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        elif markup is not None and "keyboard" in markup:
            self._reply_keyboards[chat_id] = markup
        elif markup is not None and markup.get("remove_keyboard"):
            self._reply_keyboards.pop(chat_id, None)
        self._messages[message["message_id"]] = message
        return message

    def _target_chat(self, params: JSON) -> ChatId:
        if "chat_id" not in params or params["chat_id"] == "":
            raise _bad_request("chat_id is empty")
        return _chat_id(params["chat_id"])

    def _caption(self, caption: Any, parse_mode: Any) -> str | None:
        if caption is None:
            return None
        visible = _visible(str(caption), parse_mode)
        if _utf16_len(visible) > CAPTION_LIMIT:
            raise _bad_request("message caption is too long")
        return visible

    def _add(self, method: str, chat_id: ChatId | None, params: JSON, *,
             message_ids: tuple[int, ...] = (), photos: list[bytes | str] | None = None,
             caption: str | None = None, documents: list[bytes] | None = None) -> None:
        self._sent.append(SentMessage(
            method=method, chat_id=chat_id, text=params.get("text"), caption=caption,
            reply_markup=params.get("reply_markup"), photos=photos or [],
            message_id=message_ids[0] if message_ids else None, at=time.monotonic(),
            message_ids=message_ids, params=params, documents=documents or []))
        self._changed.notify_all()

    def _send_message(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat_id = self._target_chat(params)
        text = params.get("text")
        if text is None or not str(text).strip():
            raise _bad_request("message text is empty")
        visible = _visible(str(text), params.get("parse_mode"))
        if _utf16_len(visible) > TEXT_LIMIT:
            raise _bad_request("message is too long")
        message = self._new_message(params, chat_id, text=visible)
        self._add("sendMessage", chat_id, params, message_ids=(message["message_id"],))
        return message

    def _send_photo(self, params: JSON, files: dict[str, bytes]) -> JSON:
        chat_id = self._target_chat(params)
        recorded, sizes = self._photo_input(params.get("photo"), files, "photo")
        caption = self._caption(params.get("caption"), params.get("parse_mode"))
        content: JSON = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        message = self._new_message(params, chat_id, **content)
        self._add("sendPhoto", chat_id, params, message_ids=(message["message_id"],),
                  photos=[recorded], caption=params.get("caption"))
        return message

    def _send_media_group(self, params: JSON, files: dict[str, bytes]) -> list[JSON]:
        chat_id = self._target_chat(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise _bad_request("wrong number of media items: must include 2-10 items")
        group = f"fake-group-{next(self._file_ids)}"
        messages, recorded = [], []
        for item in media:
            if not isinstance(item, dict) or item.get("type") != "photo":
                raise _bad_request("fake Telegram supports photo albums only")
            photo, sizes = self._photo_input(item.get("media"), files, "")
            recorded.append(photo)
            content: JSON = {"photo": sizes, "media_group_id": group}
            caption = self._caption(item.get("caption"), item.get("parse_mode"))
            if caption is not None:
                content["caption"] = caption
            messages.append(self._new_message({}, chat_id, **content))
        first_caption = next((i.get("caption") for i in media if i.get("caption")), None)
        self._add("sendMediaGroup", chat_id, params, photos=recorded, caption=first_caption,
                  message_ids=tuple(m["message_id"] for m in messages))
        return messages

    def _send_document(self, params: JSON, files: dict[str, bytes]) -> JSON:
        """A file: uploaded or resent by file_id; its bytes recorded in both
        ``photos`` (photos sent as files) and ``documents`` (`Reply.documents`)."""
        chat_id = self._target_chat(params)
        value = params.get("document")
        if isinstance(value, str) and value.startswith("attach://"):
            value = files.get(value.removeprefix("attach://"))
        elif value is None:
            value = files.get("document")
        if isinstance(value, str) and value in self._files:
            stored = self._files[value]
        elif isinstance(value, bytes):
            if len(value) > DOCUMENT_LIMIT:
                raise _ApiError(413, "Request Entity Too Large")
            stored = self._store_file(value, "documents", "")
        else:
            raise _bad_request("there is no document in the request")
        caption = self._caption(params.get("caption"), params.get("parse_mode"))
        # The sent name is in params as "<field>:filename" (see the multipart parser).
        field = str(params.get("document") or "document").removeprefix("attach://")
        file_name = str(params.get(f"{field}:filename")
                        or stored.file_path.rpartition("/")[2])
        content: JSON = {"document": {"file_id": stored.file_id,
                                      "file_unique_id": stored.file_unique_id,
                                      "file_name": file_name,
                                      "file_size": len(stored.data)}}
        if caption is not None:
            content["caption"] = caption
        message = self._new_message(params, chat_id, **content)
        self._add("sendDocument", chat_id, params, message_ids=(message["message_id"],),
                  photos=[stored.data if isinstance(value, bytes) else value],
                  caption=params.get("caption"), documents=[stored.data])
        return message

    def _edited(self, params: JSON) -> JSON | bool:
        """The bot's message an edit targets, or True for an inline message."""
        if params.get("inline_message_id"):
            return True
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        message = self._messages.get(message_id) if isinstance(message_id, int) else None
        if message is None or message["chat"]["id"] != chat_id:
            raise _bad_request("message to edit not found")
        return message

    def _apply_edit(self, method: str, params: JSON, message: JSON | bool, changes: JSON,
                    caption: str | None = None) -> JSON | bool:
        markup = _check_markup(params.get("reply_markup"), inline_only=True)
        inline = markup if markup is not None and "inline_keyboard" in markup else None
        if isinstance(message, dict):
            unchanged = all(message.get(k) == v for k, v in changes.items())
            if unchanged and message.get("reply_markup") == inline:
                raise _bad_request(
                    "message is not modified: specified new message content and reply markup "
                    "are exactly the same as a current content and reply markup of the message")
            message.update(changes)
            message.pop("reply_markup", None)
            if inline is not None:
                message["reply_markup"] = inline
            message["edit_date"] = int(time.time())
            self._add(method, message["chat"]["id"], params, caption=caption,
                      message_ids=(message["message_id"],))
            return message
        self._add(method, None, params, caption=caption)
        return True

    def _edit_text(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        message = self._edited(params)
        text = params.get("text")
        if text is None or not str(text).strip():
            raise _bad_request("text must be non-empty")
        visible = _visible(str(text), params.get("parse_mode"))
        if _utf16_len(visible) > TEXT_LIMIT:
            raise _bad_request("MESSAGE_TOO_LONG")
        if isinstance(message, dict) and "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        return self._apply_edit("editMessageText", params, message, {"text": visible})

    def _edit_caption(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        message = self._edited(params)
        if isinstance(message, dict) and "photo" not in message:
            raise _bad_request("there is no caption in the message to edit")
        caption = self._caption(params.get("caption"), params.get("parse_mode"))
        return self._apply_edit("editMessageCaption", params, message,
                                {"caption": caption} if caption is not None else {},
                                caption=params.get("caption"))

    def _edit_reply_markup(self, params: JSON, files: dict[str, bytes]) -> JSON | bool:
        return self._apply_edit("editMessageReplyMarkup", params, self._edited(params), {})

    def _answer_callback_query(self, params: JSON, files: dict[str, bytes]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._callbacks:
            raise _bad_request("query is too old and response timeout expired or query ID is "
                               "invalid")
        del self._callbacks[query_id]
        self._add("answerCallbackQuery", None, params)
        return True

    def _get_file(self, params: JSON, files: dict[str, bytes]) -> JSON:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _bad_request("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data), "file_path": stored.file_path}

    def _set_webhook(self, params: JSON, files: dict[str, bytes]) -> bool:
        url = str(params.get("url", ""))
        secret = params.get("secret_token")
        if secret is not None and not _SECRET.fullmatch(str(secret)):
            raise _bad_request("secret token contains unallowed characters")
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._webhook_url = url
        self._webhook_secret = None if secret is None else str(secret)
        if url:
            # Updates that were waiting for getUpdates now go to the webhook.
            assert self._deliveries is not None
            while self._pending:
                self._deliveries.put_nowait(self._pending.popleft())
        return True

    def _delete_webhook(self, params: JSON, files: dict[str, bytes]) -> bool:
        if params.get("drop_pending_updates") is True:
            self._pending.clear()
        self._webhook_url = ""
        self._webhook_secret = None
        return True

    def _get_webhook_info(self, params: JSON, files: dict[str, bytes]) -> JSON:
        info: JSON = {"url": self._webhook_url, "has_custom_certificate": False,
                      "pending_update_count": len(self._pending)}
        if self._webhook_url:
            info["max_connections"] = 40
            info["ip_address"] = "127.0.0.1"
        return info

    async def _get_updates(self, params: JSON) -> list[JSON]:
        assert self._new_updates is not None
        offset = params.get("offset") or 0
        limit = params.get("limit") or 100
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, self.max_poll_timeout)
        while True:
            event = self._new_updates
            with self._changed:
                if self._webhook_url:
                    raise _ApiError(409, "Conflict: can't use getUpdates method while webhook "
                                         "is active; use deleteWebhook to delete the webhook "
                                         "first")
                if isinstance(offset, int) and offset > 0:
                    while self._pending and self._pending[0]["update_id"] < offset:
                        self._pending.popleft()
                batch = list(itertools.islice(self._pending, int(limit)))
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self._stopping:
                return batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)

    def _set_my_commands(self, params: JSON, files: dict[str, bytes]) -> bool:
        commands = params.get("commands")
        language = str(params.get("language_code") or "")
        if language and not _LANGUAGE.fullmatch(language):
            raise _bad_request("invalid language code specified")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad_request("can't parse BotCommand array")
        for command in commands:
            if not isinstance(command, dict) or not _COMMAND.fullmatch(
                    str(command.get("command", ""))):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[(self._scope_key(params.get("scope")), language)] = commands
        return True

    def _delete_my_commands(self, params: JSON, files: dict[str, bytes]) -> bool:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    def _get_my_commands(self, params: JSON, files: dict[str, bytes]) -> list[JSON]:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return self._commands.get(key, [])

"""A fake WeCom (企业微信) server API on 127.0.0.1, for the WeCom adapter's tests.

Who uses this: tests that run our own async httpx WeCom client with
``wecom.api_base`` pointed at ``FakeWeCom.url``. It speaks the real API's
paths and JSON (``/cgi-bin/gettoken``, ``message/send``,
``message/update_template_card``, ``media/upload``, ``media/get``), answers
HTTP 200 with an ``errcode`` the way WeCom does, and records what was sent
so tests assert on what a member would see::

    with FakeWeCom() as wecom:
        settings.wecom.api_base = wecom.url
        ...
        wecom.wait_for(lambda: len(wecom.sent) == 1)
        assert wecom.sent[0].msgtype == "template_card"

Error codes follow WeCom's global error-code table: 40001 invalid secret,
40013 invalid corpid, 40014 invalid access_token, 41001 missing
access_token, 42001 access_token expired, 40007 invalid media_id, 40008
invalid msgtype, 40056 invalid agentid, 41011 missing agentid, 44001 empty
media, 44004 empty content, 45009 API frequency out of limit, 47001 data
format error, -1 system busy. Two are this fake's choice, because WeCom's
documentation does not name them: a refused ``response_code`` (unknown or
already used) answers ``INVALID_RESPONSE_CODE`` (40029), and other invalid
parameters — a reused ``task_id``, a card without buttons, a
button_interaction card without ``main_title`` (which WeCom's documentation
makes required) — answer 40058 ("invalid parameter"), with an errmsg saying
what is wrong. An image upload over 10 MB answers 40009 (invalid image
size), one that is not JPEG or PNG 40005 (invalid file type).

Like WeCom, text content longer than 2048 bytes and markdown longer than
4096 bytes is cut, silently: ``SentWeCom.content`` is what the member sees.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

INVALID_RESPONSE_CODE = 40029
INVALID_PARAMETER = 40058
SYSTEM_BUSY = -1
FREQUENCY_OUT_OF_LIMIT = 45009

_MSGTYPES = {"text", "markdown", "image", "file", "news", "template_card"}
IMAGE_MAX_BYTES = 10 * 1024 * 1024
_INTERACTIVE_CARDS = {"button_interaction", "vote_interaction", "multiple_interaction"}
_CARD_TYPES = {"text_notice", "news_notice", *_INTERACTIVE_CARDS}
_TASK_ID = re.compile(r"[A-Za-z0-9_\-@]{1,128}")
_TEXT_LIMIT = {"text": 2048, "markdown": 4096}
_MEDIA_TYPES = {"image", "voice", "video", "file"}


def _cut(text: str, limit: int) -> str:
    """The first ``limit`` bytes of ``text`` in UTF-8, without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class SentWeCom:
    """One accepted ``message/send``: ``body`` is the request's JSON as sent."""

    msgtype: str
    touser: str
    body: dict[str, Any]
    msgid: str
    response_code: str | None
    at: datetime

    @property
    def recipients(self) -> list[str]:
        """The UserIDs in ``touser`` ("a|b" → ["a", "b"])."""
        return self.touser.split("|") if self.touser else []

    @property
    def content(self) -> str | None:
        """For text and markdown: the content as the member sees it (cut like WeCom)."""
        if self.msgtype not in _TEXT_LIMIT:
            return None
        return _cut(str(self.body[self.msgtype]["content"]), _TEXT_LIMIT[self.msgtype])

    @property
    def card(self) -> dict[str, Any] | None:
        """For template_card: the ``template_card`` object."""
        card = self.body.get("template_card") if self.msgtype == "template_card" else None
        return card if isinstance(card, dict) else None

    @property
    def task_id(self) -> str | None:
        return str(self.card["task_id"]) if self.card and "task_id" in self.card else None

    @property
    def button_keys(self) -> list[str]:
        """The keys of the card's buttons, in order (what a click sends back as EventKey)."""
        buttons = self.card.get("button_list", []) if self.card else []
        return [str(button["key"]) for button in buttons]

    @property
    def media_id(self) -> str | None:
        """For image and file messages: the media_id sent."""
        if self.msgtype in ("image", "file"):
            return str(self.body[self.msgtype]["media_id"])
        return None


@dataclass(frozen=True)
class CardUpdate:
    """One accepted ``message/update_template_card``.

    ``task_id`` and ``msgid`` name the card the ``response_code`` belonged to
    (``msgid`` is None for a code issued with a click, not with a send).
    """

    response_code: str
    userids: list[str]
    agentid: int
    body: dict[str, Any]
    task_id: str | None
    msgid: str | None
    at: datetime

    @property
    def replace_name(self) -> str | None:
        """The new button text, for a ``button`` update."""
        button = self.body.get("button")
        return str(button["replace_name"]) if isinstance(button, dict) else None

    @property
    def card(self) -> dict[str, Any] | None:
        """The replacement card, for a ``template_card`` update."""
        card = self.body.get("template_card")
        return card if isinstance(card, dict) else None


@dataclass(frozen=True)
class Media:
    """A temporary media file, uploaded through the API or added by a test."""

    media_id: str
    type: str
    data: bytes
    content_type: str
    filename: str
    uploaded: bool  # True when it came through media/upload
    at: datetime


@dataclass(frozen=True)
class ApiCall:
    """Any request the fake answered, failed ones included."""

    method: str
    path: str
    params: dict[str, str]
    http_status: int
    errcode: int | None


@dataclass
class _Failure:
    suffix: str
    errcode: int | None
    http_status: int | None
    remaining: int


@dataclass
class _Code:
    task_id: str | None
    msgid: str | None
    used: bool = False


@dataclass
class _State:
    sent: list[SentWeCom] = field(default_factory=list)
    card_updates: list[CardUpdate] = field(default_factory=list)
    calls: list[ApiCall] = field(default_factory=list)
    media: dict[str, Media] = field(default_factory=dict)
    tokens: dict[str, bool] = field(default_factory=dict)  # token → still valid
    codes: dict[str, _Code] = field(default_factory=dict)
    task_ids: set[str] = field(default_factory=set)
    failures: list[_Failure] = field(default_factory=list)
    token_requests: int = 0


class _Refused(Exception):
    """An API error answered as HTTP 200 with this errcode, as WeCom does."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


class FakeWeCom:
    """WeCom's server API for one self-built app, served from a background thread.

    A context manager: entering starts uvicorn on an ephemeral port of
    127.0.0.1, ``url`` is then the ``api_base`` (``http://127.0.0.1:PORT``,
    serving ``/cgi-bin/...``); leaving stops it. Records are thread-safe
    snapshots: read ``sent``, ``card_updates``, ``media``, ``calls`` and
    ``token_requests`` from the test's thread while the client runs.
    """

    def __init__(self, corp_id: str = "wwfakecorp0000001", secret: str = "fake-app-secret",
                 agent_id: int = 1000002) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self._state = _State()
        self._changed = threading.Condition(threading.RLock())
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self.app = Starlette(routes=[
            Route("/cgi-bin/gettoken", self._gettoken, methods=["GET"]),
            Route("/cgi-bin/message/send", self._send, methods=["POST"]),
            Route("/cgi-bin/message/update_template_card", self._update_card, methods=["POST"]),
            Route("/cgi-bin/media/upload", self._upload, methods=["POST"]),
            Route("/cgi-bin/media/get", self._media_get, methods=["GET"]),
        ])

    # --- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        """The api_base to configure: ``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._port is None:
            raise RuntimeError("FakeWeCom is not running: use it as a context manager")
        return f"http://127.0.0.1:{self._port}"

    def __enter__(self) -> FakeWeCom:
        # Bind and listen before the thread starts, so the port is known at once
        # and early connections wait in the backlog instead of being refused.
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose
        # proto says TCP, and without it every keep-alive request waits ~40 ms
        # for a delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                  name="fake-wecom", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + 10  # a safety net against a server that never starts
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the fake WeCom server did not start")
            time.sleep(0.005)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None
        self._port = None

    # --- what tests read ----------------------------------------------------

    @property
    def sent(self) -> list[SentWeCom]:
        with self._changed:
            return list(self._state.sent)

    @property
    def card_updates(self) -> list[CardUpdate]:
        with self._changed:
            return list(self._state.card_updates)

    @property
    def calls(self) -> list[ApiCall]:
        with self._changed:
            return list(self._state.calls)

    @property
    def media(self) -> dict[str, Media]:
        with self._changed:
            return dict(self._state.media)

    @property
    def uploads(self) -> list[Media]:
        """Media that came in through media/upload, in order."""
        with self._changed:
            return [m for m in self._state.media.values() if m.uploaded]

    @property
    def token_requests(self) -> int:
        """How many gettoken requests were answered (failed ones included)."""
        with self._changed:
            return self._state.token_requests

    def sent_to(self, userid: str) -> list[SentWeCom]:
        """The messages whose touser includes ``userid``."""
        return [s for s in self.sent if userid in s.recipients or s.touser == "@all"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """Block until ``predicate()`` holds; it is re-checked whenever a record changes.

        The timeout is only a safety net for a broken test: it raises
        ``TimeoutError`` rather than hanging, and is never the thing asserted.
        """
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"condition not met; sent={len(self._state.sent)}, "
                    f"card_updates={len(self._state.card_updates)}, "
                    f"calls={[(c.path, c.errcode) for c in self._state.calls[-5:]]}")

    async def wait_for_async(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        """``wait_for`` for a test already inside an event loop (does not block the loop)."""
        await asyncio.to_thread(self.wait_for, predicate, timeout)

    # --- what tests arrange -------------------------------------------------

    def reset(self) -> None:
        """Forget everything (tokens, media, records, pending failures), keeping the server.

        Starting and stopping uvicorn costs about 0.15 s; a module-scoped fake
        that is reset for each test avoids paying it every time.
        """
        with self._changed:
            self._state = _State()
            self._changed.notify_all()

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 (access_token expired)."""
        with self._changed:
            for token in self._state.tokens:
                self._state.tokens[token] = False
            self._changed.notify_all()

    def add_media(self, data: bytes, content_type: str = "image/jpeg",
                  filename: str = "photo.jpg", type: str = "image") -> str:
        """A media_id for bytes a member "sent" (an image callback's MediaId)."""
        media_id = self._new_id("media")
        with self._changed:
            self._state.media[media_id] = Media(media_id, type, data, content_type, filename,
                                                uploaded=False, at=datetime.now(UTC))
            self._changed.notify_all()
        return media_id

    def issue_response_code(self, task_id: str | None = None) -> str:
        """A one-use response_code, as a card click's callback carries (ResponseCode)."""
        code = self._new_id("rc")
        with self._changed:
            self._state.codes[code] = _Code(task_id=task_id, msgid=None)
        return code

    def fail_next(self, path_suffix: str, *, errcode: int | None = None,
                  http_status: int | None = None, count: int = 1) -> None:
        """The next ``count`` requests whose path ends with ``path_suffix`` fail.

        With ``http_status`` (e.g. 500) they get that status and a plain-text
        body; otherwise HTTP 200 and ``errcode`` (default -1, "system busy";
        45009 is "api freq out of limit"). Nothing is recorded for them but
        an ``ApiCall``.
        """
        if errcode is None and http_status is None:
            errcode = SYSTEM_BUSY
        with self._changed:
            self._state.failures.append(_Failure(path_suffix, errcode, http_status, count))

    # --- internals ------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}-{secrets.token_hex(6)}"

    def _record(self, request: Request, http_status: int, errcode: int | None) -> None:
        with self._changed:
            self._state.calls.append(ApiCall(request.method, request.url.path,
                                             dict(request.query_params), http_status, errcode))
            self._changed.notify_all()

    def _injected(self, request: Request) -> Response | None:
        with self._changed:
            for failure in self._state.failures:
                if failure.remaining > 0 and request.url.path.endswith(failure.suffix):
                    failure.remaining -= 1
                    break
            else:
                return None
        if failure.http_status is not None:
            self._record(request, failure.http_status, None)
            return PlainTextResponse("injected failure", status_code=failure.http_status)
        assert failure.errcode is not None
        self._record(request, 200, failure.errcode)
        message = "api freq out of limit" if failure.errcode == FREQUENCY_OUT_OF_LIMIT \
            else "system busy"
        return JSONResponse({"errcode": failure.errcode, "errmsg": message})

    def _answer(self, request: Request, payload: dict[str, Any]) -> JSONResponse:
        self._record(request, 200, 0)
        return JSONResponse({"errcode": 0, "errmsg": "ok", **payload})

    def _refuse(self, request: Request, refused: _Refused) -> JSONResponse:
        self._record(request, 200, refused.errcode)
        return JSONResponse({"errcode": refused.errcode, "errmsg": refused.errmsg})

    def _check_token(self, request: Request) -> None:
        token = request.query_params.get("access_token")
        if not token:
            raise _Refused(41001, "access_token missing")
        with self._changed:
            valid = self._state.tokens.get(token)
        if valid is None:
            raise _Refused(40014, "invalid access_token")
        if not valid:
            raise _Refused(42001, "access_token expired")

    async def _json(self, request: Request) -> dict[str, Any]:
        try:
            data = await request.json()
        except ValueError:
            raise _Refused(47001, "data format error") from None
        if not isinstance(data, dict):
            raise _Refused(47001, "data format error")
        return data

    def _check_agent(self, data: dict[str, Any]) -> None:
        if "agentid" not in data or data["agentid"] in ("", None):
            raise _Refused(41011, "missing agentid")
        try:
            agentid = int(data["agentid"])
        except (TypeError, ValueError):
            raise _Refused(40056, "invalid agentid") from None
        if agentid != self.agent_id:
            raise _Refused(40056, "invalid agentid")

    # --- endpoints ------------------------------------------------------------

    async def _gettoken(self, request: Request) -> Response:
        with self._changed:
            self._state.token_requests += 1
        if (failed := self._injected(request)) is not None:
            return failed
        corpid = request.query_params.get("corpid", "")
        secret = request.query_params.get("corpsecret", "")
        if corpid != self.corp_id:
            return self._refuse(request, _Refused(40013, "invalid corpid"))
        if secret != self.secret:
            return self._refuse(request, _Refused(40001, "invalid credential"))
        token = self._new_id("token")
        with self._changed:
            self._state.tokens[token] = True
        return self._answer(request, {"access_token": token, "expires_in": 7200})

    async def _send(self, request: Request) -> Response:
        if (failed := self._injected(request)) is not None:
            return failed
        try:
            self._check_token(request)
            data = await self._json(request)
            self._check_agent(data)
            msgtype = data.get("msgtype")
            if msgtype not in _MSGTYPES:
                raise _Refused(40008, "invalid message type")
            touser = data.get("touser")
            if not touser or not isinstance(touser, str):
                raise _Refused(INVALID_PARAMETER, "touser missing (UserIDs joined by '|')")
            task_id = self._check_message(msgtype, data)
        except _Refused as refused:
            return self._refuse(request, refused)
        msgid = self._new_id("msg")
        response_code = None
        if task_id is not None:
            response_code = self._new_id("rc")
        sent = SentWeCom(msgtype, touser, data, msgid, response_code, datetime.now(UTC))
        with self._changed:
            if task_id is not None:
                self._state.task_ids.add(task_id)
            if response_code is not None:
                self._state.codes[response_code] = _Code(task_id=task_id, msgid=msgid)
            self._state.sent.append(sent)
        payload: dict[str, Any] = {"invaliduser": "", "msgid": msgid}
        if response_code is not None:
            payload["response_code"] = response_code
        return self._answer(request, payload)

    def _check_message(self, msgtype: str, data: dict[str, Any]) -> str | None:
        """Refuse a malformed message body; the task_id of an interactive card, else None."""
        body = data.get(msgtype)
        if not isinstance(body, dict):
            raise _Refused(INVALID_PARAMETER, f"{msgtype} object missing")
        if msgtype in _TEXT_LIMIT:
            if not isinstance(body.get("content"), str) or not body["content"]:
                raise _Refused(44004, "empty content")
        elif msgtype in ("image", "file"):
            with self._changed:
                media = self._state.media.get(str(body.get("media_id")))
            if media is None or (msgtype == "file") != (media.type == "file"):
                raise _Refused(40007, "invalid media_id")
        elif msgtype == "news":
            articles = body.get("articles")
            if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
                raise _Refused(INVALID_PARAMETER, "news needs 1 to 8 articles")
            if not all(isinstance(a, dict) and a.get("title") for a in articles):
                raise _Refused(41016, "missing title")
        else:
            return self._check_card(body)
        return None

    def _check_card(self, card: dict[str, Any]) -> str | None:
        card_type = card.get("card_type")
        if card_type not in _CARD_TYPES:
            raise _Refused(INVALID_PARAMETER, f"invalid card_type {card_type!r}")
        title = card.get("main_title")
        has_title = isinstance(title, dict) and bool(title.get("title"))
        if card_type == "button_interaction" and not has_title:
            # WeCom's documentation: main_title is required for this card type.
            raise _Refused(INVALID_PARAMETER, "main_title is required for button_interaction")
        if not has_title and not card.get("sub_title_text"):
            raise _Refused(INVALID_PARAMETER, "main_title.title or sub_title_text is required")
        if card_type not in _INTERACTIVE_CARDS:
            return None
        task_id = card.get("task_id")
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise _Refused(INVALID_PARAMETER,
                           "task_id is required: 1-128 of letters, digits and _-@")
        with self._changed:
            reused = task_id in self._state.task_ids
        if reused:
            raise _Refused(INVALID_PARAMETER, f"task_id {task_id} already used by this app")
        if card_type == "button_interaction":
            buttons = card.get("button_list")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 6:
                raise _Refused(INVALID_PARAMETER, "button_list needs 1 to 6 buttons")
            keys = [b.get("key") if isinstance(b, dict) else None for b in buttons]
            texts = [b.get("text") if isinstance(b, dict) else None for b in buttons]
            if not all(keys) or not all(texts):
                raise _Refused(INVALID_PARAMETER, "every button needs text and key")
            if len(set(keys)) != len(keys):
                raise _Refused(INVALID_PARAMETER, "button keys must be unique")
        return task_id

    async def _update_card(self, request: Request) -> Response:
        if (failed := self._injected(request)) is not None:
            return failed
        try:
            self._check_token(request)
            data = await self._json(request)
            self._check_agent(data)
            code = data.get("response_code")
            if not code or not isinstance(code, str):
                raise _Refused(INVALID_PARAMETER, "response_code missing")
            button = data.get("button")
            has_button = isinstance(button, dict) and bool(button.get("replace_name"))
            if not has_button and not isinstance(data.get("template_card"), dict):
                raise _Refused(INVALID_PARAMETER, "button.replace_name or template_card required")
            with self._changed:
                issued = self._state.codes.get(code)
                if issued is None or issued.used:
                    raise _Refused(INVALID_RESPONSE_CODE, "invalid response_code")
                issued.used = True
                userids = data.get("userids") or []
                self._state.card_updates.append(CardUpdate(
                    code, [str(u) for u in userids], int(data["agentid"]), data,
                    issued.task_id, issued.msgid, datetime.now(UTC)))
        except _Refused as refused:
            return self._refuse(request, refused)
        return self._answer(request, {"invaliduser": []})

    async def _upload(self, request: Request) -> Response:
        if (failed := self._injected(request)) is not None:
            return failed
        try:
            self._check_token(request)
            media_type = request.query_params.get("type", "")
            if media_type not in _MEDIA_TYPES:
                raise _Refused(40004, "invalid media type")
            part = _multipart_part(request.headers.get("content-type", ""),
                                   await request.body(), "media")
            data = part.get_payload(decode=True) if part is not None else None
            if part is None or not isinstance(data, bytes) or not data:
                raise _Refused(44001, "empty media data (multipart field 'media')")
            if media_type == "image" and len(data) > IMAGE_MAX_BYTES:
                raise _Refused(40009, "invalid image size")
            if media_type == "image" and not data.startswith((b"\xff\xd8\xff",
                                                              b"\x89PNG\r\n\x1a\n")):
                raise _Refused(40005, "invalid file type")
        except _Refused as refused:
            return self._refuse(request, refused)
        media_id = self._new_id("media")
        now = datetime.now(UTC)
        media = Media(media_id, media_type, data, part.get_content_type(),
                      part.get_filename() or "", uploaded=True, at=now)
        with self._changed:
            self._state.media[media_id] = media
        return self._answer(request, {"type": media_type, "media_id": media_id,
                                      "created_at": str(int(now.timestamp()))})

    async def _media_get(self, request: Request) -> Response:
        if (failed := self._injected(request)) is not None:
            return failed
        try:
            self._check_token(request)
            media_id = request.query_params.get("media_id")
            if not media_id:
                raise _Refused(41006, "media_id missing")
            with self._changed:
                media = self._state.media.get(media_id)
            if media is None:
                raise _Refused(40007, "invalid media_id")
        except _Refused as refused:
            return self._refuse(request, refused)
        self._record(request, 200, None)
        name = media.filename if media.filename.isascii() and media.filename else media.media_id
        return Response(media.data, media_type=media.content_type,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _multipart_part(content_type: str, body: bytes, name: str) -> Message | None:
    """The form field ``name`` of a multipart/form-data body, via the stdlib's MIME parser
    (Starlette's own form parser needs python-multipart, which youhu does not depend on)."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    parts = message.get_payload() if message.is_multipart() else []
    for part in parts if isinstance(parts, list) else []:
        if isinstance(part, Message) and \
                part.get_param("name", header="content-disposition") == name:
            return part
    return None

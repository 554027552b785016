"""WeCom's server API over httpx: the access token, sending messages and
cards, uploading and downloading media, with WeCom's error codes sorted into
temporary and permanent."""

from __future__ import annotations

import asyncio
import json
import logging
import time as monotonic_time
from collections.abc import Sequence
from typing import Any

import httpx

from bot.delivery import ChannelError
from bot.settings import WeComSettings

log = logging.getLogger(__name__)


TOKEN_MARGIN = 300.0  # seconds before expires_in that a token is renewed


FREQUENCY_RETRY_AFTER = 60.0  # 45009: WeCom's limits are counted per minute and hour


MEDIA_LIFETIME = 3 * 24 * 3600 - 3600  # a media_id lives three days; keep an hour's margin


DOWNLOAD_ATTEMPTS = 3


TOKEN_EXPIRED = frozenset({40014, 42001})  # invalid / expired access_token


FREQUENCY_OUT_OF_LIMIT = 45009


TEMPORARY_ERRCODES = frozenset({-1, FREQUENCY_OUT_OF_LIMIT, 45033})  # busy, rate, concurrency


class WeComError(ChannelError):
    """A WeCom API request failed; `errcode` is WeCom's, None for a network
    error, a timeout or an HTTP error status."""

    def __init__(self, message: str, errcode: int | None = None,
                 retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message, retry_after=retry_after, permanent=permanent)
        self.errcode = errcode


def _errcode_error(path: str, data: dict[str, Any]) -> WeComError:
    code = data.get("errcode")
    errcode = code if isinstance(code, int) else -1
    message = f"{path}: errcode {errcode} {data.get('errmsg', '')}".strip()
    if errcode == FREQUENCY_OUT_OF_LIMIT:
        return WeComError(message, errcode, retry_after=FREQUENCY_RETRY_AFTER)
    if errcode in TEMPORARY_ERRCODES or errcode in TOKEN_EXPIRED:
        return WeComError(message, errcode)
    return WeComError(message, errcode, permanent=True)


def _check_status(response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status == 200:
        return
    temporary = status >= 500 or status == 429
    raise WeComError(f"{path}: HTTP {status}", permanent=not temporary)


def _json_of(body: bytes, path: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        # HTTP 200 without JSON: a proxy's error page, say; worth another try.
        raise WeComError(f"{path}: the answer is not JSON")
    return data


class WeComClient:
    """Our async client of the WeCom server API, for one self-built app.

    wechatpy's own client is synchronous and hard-codes its hosts; this one
    talks to `api_base` with httpx, with a timeout on every request. The
    access token is cached and renewed `TOKEN_MARGIN` seconds before it
    expires, fetched once however many senders need it at the same time, and
    fetched afresh when WeCom says it is invalid or expired (40014, 42001) —
    then the request is made once more. Failures raise `WeComError`:
    temporary for system busy (-1), rate limits (45009, with `retry_after`),
    HTTP 5xx and network errors and timeouts; permanent for other errcodes.
    """

    def __init__(self, settings: WeComSettings, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if settings.missing():
            raise ValueError(f"wecom is not configured: {', '.join(settings.missing())} not set")
        assert settings.corp_id is not None and settings.secret is not None
        assert settings.agent_id is not None
        self.corp_id = settings.corp_id
        self.agent_id = settings.agent_id
        self._secret = settings.secret.get_secret_value()
        self._http = httpx.AsyncClient(
            base_url=settings.api_base, transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)))
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the access token ---------------------------------------------------

    async def token(self) -> str:
        """The cached access token, fetched when missing or about to expire."""
        if self._token is not None and monotonic_time.monotonic() < self._token_until:
            return self._token
        async with self._token_lock:
            # Whoever waited on the lock finds the token the first one fetched.
            if self._token is not None and monotonic_time.monotonic() < self._token_until:
                return self._token
            path = "/cgi-bin/gettoken"
            response = await self._request("GET", path, params={
                "corpid": self.corp_id, "corpsecret": self._secret})
            data = _json_of(response.content, path)
            if data.get("errcode", 0) != 0 or not data.get("access_token"):
                error = _errcode_error(path, data)
                log.error("wecom: no access token (%s); check wecom.corp_id and wecom.secret",
                          error)
                # A wrong secret is fixed by an admin, not by dropping the
                # messages waiting: report it as temporary so they are retried.
                raise WeComError(str(error), error.errcode, error.retry_after)
            lifetime = float(data.get("expires_in", 7200))
            self._token = str(data["access_token"])
            self._token_until = monotonic_time.monotonic() + max(lifetime - TOKEN_MARGIN,
                                                                  lifetime / 2)
            return self._token

    def _forget(self, token: str) -> None:
        """Drop `token` if it is still the cached one (a concurrent request may
        have replaced it already; then the new one is kept)."""
        if self._token == token:
            self._token = None

    # --- requests -----------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise WeComError(f"{path}: timed out ({type(error).__name__})") from error
        except httpx.HTTPError as error:  # the URL (with the token) is not in the message
            raise WeComError(f"{path}: {type(error).__name__}: {error}") from error
        _check_status(response, path)
        return response

    async def _api(self, method: str, path: str, params: dict[str, str] | None = None,
                   **kwargs: Any) -> dict[str, Any]:
        """One API call with the access token; once more with a fresh token
        if WeCom says it has expired."""
        for attempt in range(2):
            token = await self.token()
            response = await self._request(method, path,
                                           params={**(params or {}), "access_token": token},
                                           **kwargs)
            data = _json_of(response.content, path)
            errcode = data.get("errcode", 0)
            if errcode in TOKEN_EXPIRED and attempt == 0:
                log.info("wecom: access token expired (%s); fetching a new one", errcode)
                self._forget(token)
                continue
            if errcode != 0:
                raise _errcode_error(path, data)
            return data
        raise AssertionError("unreachable")

    async def _send(self, userid: str, msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
        data = await self._api("POST", "/cgi-bin/message/send", json={
            "touser": userid, "msgtype": msgtype, "agentid": self.agent_id, msgtype: body})
        # WeCom accepts the request but names recipients it could not reach
        # (not in the app's visible range, left the company): no retry helps.
        invalid = str(data.get("invaliduser") or "")
        if userid in invalid.split("|"):
            raise WeComError(f"message/send: {userid} is not reachable by the app "
                             "(invaliduser)", permanent=True)
        return data

    async def send_text(self, userid: str, content: str) -> str:
        """A text message (at most 2,048 bytes; WeCom cuts the rest); its msgid."""
        return str((await self._send(userid, "text", {"content": content})).get("msgid", ""))

    async def send_image(self, userid: str, media_id: str) -> str:
        """An image message of an uploaded `media_id`; its msgid."""
        return str((await self._send(userid, "image", {"media_id": media_id})).get("msgid", ""))

    async def send_file(self, userid: str, media_id: str) -> str:
        """A file message of an uploaded `media_id` (type file); its msgid."""
        return str((await self._send(userid, "file", {"media_id": media_id})).get("msgid", ""))

    async def send_template_card(self, userid: str, card: dict[str, Any]) -> tuple[str, str]:
        """A template card; its msgid and the response_code WeCom returns
        with an interactive card (usable once to update it)."""
        data = await self._send(userid, "template_card", card)
        return str(data.get("msgid", "")), str(data.get("response_code", ""))

    async def update_template_card(self, userids: Sequence[str], response_code: str,
                                   replace_name: str) -> None:
        """Turn the buttons of the card `response_code` belongs to into one
        disabled button reading `replace_name`, for `userids`."""
        await self._api("POST", "/cgi-bin/message/update_template_card", json={
            "userids": list(userids), "agentid": self.agent_id,
            "response_code": response_code, "button": {"replace_name": replace_name}})

    async def upload_image(self, data: bytes, content_type: str = "image/jpeg",
                           filename: str = "photo.jpg") -> str:
        """Upload a temporary image (`media/upload`, valid three days); its media_id."""
        return await self.upload(data, content_type, filename, "image")

    async def upload(self, data: bytes, content_type: str, filename: str,
                     media_type: str = "file") -> str:
        """Upload a temporary `media_type` (image, file…; valid three days); its media_id."""
        answer = await self._api("POST", "/cgi-bin/media/upload", params={"type": media_type},
                                 files={"media": (filename, data, content_type)})
        return str(answer["media_id"])

    async def download_media(self, media_id: str, limit: int) -> bytes:
        """The bytes of `media_id` (`media/get`), streamed. A file over
        `limit` bytes is not read on: a stand-in of `limit + 1` zero bytes is
        returned, so the caller can refuse it as too large."""
        path = "/cgi-bin/media/get"
        for attempt in range(2):
            token = await self.token()
            try:
                async with self._http.stream("GET", path, params={
                        "access_token": token, "media_id": media_id}) as response:
                    _check_status(response, path)
                    kind = response.headers.get("content-type", "")
                    if "json" in kind or kind.startswith("text/"):
                        # Errors come back as JSON instead of the file.
                        data = _json_of(await response.aread(), path)
                        if data.get("errcode") in TOKEN_EXPIRED and attempt == 0:
                            self._forget(token)
                            continue
                        raise _errcode_error(path, data)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        return bytes(limit + 1)
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > limit:
                            return bytes(limit + 1)
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.TimeoutException as error:
                raise WeComError(f"{path}: timed out ({type(error).__name__})") from error
            except httpx.HTTPError as error:
                raise WeComError(f"{path}: {type(error).__name__}: {error}") from error
        raise AssertionError("unreachable")

"""The WeCom (企业微信) channel: a self-built app (自建应用) connected to the
conversations.

In: WeCom POSTs every message and event to `wecom.path`, signed and
AES-encrypted. wechatpy's `WeChatCrypto` checks the signature and decrypts,
`wechatpy.enterprise.parse_message` parses. The endpoint stores the decrypted
message in the durable inbox (`bot.inbox`) under its platform id — the MsgId,
or for a card click the user, CreateTime, card and key (a retry repeats all
four; a second real click does not) — and only then answers an empty 200:
WeCom waits at most five seconds and retries what it thinks was lost, and a
retry finds the message stored and changes nothing. The inbox's worker
handles stored messages one member at a time in arrival order, on whichever
worker, the conversation's effects committed with the record that the
message was handled; a crash before that commit has it handled again after
the restart, a crash after it only sends its stored replies. Text (and
`/commands`), images (downloaded with `media/get`), locations and
template-card clicks become `Incoming`s. Other events (enter_agent…) are
answered and not stored; voice, video and links are answered as empty text.

Out: every reply goes back through the API (a passive reply could carry one
plain message, and only within the five seconds):

- text as `text` messages, plain (a member's words are shown as typed; markdown
  would also not render for members who use WeCom through WeChat), split at
  WeCom's 2,048 bytes on line ends or character boundaries;
- photos uploaded (`media/upload`, once per photo for the three days a
  media_id lives) and sent as `image` messages before the text;
- buttons as `template_card`s of card_type button_interaction: the first line
  is the main title when it fits WeCom's 26 characters, the rest the
  sub-title. A text longer than a card's 112-character sub-title is sent
  whole as text first, and the card repeats its beginning. A card holds six
  buttons; more make several cards, "(1/2)", "(2/2)", in order — each button's
  key is its whole button data, so a press on any card works alone.
- after a click, `message/update_template_card` with the click's ResponseCode
  turns the card's buttons, for the member who clicked, into one disabled
  button saying what was done: the first line of the answer (e.g. "您已签收
  BY-2025-000001。", or that it was acknowledged already), or for an answer
  inside a dialog (`f:` buttons: a domain, a rating) the choice made.

Members on both channels: the deliverer sends every notice through every
channel the member has an account on (`workflows.accounts`), so a liaison
with Telegram and WeCom gets each alert on both. The call's state lives in
the database, so an action on one channel is an action on the call: the
other channel's buttons stay on screen, and a later press there is answered
"already acknowledged" (and, on WeCom, the card is updated to say so).

Sending several messages for one reply is not atomic: when a later one fails,
the outbox retries the whole notice and the member may see its first part
twice — the same trade Telegram's channel makes.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import time as monotonic_time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import xmltodict
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.enterprise import WeChatCrypto, parse_message
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException

from bot import images
from bot.delivery import ChannelError
from bot.inbox import Inbox
from bot.settings import WeComSettings
from bot.web import read_body
from bot.wecom.client import DOWNLOAD_ATTEMPTS, MEDIA_LIFETIME, WeComClient, WeComError
from bot.wecom.render import clip, split_text, template_cards
from handlers.buttons import parse as parse_button
from handlers.messages import Incoming, Location, Reply
from workflows import outbox
from workflows.context import Context
from workflows.inbox import Stored
from workflows.photos import image_type

log = logging.getLogger(__name__)

CHANNEL = "wecom"
REPLACE_NAME_LIMIT = 30
# WeCom retries within seconds; allow for clock skew, refuse anything older.
REPLAY_WINDOW = 30 * 60
MAX_CALLBACK_BYTES = 64 * 1024  # a callback is well under 4 KB; refuse anything absurd


ANSWER_ATTEMPTS = 3  # an answer to a member is tried this often before it is given up

Clock = Callable[[], datetime]
T = TypeVar("T")






















async def _trying(attempts: int, request: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`request(*args)`, again after a short wait on a temporary error, up to
    `attempts` times in all."""
    for attempt in range(attempts):
        try:
            return await request(*args)
        except WeComError as error:
            if error.permanent or attempt == attempts - 1:
                raise
            await asyncio.sleep(min(error.retry_after or 0.5 * 2 ** attempt, 5.0))
    raise AssertionError("unreachable")


def _delivery_id(fields: dict[str, Any]) -> str:
    """The platform id of a message (its MsgId) or of a click: WeCom retries
    an event with the same user and CreateTime; the card and key make it one
    click."""
    if fields.get("MsgId"):
        return "msg:" + str(fields["MsgId"])[:124]
    parts = ("card", str(fields.get("TaskId") or ""), str(fields.get("FromUserName") or ""),
             str(fields.get("EventKey") or ""), str(fields.get("CreateTime") or ""))
    readable = ":".join(parts)
    if len(readable) <= 128:  # HandledUpdate.delivery_id's length
        return readable
    return "card:" + hashlib.sha256(readable.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Click:
    """A template-card click: which card, which button, and the one-use code
    to update the card with."""

    task: str
    key: str
    response_code: str


class WeComChannel:
    """One WeCom self-built app: the callback route (in), `send` (out)."""

    name = CHANNEL

    def __init__(self, ctx: Context, settings: WeComSettings, clock: Clock,
                 on_queued: Callable[[], None] = lambda: None,
                 client: WeComClient | None = None) -> None:
        if settings.missing():
            raise ValueError(f"wecom is not configured: {', '.join(settings.missing())} not set")
        assert settings.token is not None and settings.encoding_aes_key is not None
        self.ctx = ctx
        self.settings = settings
        self.clock = clock
        self.on_queued = on_queued
        self.client = client or WeComClient(settings)
        self.crypto = WeChatCrypto(settings.token.get_secret_value(),
                                   settings.encoding_aes_key.get_secret_value(),
                                   settings.corp_id)
        self.inbox = Inbox(ctx, CHANNEL, self._on_stored, clock)
        # photo sha256 → (media_id, "image" or "file", until)
        self._uploaded: dict[str, tuple[str, str, float]] = {}

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Fetch an access token, so a wrong corp_id or secret shows in the log
        at start-up (not fatal: an admin may fix the app while youhu runs)."""
        try:
            await self.client.token()
        except WeComError as error:
            log.error("wecom: cannot get an access token at start-up: %s", error)
        self.inbox.start()

    async def stop(self) -> None:
        """Finish the messages in hand (what is left stays in the inbox for
        the next start), then close the API client."""
        await self.inbox.stop()
        await self.client.aclose()

    def route(self) -> Route:
        """The callback endpoint at `wecom.path`: GET for URL verification,
        POST for messages and events."""
        return Route(self.settings.path, self._endpoint, methods=["GET", "POST"])

    # --- in -------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        params = request.query_params
        signature = params.get("msg_signature", "")
        timestamp = params.get("timestamp", "")
        nonce = params.get("nonce", "")
        if not (signature and timestamp and nonce):
            return PlainTextResponse("missing msg_signature, timestamp or nonce", status_code=400)
        if request.method == "GET":
            return self._verify_url(signature, timestamp, nonce, params.get("echostr", ""))
        body = await read_body(request, MAX_CALLBACK_BYTES)
        if body is None:
            return PlainTextResponse("too large", status_code=413)
        try:
            xml = self.crypto.decrypt_message(body, signature, timestamp, nonce)
        except (InvalidSignatureException, InvalidCorpIdException):
            log.warning("wecom callback: wrong signature or corp from %s",
                        request.client.host if request.client else "?")
            return PlainTextResponse("forbidden", status_code=403)
        except Exception as error:  # malformed envelope, bad base64, bad padding…
            log.info("wecom callback: cannot decrypt: %s: %s", type(error).__name__, error)
            return PlainTextResponse("malformed callback", status_code=400)
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW:
            # Correctly signed but old: a replay of a captured callback (the
            # redelivery records that would catch it are pruned after 30 days).
            log.warning("wecom callback: timestamp %s outside the replay window", timestamp)
            return PlainTextResponse("stale callback", status_code=403)
        try:
            message = parse_message(xml)
            fields = xmltodict.parse(xml)["xml"]
        except Exception as error:  # decrypted, but not the XML of a message
            log.info("wecom callback: cannot parse: %s: %s", type(error).__name__, error)
            return PlainTextResponse("malformed message", status_code=400)
        if message is None or not isinstance(fields, dict):
            return PlainTextResponse("malformed message", status_code=400)
        agent = str(fields.get("AgentID") or "")
        if agent and agent != str(self.settings.agent_id):
            log.warning("wecom callback for agent %s, not ours (%s): ignored", agent,
                        self.settings.agent_id)
            return Response(status_code=200)
        user = str(fields.get("FromUserName") or "")
        kind = str(fields.get("MsgType") or "")
        if user and (kind != "event" or fields.get("Event") == "template_card_event"):
            # Stored before WeCom hears back: a failure here is a 500, and
            # WeCom delivers the message again.
            await self.inbox.store(_delivery_id(fields), user, {"xml": xml})
        # An empty 200 tells WeCom "received, no passive reply".
        return Response(status_code=200)

    def _verify_url(self, signature: str, timestamp: str, nonce: str, echostr: str) -> Response:
        """WeCom's check when the callback URL is saved: answer the decrypted
        echostr, plain."""
        if not echostr:
            return PlainTextResponse("missing echostr", status_code=400)
        try:
            plain = self.crypto.check_signature(signature, timestamp, nonce, echostr)
        except (InvalidSignatureException, InvalidCorpIdException):
            return PlainTextResponse("forbidden", status_code=403)
        except Exception as error:
            log.info("wecom URL verification: %s: %s", type(error).__name__, error)
            return PlainTextResponse("malformed echostr", status_code=400)
        return PlainTextResponse(str(plain))

    async def _on_stored(self, item: Stored) -> None:
        """Handle one stored message (the inbox calls this, one member's
        messages in the order they came): the conversation, committed with
        the inbox's record of it, then the answer. A temporary failure to
        answer is raised, so the inbox tries again (sending the stored
        replies, not running the conversation twice); a permanent one is
        logged."""
        xml = str(item.payload.get("xml") or "")
        message = parse_message(xml)
        fields = xmltodict.parse(xml)["xml"]
        user = item.chat
        found = await self._incoming(message, fields, user)
        if found is None:
            return
        incoming, click = found
        replies = await self.inbox.handle(item, incoming)
        self.on_queued()
        try:
            if click is not None and replies and not replies[0].keeps_pressed:
                await self._update_card(user, click, replies)
            await self.send_replies(user, replies, None, attempts=ANSWER_ATTEMPTS)
        except ChannelError as error:
            if not error.permanent:
                raise
            log.warning("wecom: answering %s failed: %s", user, error)

    async def _incoming(self, message: Any, fields: dict[str, Any], user: str
                        ) -> tuple[Incoming, _Click | None] | None:
        kind = str(fields.get("MsgType") or "")
        delivery = str(fields["MsgId"]) if fields.get("MsgId") else None
        if kind == "event":
            if fields.get("Event") != "template_card_event":
                return None  # enter_agent and the like: nothing to answer
            key = str(fields.get("EventKey") or "")
            click = _Click(str(fields.get("TaskId") or ""), key,
                           str(fields.get("ResponseCode") or ""))
            return Incoming(CHANNEL, user, user, button=key,
                            delivery_id=_delivery_id(fields)), click
        if kind == "text":
            return Incoming.from_text(CHANNEL, user, user, str(message.content or ""),
                                      delivery_id=delivery), None
        if kind == "image":
            photo = await self._download(str(message.media_id), user)
            return Incoming(CHANNEL, user, user, photo=photo, delivery_id=delivery), None
        if kind == "file":  # e.g. a filled-in Excel sheet; as on Telegram, in `photo`
            data = await self._download(str(fields.get("MediaId") or ""), user)
            return Incoming(CHANNEL, user, user, photo=data, delivery_id=delivery), None
        if kind == "location":
            try:
                where = Location(float(message.location_x), float(message.location_y))
            except (TypeError, ValueError):
                return Incoming(CHANNEL, user, user, text="", delivery_id=delivery), None
            return Incoming(CHANNEL, user, user, location=where, delivery_id=delivery), None
        # Voice, video, a link…: answered as empty text, as on Telegram.
        return Incoming(CHANNEL, user, user, text="", delivery_id=delivery), None

    async def _download(self, media_id: str, user: str) -> bytes:
        """The photo a member sent, a few tries over a second or so. Bytes
        over the size limit come back as a stand-in the conversation refuses
        in the member's language; a photo that cannot be fetched at all comes
        back empty, which the conversation answers by asking for it again."""
        limit = self.ctx.rules.max_photo_bytes
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                return await self.client.download_media(media_id, limit)
            except WeComError as error:
                if error.permanent or attempt == DOWNLOAD_ATTEMPTS - 1:
                    log.warning("wecom: the photo %s of %s could not be downloaded: %s",
                                media_id, user, error)
                    return b""
                await asyncio.sleep(0.2 * 3 ** attempt)
        return b""

    async def _update_card(self, user: str, click: _Click, replies: Sequence[Reply]) -> None:
        """Show on the clicked card what the click did (for the clicker)."""
        if not click.response_code:
            return
        first = next((r.text.strip().splitlines()[0] for r in replies if r.text.strip()), "")
        pressed = parse_button(click.key)
        label = await asyncio.to_thread(outbox.card_label, self.ctx, click.task, click.key)
        if pressed is not None and pressed.kind == "flow" and label:
            # Inside a dialog the answer is the next question; the choice is what was done.
            name = "✓ " + label
        else:
            name = first or (("✓ " + label) if label else "✓")
        try:
            await self.client.update_template_card([user], click.response_code,
                                                   clip(name, REPLACE_NAME_LIMIT))
        except WeComError as error:  # the answer still goes out as a message
            log.info("wecom: updating card %s: %s", click.task, error)

    # --- out ------------------------------------------------------------------

    async def send(self, account: str, replies: Sequence[Reply],
                   call_id: int | None) -> str | None:
        """Deliver an outbox message to the WeCom userid `account` (the
        `Channel` protocol); WeComError is a ChannelError, temporary or
        permanent as the client decided."""
        return await self.send_replies(account, replies, call_id)

    async def send_replies(self, userid: str, replies: Sequence[Reply],
                           call_id: int | None, attempts: int = 1) -> str | None:
        """Send replies in order; returns the msgid of the first message sent.

        Each request is tried `attempts` times on a temporary error: an answer
        in a conversation has no outbox behind it, while the deliverer's
        messages (one attempt) are retried by the outbox."""
        first: str | None = None

        def sent(msgid: str) -> None:
            nonlocal first
            if first is None:
                first = msgid

        async def text(content: str) -> None:
            for piece in split_text(content):
                if piece.strip():  # WeCom refuses empty content
                    sent(await _trying(attempts, self.client.send_text, userid, piece))

        for reply in replies:
            for sha in reply.photos:
                # One bad photo never costs the message: refused as an image,
                # it goes as a file; refused as that too, it is left out.
                media = await _trying(attempts, self._media_id, sha)
                if media is None:
                    continue
                media_id, kind = media
                send_media = self.client.send_image if kind == "image" else self.client.send_file
                try:
                    sent(await _trying(attempts, send_media, userid, media_id))
                except WeComError as error:
                    if not error.permanent:
                        raise
                    log.warning("wecom: photo %s refused as %s: %s", sha[:12], kind, error)
            buttons = reply.all_buttons
            if not buttons:
                await text(reply.text)
            else:
                cards, too_long = template_cards(reply.text, buttons, call_id)
                if too_long:
                    await text(reply.text)
                for card in cards:
                    msgid, _ = await _trying(attempts, self.client.send_template_card,
                                             userid, card)
                    await asyncio.to_thread(outbox.remember_card, self.ctx, card["task_id"],
                                            {b["key"]: b["text"] for b in card["button_list"]},
                                            self.clock())
                    sent(msgid)
            for document in reply.documents:
                data = await asyncio.to_thread(self.ctx.media.read, document.sha256)
                media_id = await _trying(attempts, self.client.upload, data,
                                         "application/octet-stream", document.name)
                sent(await _trying(attempts, self.client.send_file, userid, media_id))
        return first

    async def _media_id(self, sha: str) -> tuple[str, str] | None:
        """The media_id of a stored photo, and whether it is an "image" or a
        "file": fitted to WeCom's image limits (`bot.images`) and uploaded
        once for its lifetime; a photo that cannot be an image, or that
        media/upload refuses as one, is uploaded as a file. None (logged)
        when neither works or the photo is gone: the message still goes."""
        now = monotonic_time.monotonic()
        known = self._uploaded.get(sha)
        if known is not None and known[2] > now:
            return known[0], known[1]
        try:
            original = await asyncio.to_thread(self.ctx.media.read, sha)
        except (OSError, ValueError) as error:
            log.warning("wecom: photo %s cannot be read: %s", sha[:12], error)
            return None
        fitted = await asyncio.to_thread(images.fit, original, images.WECOM_IMAGE)
        uploads = ([(fitted, "image")] if fitted is not None else []) + [(original, "file")]
        for data, kind in uploads:
            content_type = image_type(data) or "application/octet-stream"
            filename = "photo." + (content_type.split("/")[1].replace("jpeg", "jpg")
                                   if image_type(data) else "bin")
            try:
                media_id = await self.client.upload(data, content_type, filename, kind)
            except WeComError as error:
                if not error.permanent:
                    raise
                log.warning("wecom: photo %s refused by media/upload as %s: %s",
                            sha[:12], kind, error)
                continue
            for stale in [s for s, (_, _, until) in self._uploaded.items() if until <= now]:
                del self._uploaded[stale]
            self._uploaded[sha] = (media_id, kind, now + MEDIA_LIFETIME)
            return media_id, kind
        return None

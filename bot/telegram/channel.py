"""The Telegram channel: python-telegram-bot v22 connected to the
conversations, for polling and for webhooks.

In: every update becomes an `Incoming` (the largest size of a photo is
downloaded; an album arrives as several photos of one media group and is
answered once, after its last photo; a long text the app split into several
messages is joined back into one); the conversations answer with `Reply`s,
which are sent back as messages, photos and albums with inline keyboards — or,
for a question that asks for the location, a reply keyboard whose first key
shares it in one tap. Updates of one chat are handled in order, chats
concurrently. A pressed message is edited: its buttons go, and a line says
what the press did; the press itself is answered without a pop-up.

Out: the deliverer sends outbox messages through `send` (a `Channel`).
Every send — outbox messages and conversation replies alike — takes a slot
from `bot.pace`, which holds the overall limit (evenly, just under 30/s)
and the per-chat limit (about one message a second to a private chat)
in the database, for every worker of the bot at once, and the group limit
(a message every 3 s); replies go in a priority lane ahead of bulk. A 429
is waited out (its `retry_after`) and the send takes a new slot: PTB's
AIORateLimiter is not used, as its retries bypass the shared pace (each
retry is a send no slot accounts for, and they all go at once when its
pause ends, which draws more 429s). Text is sent plain
(no parse mode), so whatever a member typed is shown as typed and can never
break the markup; text over 4,096 characters is split, captions over 1,024
go in a message of their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InputFile,
    InputMediaPhoto,
    Message,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import Application

from bot import images, pace
from bot.delivery import ChannelError
from bot.inbox import Inbox
from bot.invitelink import remember_username
from bot.settings import TelegramSettings
from bot.telegram.render import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    extension,
    keyboard,
    outcome,
    pressed_label,
    split_text,
)
from handlers.conversations import Conversations
from handlers.menu import command_menu
from handlers.messages import Incoming, Location, Reply
from models import Locale, Member, Role
from workflows import accounts
from workflows.context import Context
from workflows.inbox import Stored

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALBUM_LIMIT = 10
ALLOWED_UPDATES = ["message", "callback_query"]
POLL_TIMEOUT = 20  # seconds a getUpdates long poll waits
RETRIES_AFTER_429 = 3  # a send refused this often more is left to the outbox's retries
FITTED_REMEMBERED = 10_000  # photos whose fitted copy this process remembers
# A text this long may be the first part of one the client split at 4,096
# (clients cut at a line or word end before the limit); the parts are joined.
SPLIT_PART = 3500
# Telegram's setMyCommands takes two-letter codes; both Chinese scripts are "zh".
MENU_LANGUAGES = {Locale.ZH_HANS: "zh", Locale.EN: "en"}

Clock = Callable[[], datetime]
Sent = TypeVar("Sent")
# The stored update `_on_update` is handling (set by `_on_stored`).
_handling: ContextVar[Stored | None] = ContextVar("telegram_update_in_hand", default=None)














def _seconds(error: RetryAfter) -> float:
    wait = error.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class TelegramChannel:
    """One bot: its PTB `Application`, the inbound handler and `send`."""

    name = CHANNEL

    def __init__(
        self,
        ctx: Context,
        settings: TelegramSettings,
        clock: Clock,
        on_queued: Callable[[], None] = lambda: None,
        album_wait: float = 0.8,
        overall_interval: float | None = pace.OVERALL_INTERVAL,
        text_wait: float = 1.0,
    ) -> None:
        if settings.token is None:
            raise ValueError("telegram.token is not set")
        self.ctx = ctx
        self.settings = settings
        self.clock = clock
        self.on_queued = on_queued
        self.album_wait = album_wait
        self.text_wait = text_wait
        self.conversations = Conversations(ctx)
        builder = (
            Application.builder()
            .token(settings.token.get_secret_value())
            .base_url(settings.base_url)
            .base_file_url(settings.base_file_url)
            # No rate limiter: every limit is paced by `bot.pace`, across
            # workers, and a 429 is retried through it (`_one`).
            .concurrent_updates(64)
            .job_queue(None)
        )
        # No PTB Updater: updates are stored before they are confirmed
        # (`_poll`, `feed`) and handled from the inbox.
        builder = builder.updater(None)
        self.application = builder.build()
        self.inbox = Inbox(ctx, CHANNEL, self._on_stored, clock)
        self._poller: asyncio.Task[None] | None = None
        self._chat_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.pace = pace.Pace(ctx.engine, CHANNEL, overall_interval)
        self._fitted_photos: dict[str, str | None] = {}  # stored sha → fitted sha / document
        # Parts of a text the client split, held until its last part (see `_text_part`).
        self._text_parts: dict[str, list[str]] = {}
        # Chats shown a reply keyboard (the location question) not yet taken away.
        # In memory: if another process answers next, the keyboard stays until
        # hidden by its one-time use — untidy, not wrong.
        self._reply_keyboards: set[int] = set()
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Connect (getMe), set the command menus, and start receiving."""
        app = self.application
        await app.initialize()  # getMe: the bot's username, for invites' deep links
        remember_username(self.ctx.media.root, self.settings, app.bot.username)
        await app.start()
        await self.set_default_menus()
        if self.settings.mode == "webhook":
            secret = self.settings.webhook_secret
            await app.bot.set_webhook(
                url=self.settings.webhook_url or "",
                secret_token=secret.get_secret_value() if secret else None,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await app.bot.delete_webhook()
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        self.inbox.start()

    async def stop(self) -> None:
        """Stop receiving, finish the updates in hand (what is left stays in
        the inbox for the next start), disconnect."""
        app = self.application
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self.inbox.stop()
        if app.running:
            await app.stop()
        await asyncio.gather(*self._background, return_exceptions=True)
        await app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """A webhook delivery (secret checked by the route): stored before
        the route answers Telegram."""
        await self.store(data)

    async def store(self, data: dict[str, Any]) -> bool:
        """Keep one update in the inbox (False: a redelivery)."""
        message = data.get("message") or (data.get("callback_query") or {}).get("message") or {}
        sender = (data.get("callback_query") or data.get("message") or {}).get("from") or {}
        chat = str((message.get("chat") or {}).get("id") or sender.get("id") or "?")
        group = message.get("media_group_id") if data.get("message") else None
        return await self.inbox.store(str(data.get("update_id")), chat, data,
                                      str(group) if group else None)

    async def _poll(self) -> None:
        """Long polling that confirms an update (the next getUpdates' offset)
        only once it is stored, so a crash loses nothing."""
        bot = self.application.bot
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await bot.get_updates(offset=offset, timeout=POLL_TIMEOUT,
                                                allowed_updates=ALLOWED_UPDATES)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (TelegramError, OSError) as error:  # network, 5xx, 409 while a webhook is set
                failures += 1
                log.warning("telegram: getUpdates failed (%s); retrying", error)
                await asyncio.sleep(min(0.5 * 2 ** failures, 30))
                continue
            for update in updates:
                await self.store(update.to_dict())
            if updates:
                offset = updates[-1].update_id + 1

    async def _on_stored(self, item: Stored) -> None:
        """Handle one stored update (the inbox calls this, in order per chat)."""
        update = Update.de_json(item.payload, self.application.bot)
        if item.group is not None and not item.done:
            # An album's photos arrive as separate updates a moment apart:
            # let them all arrive, so only the last one is answered.
            wait = (item.received_at - self.clock()).total_seconds() + self.album_wait
            if wait > 0:
                await asyncio.sleep(wait)
        current = _handling.set(item)
        try:
            await self._on_update(update)
        finally:
            _handling.reset(current)

    async def _converse(self, incoming: Incoming) -> list[Reply]:
        """The conversation's answer to the update being handled, committed
        with the inbox's record of it."""
        item = _handling.get()
        assert item is not None, "only from _on_stored"
        return await self.inbox.handle(item, incoming)

    # --- in -----------------------------------------------------------------

    async def _on_update(self, update: Update) -> None:
        chat = update.effective_chat
        if chat is None or update.effective_user is None:
            return
        item = _handling.get()
        message = update.message
        if (item is not None and message is not None and self._is_text_part(message)
                and await self._text_part(item, message)):
            return  # held: the text's last part answers for all of it
        async with self._chat_locks[str(chat.id)]:
            incoming = await self._incoming(update)
            if incoming is None:
                return
            if update.message is not None:
                incoming = self._joined(incoming, update.message)
            replies = await self._converse(incoming)
            if update.callback_query is not None:
                await self._answer_press(update)
                await self._retire_pressed(update, replies)
            if item is not None and await self.inbox.later_in_group(item):
                return  # a later photo of the album answers for all of them
            await self.send_replies(chat.id, replies)
            self._after(incoming)

    def _is_text_part(self, message: Message) -> bool:
        """A long text may be the first part of one the client split (Telegram
        apps cut a text over 4,096 characters into several messages), and any
        text right after such a part may be its continuation."""
        text = message.text
        if text is None or text.startswith("/"):
            return False
        return len(text) >= SPLIT_PART or str(message.chat.id) in self._text_parts

    async def _text_part(self, item: Stored, message: Message) -> bool:
        """The parts of a text the client split arrive as separate updates
        within a moment; they are joined and handled as the one text the
        member wrote (so the description is all of it, not its last part).
        Waits until `text_wait` after the part arrived; if the chat's next
        stored update is a text, this part is held (its update marked handled
        with no answer) and True returned — the next part carries it.

        Limitation: held parts are kept in this process's memory. If the
        process stops between two parts, or another worker claims the next
        part, the held part is lost from the join (the rest is still
        handled). A redelivered, already handled part is not held again."""
        if item.done:
            return False
        wait = (item.received_at - self.clock()).total_seconds() + self.text_wait
        if wait > 0:
            await asyncio.sleep(wait)
        following = await self.inbox.next_in_chat(item)
        message_after = (following or {}).get("message") or {}
        text_after = message_after.get("text")
        if not isinstance(text_after, str) or text_after.startswith("/"):
            return False
        await self.inbox.skip(item)
        self._text_parts.setdefault(str(message.chat.id), []).append(message.text or "")
        return True

    def _joined(self, incoming: Incoming, message: Message) -> Incoming:
        """`incoming` with the held earlier parts of its text in front."""
        held = self._text_parts.pop(str(message.chat.id), None)
        if not held or message.text is None:
            return incoming
        return Incoming.from_text(CHANNEL, incoming.sender, incoming.chat,
                                  "".join(held) + message.text,
                                  language=incoming.language,
                                  delivery_id=incoming.delivery_id)

    def _after(self, incoming: Incoming) -> None:
        self.on_queued()
        if incoming.command in ("start", "lang"):
            member = accounts.member_by_account(self.ctx, CHANNEL, incoming.sender)
            if member is not None:
                task = asyncio.get_running_loop().create_task(self.set_member_menu(member))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _incoming(self, update: Update) -> Incoming | None:
        user = update.effective_user
        chat = update.effective_chat
        assert user is not None and chat is not None
        base = Incoming(CHANNEL, str(user.id), str(chat.id), language=user.language_code,
                        delivery_id=str(update.update_id))
        if update.callback_query is not None:
            return replace(base, button=update.callback_query.data or "")
        message = update.message
        if message is None:
            return None
        if message.photo or message.document:
            return await self._photo_incoming(update.update_id, message)
        if message.location is not None:
            return replace(base, location=Location(message.location.latitude,
                                                   message.location.longitude))
        if message.text is not None:
            return Incoming.from_text(CHANNEL, base.sender, base.chat, message.text,
                                      language=user.language_code,
                                      delivery_id=base.delivery_id)
        return replace(base, text="")  # a sticker, a voice note…: answered as empty text

    async def _photo_incoming(self, update_id: int, message: Message) -> Incoming:
        """The largest size of a photo (or a file sent as a document), downloaded.
        A file over the size limit is not downloaded: a stand-in one byte over
        the limit lets the conversation refuse it in the member's language."""
        user = message.from_user
        assert user is not None
        limit = self.ctx.rules.max_photo_bytes
        attachment = message.photo[-1] if message.photo else message.document
        assert attachment is not None
        size = attachment.file_size or 0
        if size > limit:
            data = bytes(limit + 1)
        else:
            file = await attachment.get_file()
            data = bytes(await file.download_as_bytearray())
        return Incoming(CHANNEL, str(user.id), str(message.chat.id), photo=data,
                        text=message.caption, language=user.language_code,
                        delivery_id=str(update_id))

    async def _answer_press(self, update: Update) -> None:
        """Every press gets an answer (Telegram shows a spinner until then) —
        an empty one: the answer itself is the message that follows, and a
        pop-up repeating it would say everything twice."""
        query = update.callback_query
        assert query is not None
        try:
            await query.answer()
        except BadRequest as error:  # too old to answer: the message still goes out
            log.info("answering a button press: %s", error)

    async def _retire_pressed(self, update: Update, replies: list[Reply]) -> None:
        """Edit the pressed message: its buttons go, and a line says what the
        press did — so an alert no longer offers 签收 after it was done, and a
        summary no longer offers 发送呼叫 (the WeCom channel does the same with
        its cards). A press that changed nothing and left the buttons good
        (`Reply.keeps_pressed`), or a redelivery (no answer), leaves it."""
        query = update.callback_query
        assert query is not None
        if not replies or replies[0].keeps_pressed:
            return
        message = query.message
        try:
            if not isinstance(message, Message):  # too old to be sent to us whole
                await query.edit_message_reply_markup(reply_markup=None)
                return
            done = outcome(query.data or "", pressed_label(message, query.data or ""), replies)
            if message.text is not None:
                text = message.text + "\n\n" + done
                await query.edit_message_text(text[:TEXT_LIMIT], reply_markup=None)
            elif message.caption is not None:
                caption = message.caption + "\n\n" + done
                await query.edit_message_caption(caption[:CAPTION_LIMIT], reply_markup=None)
            else:
                await query.edit_message_reply_markup(reply_markup=None)
        except BadRequest as error:  # not modified, too old to edit: the answer still goes out
            log.info("retiring the buttons of a pressed message: %s", error)

    # --- out ------------------------------------------------------------------

    async def send(self, account: str, replies: Sequence[Reply],
                   call_id: int | None) -> str | None:
        """Deliver an outbox message to the Telegram user id `account` (the
        `Channel` protocol)."""
        try:
            return await self.send_replies(int(account), replies, paced=True)
        except RetryAfter as error:
            raise ChannelError(str(error), retry_after=_seconds(error)) from error
        except Forbidden as error:  # the member blocked the bot
            raise ChannelError(str(error), permanent=True) from error
        except BadRequest as error:  # chat not found, a malformed message: retrying won't help
            raise ChannelError(str(error), permanent=True) from error
        except TelegramError as error:  # network errors, timeouts, 5xx
            raise ChannelError(str(error)) from error

    async def _one(self, chat: int, paced: bool, send: Callable[[], Awaitable[Sent]]) -> Sent:
        """One API send, at the bot's pace (`bot.pace`, shared by every
        worker): outbox messages (`paced`) in the bulk lane, conversation
        replies in the priority lane ahead of them — both paced per chat, so
        a reply of three messages does not draw a 429 either."""
        for attempt in range(RETRIES_AFTER_429 + 1):
            slot = await self.pace.wait(chat, priority=not paced)
            try:
                return await send()
            except RetryAfter as error:
                if attempt == RETRIES_AFTER_429:
                    raise
                # Wait as Telegram asks, then a new slot: the retry is a send
                # of its own, so it must be paced like one.
                log.info("telegram: 429 for chat %s; retrying after %s s", chat,
                         _seconds(error))
                await asyncio.sleep(_seconds(error))
            finally:
                await self.pace.sent(chat, slot)
        raise AssertionError("unreachable")

    async def send_replies(self, chat_id: int | str, replies: Sequence[Reply],
                           paced: bool = False) -> str | None:
        """Send replies in order; returns the id of the first message sent.

        One bad attachment never costs the message: photos are fitted to
        Telegram's limits first (`bot.images`), one that cannot be a photo,
        or that Telegram refuses as one, goes as a document, one refused as
        that too (or missing from the store) is left out with a log line —
        and the text and buttons are sent whatever happened to the media.
        Rate limits, network errors and a blocked bot still raise: the
        outbox retries those."""
        bot = self.application.bot
        first: str | None = None
        chat = int(chat_id)

        async def send(call: Callable[[], Awaitable[Message | Sequence[Message]]]) -> None:
            nonlocal first
            message = await self._one(chat, paced, call)
            if first is None:
                one = message if isinstance(message, Message) else message[0]
                first = str(one.message_id)

        async def send_document(data: bytes, filename: str) -> None:
            # The one sendDocument path: photos sent as files and `Reply.documents`.
            await send(partial(bot.send_document, chat, InputFile(data, filename=filename)))

        async def as_documents(originals: Sequence[bytes]) -> None:
            for data in originals:
                try:
                    await send_document(data, "photo." + extension(data))
                except BadRequest as error:
                    log.warning("telegram: a photo refused even as a document: %s", error)

        async def media_refused(error: BadRequest, originals: Sequence[bytes]) -> None:
            log.warning("telegram: photos refused (%s); sending them as documents", error)
            await as_documents(originals)

        for reply in replies:
            markup = keyboard(reply)
            if reply.share_location:
                self._reply_keyboards.add(chat)
            elif markup is None and chat in self._reply_keyboards:
                # The location question is over: take its keyboard away with the
                # next message that has no buttons of its own.
                markup = ReplyKeyboardRemove()
                self._reply_keyboards.discard(chat)
            fitted = await asyncio.to_thread(self._fitted, reply.photos)
            photos = [(original, photo) for original, photo in fitted if photo is not None]
            documents = [original for original, photo in fitted if photo is None]
            text = reply.text if reply.text.strip() else ""
            captioned = False  # the text went as the caption of its one photo
            if len(photos) == 1 and not documents and len(text) <= CAPTION_LIMIT:
                try:
                    await send(partial(bot.send_photo, chat, photos[0][1],
                                       caption=text or None, reply_markup=markup))
                    captioned = True
                except BadRequest as error:
                    await media_refused(error, [photos[0][0]])
                photos = []
            for start in range(0, len(photos), ALBUM_LIMIT):
                batch = photos[start:start + ALBUM_LIMIT]
                try:
                    if len(batch) == 1:
                        await send(partial(bot.send_photo, chat, batch[0][1]))
                    else:
                        await send(partial(bot.send_media_group, chat,
                                           [InputMediaPhoto(photo) for _, photo in batch]))
                except BadRequest as error:
                    await media_refused(error, [original for original, _ in batch])
            await as_documents(documents)
            # No text message for photos only (an empty message is refused),
            # nor when the text went as the caption; documents follow either way.
            if not captioned and (text or markup is not None):
                pieces = split_text(text or "—")
                for index, piece in enumerate(pieces):
                    last = index == len(pieces) - 1
                    await send(partial(bot.send_message, chat, piece,
                                       reply_markup=markup if last else None))
            for document in reply.documents:
                data = await asyncio.to_thread(self.ctx.media.read, document.sha256)
                await send_document(data, document.name)
        return first

    def _fitted(self, shas: Sequence[str]) -> list[tuple[bytes, bytes | None]]:
        """Each stored photo with the bytes to send it as a photo (None: send
        the original as a document); photos missing from the store are left
        out. Fitted copies are kept in the media store, by their hash."""
        media = self.ctx.media
        fitted: list[tuple[bytes, bytes | None]] = []
        for sha in shas:
            try:
                original = media.read(sha)
            except (OSError, ValueError) as error:
                log.warning("telegram: photo %s cannot be read: %s", sha[:12], error)
                continue
            if sha not in self._fitted_photos:
                photo = images.fit(original, images.TELEGRAM_PHOTO)
                if len(self._fitted_photos) > FITTED_REMEMBERED:
                    self._fitted_photos.clear()
                self._fitted_photos[sha] = (None if photo is None else
                                            sha if photo is original else media.put(photo))
            kept = self._fitted_photos[sha]
            fitted.append((original, None if kept is None else
                           original if kept == sha else media.read(kept)))
        return fitted

    # --- command menus ----------------------------------------------------------

    async def set_default_menus(self) -> None:
        """The menu a member sees before anything more specific: the caller's,
        in Chinese for `zh` clients and English for the rest."""
        bot = self.application.bot
        for locale, code in MENU_LANGUAGES.items():
            commands = [BotCommand(c, d) for c, d in command_menu(Role.CALLER, locale)]
            await bot.set_my_commands(commands, scope=BotCommandScopeDefault(),
                                      language_code=code)
        commands = [BotCommand(c, d) for c, d in command_menu(Role.CALLER, Locale.ZH_HANS)]
        await bot.set_my_commands(commands, scope=BotCommandScopeDefault())

    async def set_member_menu(self, member: Member) -> None:
        """The member's own menu: their role's commands in their language."""
        account = await asyncio.to_thread(accounts.account_of, self.ctx, member.id or 0,
                                          CHANNEL)
        if account is None:
            return
        commands = [BotCommand(c, d) for c, d in command_menu(member.role, member.locale)]
        try:
            await self.application.bot.set_my_commands(
                commands, scope=BotCommandScopeChat(int(account)))
        except TelegramError as error:
            log.warning("setting the menu of %s: %s", member.code, error)

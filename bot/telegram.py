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
AIORateLimiter paces the overall rate (evenly, just under 30/s) and honours
`retry_after`;
the per-chat limit of about one message a second to a private chat, which
it does not pace, is paced here for outbox messages. Text is sent plain
(no parse mode), so whatever a member typed is shown as typed and can never
break the markup; text over 4,096 characters is split, captions over 1,024
go in a message of their own.
"""

from __future__ import annotations

import asyncio
import logging
import time as monotonic_time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot.delivery import ChannelError
from bot.invitelink import remember_username
from bot.settings import TelegramSettings
from handlers.buttons import parse as parse_button
from handlers.conversations import Conversations
from handlers.menu import command_menu
from handlers.messages import Incoming, Location, Reply
from models import Locale, Member, Role
from workflows import queries
from workflows.context import Context

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
ALBUM_LIMIT = 10
# A text this long may be the first part of one the client split at 4,096
# (clients cut at a line or word end before the limit); the parts are joined.
SPLIT_PART = 3500
PER_CHAT_INTERVAL = 1.05  # seconds between messages to one private chat
# Telegram's setMyCommands takes two-letter codes; both Chinese scripts are "zh".
MENU_LANGUAGES = {Locale.ZH_HANS: "zh", Locale.EN: "en"}

Clock = Callable[[], datetime]
Sent = TypeVar("Sent")


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at line ends where
    possible so a card is not split mid-line."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


def keyboard(reply: Reply) -> Markup | None:
    """Inline buttons; or, for a reply that asks for the location, a reply
    keyboard: "📍 share my location" (one tap, `request_location`) above the
    reply's buttons as keys that send their label — a message carries one
    keyboard or the other, never both."""
    if reply.share_location:
        rows = [[KeyboardButton(reply.share_location, request_location=True)]]
        rows += [[KeyboardButton(b.label) for b in row] for row in reply.buttons]
        return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row]
         for row in reply.buttons]
    )


def pressed_label(message: Message, data: str) -> str | None:
    """The label of the inline button with `data` on `message`."""
    markup = message.reply_markup
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return None


def outcome(pressed: str, label: str | None, replies: Sequence[Reply]) -> str:
    """What a pressed message says it led to, once its buttons are retired:
    the choice made, for an answer in a dialog or a press that opened one
    (its next question carries the dialog's buttons); else the first line of
    the answer ("您已签收 BY-2026-000001。", or why nothing changed)."""
    first = next((r for r in replies if r.text.strip()), None)
    opened = first is not None and any(b.data.startswith("f:") for b in first.all_buttons)
    press = parse_button(pressed)
    if label and (opened or (press is not None and press.kind == "flow")):
        return "✓ " + label
    return first.text.strip().splitlines()[0] if first is not None else ("✓ " + (label or ""))


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
            # One message every 1/29 s rather than 30 a second: a bucket of 30
            # lets a burst through that Telegram's sliding window answers with
            # 429s; a bucket of one paces evenly just under the limit.
            .rate_limiter(AIORateLimiter(overall_max_rate=1, overall_time_period=1 / 29,
                                         max_retries=2))
            .concurrent_updates(64)
            .job_queue(None)
        )
        if settings.mode == "webhook":
            builder = builder.updater(None)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self._on_update))
        self.application.add_error_handler(self._on_error)
        self._chat_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._chat_next_send: dict[int, float] = {}
        self._chat_send_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._albums: dict[str, list[tuple[int, Message]]] = {}
        self._text_parts: dict[str, list[tuple[int, Message]]] = {}
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
                allowed_updates=["message", "callback_query"],
            )
        else:
            assert app.updater is not None
            await app.bot.delete_webhook()
            await app.updater.start_polling(
                poll_interval=0, timeout=20, allowed_updates=["message", "callback_query"]
            )

    async def stop(self) -> None:
        """Stop receiving, finish the updates in hand, disconnect."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await asyncio.gather(*self._background, return_exceptions=True)
        await app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """A webhook delivery: hand the update to the application's queue."""
        update = Update.de_json(data, self.application.bot)
        await self.application.update_queue.put(update)

    # --- in -----------------------------------------------------------------

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None or update.effective_user is None:
            return
        message = update.message
        if message is not None and message.media_group_id and message.photo:
            await self._album_part(update, message)
            return
        if message is not None and self._is_text_part(message):
            await self._text_part(update, message)
            return
        async with self._chat_locks[str(chat.id)]:
            incoming = await self._incoming(update)
            if incoming is None:
                return
            replies = await asyncio.to_thread(self.conversations.handle, incoming, self.clock())
            if update.callback_query is not None:
                await self._answer_press(update)
                await self._retire_pressed(update, replies)
            await self.send_replies(chat.id, replies)
            self._after(incoming)

    async def _album_part(self, update: Update, message: Message) -> None:
        """Photos of one album arrive as separate updates: each is handled
        (stored with the call in progress), but only the answer to the last
        one is sent, so a member sending nine photos gets one reply."""
        group = str(message.media_group_id)
        parts = self._albums.setdefault(group, [])
        parts.append((update.update_id, message))
        count = len(parts)
        await asyncio.sleep(self.album_wait)
        if len(parts) != count:
            return  # a later photo of the album takes over
        del self._albums[group]
        chat_id = message.chat.id
        async with self._chat_locks[str(chat_id)]:
            replies: list[Reply] = []
            last: Incoming | None = None
            for update_id, part in sorted(parts, key=lambda p: p[1].message_id):
                incoming = await self._photo_incoming(update_id, part)
                replies = await asyncio.to_thread(self.conversations.handle, incoming,
                                                  self.clock())
                last = incoming
            await self.send_replies(chat_id, replies)
            if last is not None:
                self._after(last)

    def _is_text_part(self, message: Message) -> bool:
        """A long text may be the first part of one the client split (Telegram
        apps cut a text over 4,096 characters into several messages), and any
        text right after such a part may be its continuation."""
        text = message.text
        if text is None or text.startswith("/"):
            return False
        return len(text) >= SPLIT_PART or str(message.chat.id) in self._text_parts

    async def _text_part(self, update: Update, message: Message) -> None:
        """The parts of a text the client split arrive as separate messages
        within a moment: they are joined and handled as the one text the
        member wrote (so the description is all of it, not its last part).
        Waiting `text_wait` after each part; only long texts wait at all."""
        chat_id = message.chat.id
        parts = self._text_parts.setdefault(str(chat_id), [])
        parts.append((update.update_id, message))
        count = len(parts)
        await asyncio.sleep(self.text_wait)
        if len(parts) != count:
            return  # a later part takes over
        del self._text_parts[str(chat_id)]
        ordered = sorted(parts, key=lambda p: p[1].message_id)
        text = "".join(part.text or "" for _, part in ordered)
        user = message.from_user
        assert user is not None
        incoming = Incoming.from_text(CHANNEL, str(user.id), str(chat_id), text,
                                      language=user.language_code,
                                      delivery_id=str(ordered[0][0]))
        async with self._chat_locks[str(chat_id)]:
            replies = await asyncio.to_thread(self.conversations.handle, incoming, self.clock())
            await self.send_replies(chat_id, replies)
            self._after(incoming)

    def _after(self, incoming: Incoming) -> None:
        self.on_queued()
        if incoming.command in ("start", "lang"):
            member = queries.member_by_platform(self.ctx, CHANNEL, incoming.sender)
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

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram update %s failed", getattr(update, "update_id", "?"),
                  exc_info=context.error)

    # --- out ------------------------------------------------------------------

    def reaches(self, member: Member) -> bool:
        return member.telegram_id is not None

    async def send(self, member: Member, replies: Sequence[Reply],
                   call_id: int | None) -> str | None:
        """Deliver an outbox message (the `Channel` protocol)."""
        assert member.telegram_id is not None
        try:
            return await self.send_replies(member.telegram_id, replies, paced=True)
        except RetryAfter as error:
            raise ChannelError(str(error), retry_after=_seconds(error)) from error
        except Forbidden as error:  # the member blocked the bot
            raise ChannelError(str(error), permanent=True) from error
        except BadRequest as error:  # chat not found, a malformed message: retrying won't help
            raise ChannelError(str(error), permanent=True) from error
        except TelegramError as error:  # network errors, timeouts, 5xx
            raise ChannelError(str(error)) from error

    async def _one(self, chat: int, paced: bool, send: Callable[[], Awaitable[Sent]]) -> Sent:
        """One API send. Paced (outbox messages to a private chat): one at a
        time per chat, at least `PER_CHAT_INTERVAL` after the previous one was
        *answered* — pacing when a send is queued is not enough, since the
        overall limiter may hold one send longer than the next."""
        if not paced or chat < 0:  # groups are paced by AIORateLimiter
            return await send()
        async with self._chat_send_locks[chat]:
            wait = self._chat_next_send.get(chat, 0.0) - monotonic_time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await send()
            finally:
                self._chat_next_send[chat] = monotonic_time.monotonic() + PER_CHAT_INTERVAL

    async def send_replies(self, chat_id: int | str, replies: Sequence[Reply],
                           paced: bool = False) -> str | None:
        """Send replies in order; returns the id of the first message sent."""
        bot = self.application.bot
        first: str | None = None
        chat = int(chat_id)

        async def send(call: Callable[[], Awaitable[Message | Sequence[Message]]]) -> None:
            nonlocal first
            message = await self._one(chat, paced, call)
            if first is None:
                one = message if isinstance(message, Message) else message[0]
                first = str(one.message_id)

        for reply in replies:
            markup = keyboard(reply)
            if reply.share_location:
                self._reply_keyboards.add(chat)
            elif markup is None and chat in self._reply_keyboards:
                # The location question is over: take its keyboard away with the
                # next message that has no buttons of its own.
                markup = ReplyKeyboardRemove()
                self._reply_keyboards.discard(chat)
            photos = [await asyncio.to_thread(self.ctx.media.read, sha) for sha in reply.photos]
            if len(photos) == 1 and len(reply.text) <= CAPTION_LIMIT:
                await send(partial(bot.send_photo, chat, photos[0],
                                   caption=reply.text or None, reply_markup=markup))
            else:  # the photos first, then the text (documents follow either way)
                for start in range(0, len(photos), ALBUM_LIMIT):
                    batch = photos[start:start + ALBUM_LIMIT]
                    if len(batch) == 1:
                        await send(partial(bot.send_photo, chat, batch[0]))
                    else:
                        await send(partial(bot.send_media_group, chat,
                                           [InputMediaPhoto(p) for p in batch]))
                pieces = split_text(reply.text)
                for index, piece in enumerate(pieces):
                    last = index == len(pieces) - 1
                    await send(partial(bot.send_message, chat, piece,
                                       reply_markup=markup if last else None))
            for document in reply.documents:
                data = await asyncio.to_thread(self.ctx.media.read, document.sha256)
                await send(partial(bot.send_document, chat,
                                   InputFile(data, filename=document.name)))
        return first

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
        if member.telegram_id is None:
            return
        commands = [BotCommand(c, d) for c, d in command_menu(member.role, member.locale)]
        try:
            await self.application.bot.set_my_commands(
                commands, scope=BotCommandScopeChat(member.telegram_id))
        except TelegramError as error:
            log.warning("setting the menu of %s: %s", member.code, error)

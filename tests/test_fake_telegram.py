"""The fake Bot API server (tests/fakes/telegram_api.py) against the real
python-telegram-bot: PTB de-jsons the fake's answers, raises its usual errors
for the fake's refusals, and an Application polls it or receives its webhook
posts. No pytest-asyncio: each async scenario runs in asyncio.run."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import warnings
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, NetworkError, RetryAfter, TimedOut
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram_api import FakeTelegram

PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4 + b"\xff\xd9"  # JPEG-ish, with CR/LF bytes
OTHER_PHOTO = b"\x89PNG\r\n\x1a\n" + b"\r\n--not-a-boundary\r\n" * 10


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    with FakeTelegram() as fake:
        yield fake


def retry_seconds(error: RetryAfter) -> float:
    """``error.retry_after`` in seconds, whether PTB gives an int (22's default,
    with a deprecation warning) or a timedelta (``PTB_TIMEDELTA=1``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def make_bot(tg: FakeTelegram) -> Bot:
    return Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)


def make_app(tg: FakeTelegram) -> Application:  # type: ignore[type-arg]
    return (Application.builder().token(tg.token)
            .base_url(tg.base_url).base_file_url(tg.base_file_url).build())


async def polling(app: Application, scenario: Callable[[], Awaitable[None]]) -> None:  # type: ignore[type-arg]
    """Run ``scenario`` while ``app`` polls the fake, then shut the app down."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=1))
        try:
            await scenario()
        finally:
            await app.updater.stop()
            await app.stop()


def test_echo_bot_over_long_polling(tg: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_user is not None
        await update.effective_message.reply_text(
            f"{update.effective_user.first_name} ({update.effective_user.language_code}) "
            f"said: {update.effective_message.text}")

    app = make_app(tg)
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))

    async def scenario() -> None:
        update = tg.user_sends_text(42, "你好", first_name="王芳")
        reply = await tg.wait_for_async(lambda m: m.chat_id == 42)
        assert reply.method == "sendMessage"
        assert reply.text == "王芳 (zh-hans) said: 你好"
        assert reply.message_id is not None
        assert reply.message_id != update["message"]["message_id"]
        tg.user_sends_text(43, "second")
        await tg.wait_for_async(lambda m: m.chat_id == 43)

    asyncio.run(polling(app, scenario))
    assert [m.text for m in tg.messages_to(42)] == ["王芳 (zh-hans) said: 你好"]
    assert tg.pending_updates == []  # PTB confirmed both through the offset
    methods = [c.method for c in tg.requests]
    assert methods[:2] == ["getMe", "deleteWebhook"]
    assert "getUpdates" in methods


def test_start_command_with_deep_link_code(tg: FakeTelegram) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"code={context.args}")

    app = make_app(tg)
    app.add_handler(CommandHandler("start", start))

    async def scenario() -> None:
        tg.user_sends_command(7, "/start", "INV-123")
        assert (await tg.wait_for_async()).text == "code=['INV-123']"

    asyncio.run(polling(app, scenario))


def test_location_reaches_the_handler(tg: FakeTelegram) -> None:
    async def where(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        location = update.effective_message.location
        assert location is not None
        await update.effective_message.reply_text(f"{location.latitude},{location.longitude}")

    app = make_app(tg)
    app.add_handler(MessageHandler(filters.LOCATION, where))

    async def scenario() -> None:
        tg.user_sends_location(7, 30.25, 120.125)
        assert (await tg.wait_for_async()).text == "30.25,120.125"

    asyncio.run(polling(app, scenario))


def test_send_photo_with_bytes_and_by_file_id(tg: FakeTelegram) -> None:
    async def main() -> None:
        async with make_bot(tg) as bot:
            sent = await bot.send_photo(42, PHOTO, caption="<b>现场</b>", parse_mode=ParseMode.HTML)
            assert sent.caption == "现场"
            assert sent.photo[-1].file_id
            again = await bot.send_photo(43, sent.photo[-1].file_id)
            assert again.photo[-1].file_id == sent.photo[-1].file_id

    asyncio.run(main())
    first, second = tg.sent
    assert (first.method, first.chat_id, first.caption) == ("sendPhoto", 42, "<b>现场</b>")
    assert first.photos == [PHOTO]
    assert isinstance(second.photos[0], str)
    assert tg.file_bytes(second.photos[0]) == PHOTO


def test_send_media_group_of_two_photos(tg: FakeTelegram) -> None:
    async def main() -> None:
        async with make_bot(tg) as bot:
            messages = await bot.send_media_group(42, [
                InputMediaPhoto(PHOTO, caption="新报事项"), InputMediaPhoto(OTHER_PHOTO)])
            assert len(messages) == 2
            assert messages[0].media_group_id == messages[1].media_group_id is not None
            assert messages[0].caption == "新报事项"

    asyncio.run(main())
    (album,) = tg.messages_to(42)
    assert album.method == "sendMediaGroup"
    assert album.photos == [PHOTO, OTHER_PHOTO]
    assert album.caption == "新报事项"
    assert len(album.message_ids) == 2


def test_user_photo_downloads_as_the_same_bytes(tg: FakeTelegram) -> None:
    update = tg.user_sends_photo(42, PHOTO, caption="路灯坏了")
    sizes = update["message"]["photo"]
    assert len({s["file_id"] for s in sizes}) == len(sizes) >= 2
    assert sizes[-1]["width"] == max(s["width"] for s in sizes)

    async def main() -> tuple[bytes, bytes]:
        async with make_bot(tg) as bot:
            largest = await (await bot.get_file(sizes[-1]["file_id"])).download_as_bytearray()
            thumb = await (await bot.get_file(sizes[0]["file_id"])).download_as_bytearray()
            with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
                await bot.get_file("no-such-file")
            return bytes(largest), bytes(thumb)

    largest, thumb = asyncio.run(main())
    assert largest == PHOTO
    assert thumb != PHOTO


def test_album_from_a_user_shares_a_media_group_id(tg: FakeTelegram) -> None:
    first, second = tg.user_sends_album(42, [PHOTO, OTHER_PHOTO], caption="两张")
    assert first["message"]["media_group_id"] == second["message"]["media_group_id"]
    assert first["message"]["caption"] == "两张" and "caption" not in second["message"]
    assert second["update_id"] == first["update_id"] + 1


def test_button_press_is_answered_and_the_message_edited(tg: FakeTelegram) -> None:
    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.message is not None
        await query.answer(f"got {query.data}")
        await query.edit_message_text(f"acknowledged ({query.data})")

    app = make_app(tg)
    app.add_handler(CallbackQueryHandler(pressed))

    async def scenario() -> None:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("受理", callback_data="ack:1")]])
        alert = await app.bot.send_message(42, "新报事项", reply_markup=keyboard)
        assert alert.reply_markup == keyboard
        update = tg.user_presses(42, alert.message_id, "ack:1")
        assert update["callback_query"]["message"]["message_id"] == alert.message_id
        edit = await tg.wait_for_async(lambda m: m.method == "editMessageText")
        assert edit.text == "acknowledged (ack:1)"
        assert edit.message_id == alert.message_id

    asyncio.run(polling(app, scenario))
    (answer,) = tg.callback_answers()
    assert answer.text == "got ack:1"
    assert tg.message(tg.messages_to(42)[0].message_id or 0)["text"] == "acknowledged (ack:1)"
    assert "reply_markup" not in tg.message(tg.messages_to(42)[0].message_id or 0)


def test_telegram_refusals_come_back_as_ptb_errors(tg: FakeTelegram) -> None:
    async def main() -> None:
        async with make_bot(tg) as bot:
            with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
                await bot.send_message(42, "a <script> b", parse_mode=ParseMode.HTML)
            ok = await bot.send_message(42, "a &lt;script&gt; <b>b</b>", parse_mode=ParseMode.HTML)
            assert ok.text == "a <script> b"
            with pytest.raises(BadRequest, match=r"(?i)message is too long"):
                await bot.send_message(42, "长" * 4097)
            await bot.send_message(42, "长" * 4096)
            with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
                await bot.send_photo(42, PHOTO, caption="x" * 1025)
            with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
                await bot.send_message(42, "x", reply_markup=InlineKeyboardMarkup(
                    [[InlineKeyboardButton("x", callback_data="x" * 65)]]))
            with pytest.raises(BadRequest, match=r"(?i)not modified"):
                await bot.edit_message_text("a <script> b", 42, ok.message_id)
            with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
                await bot.edit_message_text("new", 42, 999_999)
            with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
                await bot.answer_callback_query("forged")
            with pytest.raises(BadRequest, match=r"(?i)wrong file identifier"):
                await bot.send_photo(42, "no-such-file-id")

    asyncio.run(main())
    assert len(tg.messages_to(42)) == 2


# PTB 22 warns, when it builds RetryAfter, that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_fail_next_429_raises_retry_after_then_succeeds(tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", status=429, retry_after=2)

    async def main() -> None:
        async with make_bot(tg) as bot:
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(42, "nudge")
            assert retry_seconds(refused.value) == 2
            await bot.send_message(42, "nudge")

    asyncio.run(main())
    assert [m.text for m in tg.sent] == ["nudge"]
    assert [c.status for c in tg.requests if c.method == "sendMessage"] == [429, 200]
    assert tg.too_many_requests == 0  # injected failures are not the rate limiter's


def test_fail_next_5xx_raises_network_error(tg: FakeTelegram) -> None:
    tg.fail_next("sendMessage", status=500)
    tg.fail_next("sendPhoto", status=502, count=2)

    async def main() -> None:
        async with make_bot(tg) as bot:
            with pytest.raises(NetworkError, match="Internal Server Error"):
                await bot.send_message(42, "x")
            for _ in range(2):
                with pytest.raises(NetworkError, match="Bad Gateway"):
                    await bot.send_photo(42, PHOTO)
            await bot.send_photo(42, PHOTO)

    asyncio.run(main())
    assert [m.method for m in tg.sent] == ["sendPhoto"]


def test_commands_per_scope_and_language(tg: FakeTelegram) -> None:
    scope = BotCommandScopeChat(42)

    async def main() -> None:
        async with make_bot(tg) as bot:
            await bot.set_my_commands([BotCommand("call", "报事项")], language_code="zh")
            await bot.set_my_commands([BotCommand("queue", "queue")], scope=scope,
                                      language_code="en")
            with pytest.raises(BadRequest, match=r"(?i)language code"):
                await bot.set_my_commands([BotCommand("call", "x")], language_code="zh-hans")
            assert [c.command for c in await bot.get_my_commands(scope, "en")] == ["queue"]
            await bot.delete_my_commands(scope, "en")
            assert await bot.get_my_commands(scope, "en") == ()

    asyncio.run(main())
    assert tg.my_commands(language_code="zh") == [{"command": "call", "description": "报事项"}]


class WebhookReceiver:
    """A tiny webhook endpoint in the test's event loop: records what arrives and
    answers 403 to a wrong secret, as youhu's will."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[tuple[str | None, dict[str, object]]] = []
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # NODELAY
        sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/telegram"
        app = Starlette(routes=[Route("/telegram", self.handle, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False,
                                                    lifespan="off"))

    async def handle(self, request: Request) -> Response:
        header = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        self.received.append((header, await request.json()))
        return Response(status_code=200 if header == self.secret else 403)


def test_webhook_mode_posts_updates_with_the_secret(tg: FakeTelegram) -> None:
    receiver = WebhookReceiver("s3cret_TOKEN-1")

    async def main() -> None:
        serving = asyncio.create_task(receiver.server.serve(sockets=[receiver.sock]))
        while not receiver.server.started:
            await asyncio.sleep(0.001)
        try:
            async with make_bot(tg) as bot:
                tg.user_sends_text(42, "before the webhook")  # waits, then goes to the webhook
                await bot.set_webhook(receiver.url, secret_token=receiver.secret)
                assert (await bot.get_webhook_info()).url == receiver.url
                with pytest.raises(Conflict):
                    await bot.get_updates()
                update = tg.user_sends_text(42, "after")
                await tg.wait_until_async(lambda: len(tg.webhook_responses) == 2)
                # The same update again, then with a wrong secret, then with none.
                assert await tg.apost_raw_update(update) == 200
                assert await tg.apost_raw_update(update, secret="wrong") == 403
                assert await tg.apost_raw_update(update, secret=None) == 403
                await bot.delete_webhook()
                tg.user_sends_text(42, "polled")
                assert [u.message.text for u in await bot.get_updates()
                        if u.message] == ["polled"]
        finally:
            receiver.server.should_exit = True
            await serving

    asyncio.run(main())
    assert tg.webhook_responses == [200, 200, 200, 403, 403]
    texts = [body["message"]["text"] for _, body in receiver.received]  # type: ignore[index]
    assert texts == ["before the webhook", "after", "after", "after", "after"]
    assert [h for h, _ in receiver.received] == [receiver.secret] * 3 + ["wrong", None]


# PTB 22 warns, when it builds RetryAfter, that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_rate_limits_answer_429_and_count() -> None:
    with FakeTelegram(limit_global_per_sec=3, limit_per_chat_per_sec=1) as limited:
        async def main() -> None:
            async with make_bot(limited) as bot:
                await bot.send_message(1, "a")
                with pytest.raises(RetryAfter) as refused:
                    await bot.send_message(1, "b")  # the same chat within a second
                assert retry_seconds(refused.value) == 1
                await bot.send_message(2, "c")
                await bot.send_message(3, "d")
                with pytest.raises(RetryAfter):
                    await bot.send_message(4, "e")  # a fourth message within a second
                await bot.get_me()  # not a send: never limited

        asyncio.run(main())
        assert limited.too_many_requests == 2
        assert [(a.method, a.chat_id) for a in limited.accepted] == [
            ("sendMessage", 1), ("sendMessage", 2), ("sendMessage", 3)]
        assert [m.text for m in limited.sent] == ["a", "c", "d"]


def test_raw_http_json_get_unknown_method_and_wrong_token(tg: FakeTelegram) -> None:
    api = f"{tg.base_url}{tg.token}"
    with httpx.Client() as client:
        assert client.get(f"{api}/getMe").json()["result"]["is_bot"] is True
        sent = client.post(f"{api}/sendMessage", json={"chat_id": 5, "text": "json body"})
        assert sent.json()["result"]["chat"] == {"id": 5, "type": "private", "first_name": "User 5"}
        assert client.get(f"{api}/SENDMESSAGE", params={"chat_id": "6", "text": "q"}).json()["ok"]
        unknown = client.post(f"{api}/sendDice", data={"chat_id": "5"})
        assert unknown.status_code == 404
        assert unknown.json() == {"ok": False, "error_code": 404,
                                  "description": "Not Found: method not found"}
        wrong = client.post(f"{tg.base_url}999:wrong/getMe")
        assert (wrong.status_code, wrong.json()["description"]) == (401, "Unauthorized")
        assert client.get(f"{tg.base_file_url}{tg.token}/photos/none.jpg").status_code == 404
    assert [(m.chat_id, m.text) for m in tg.sent] == [(5, "json body"), (6, "q")]


def test_wait_for_gives_up_with_a_useful_error(tg: FakeTelegram) -> None:
    with pytest.raises(TimeoutError, match="did not come"):
        tg.wait_for(lambda m: False, timeout=0.05)


def test_slow_answer_times_out_in_ptb_but_the_message_was_sent(tg: FakeTelegram) -> None:
    tg.slow_next("sendMessage", seconds=0.3)

    async def main() -> None:
        async with make_bot(tg) as bot:
            with pytest.raises(TimedOut):
                await bot.send_message(42, "nudge", read_timeout=0.05)

    asyncio.run(main())
    tg.wait_for(lambda m: m.text == "nudge")  # delivered all the same, as Telegram may


def test_async_context_manager_and_a_press_on_an_unknown_message() -> None:
    async def main() -> None:
        async with FakeTelegram() as tg:
            update = tg.user_presses(42, 12345, "forged:data")
            query = update["callback_query"]
            assert (query["data"], query["message"]["message_id"]) == ("forged:data", 12345)
            async with make_bot(tg) as bot:
                (received,) = await bot.get_updates()
                assert received.callback_query is not None
                assert received.callback_query.data == "forged:data"
                assert await bot.answer_callback_query(query["id"], "stale button")

    asyncio.run(main())


class SteppedClock:
    """The fake's rate-limit clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_overall_limit_is_a_strict_sliding_second() -> None:
    clock = SteppedClock()
    with FakeTelegram(limit_global_per_sec=30, limit_per_chat_per_sec=1,
                      clock=clock) as limited:
        async def main() -> None:
            async with make_bot(limited) as bot:
                for n in range(30):  # 30 chats, spread over 0.58 s: all accepted
                    clock.now = 1000.0 + n * 0.02
                    await bot.send_message(n + 1, f"m{n}")
                clock.now = 1000.999  # a 31st within the second of the first
                with pytest.raises(RetryAfter) as refused:
                    await bot.send_message(31, "late")
                assert retry_seconds(refused.value) == 1
                clock.now = 1001.0  # one second after the first: it no longer counts
                await bot.send_message(31, "on time")
                with pytest.raises(RetryAfter):  # the second after the second is full again
                    await bot.send_message(32, "again")

        asyncio.run(main())
        assert limited.too_many_overall == 2
        assert limited.too_many_per_chat == 0
        assert len(limited.accepted) == 31


def test_the_per_chat_limit_is_one_a_second_and_counted_apart() -> None:
    clock = SteppedClock()
    with FakeTelegram(limit_global_per_sec=30, limit_per_chat_per_sec=1,
                      clock=clock) as limited:
        async def main() -> None:
            async with make_bot(limited) as bot:
                await bot.send_message(7, "first")
                clock.now = 1000.999
                with pytest.raises(RetryAfter) as refused:
                    await bot.send_message(7, "too soon")
                assert retry_seconds(refused.value) == 1
                await bot.send_message(8, "another chat is free")
                clock.now = 1001.0
                await bot.send_message(7, "a second later")

        asyncio.run(main())
        assert (limited.too_many_per_chat, limited.too_many_overall) == (1, 0)
        assert [(a.chat_id, a.at) for a in limited.accepted] == [
            (7, 1000.0), (8, 1000.999), (7, 1001.0)]
        assert limited.too_many_requests == 1

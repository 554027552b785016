"""Talking to the conversations as a member would: the `Chat` helper the
other handler tests use, and the basics — strangers, /help, /lang, unknown
commands and buttons, redeliveries."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, func, select

from handlers.conversations import Conversations
from handlers.messages import Incoming, Location, Reply
from handlers.notices import render
from models import Dialog, HandledUpdate, Locale, Member, OutboxMessage
from tests.conftest import T0, Org
from workflows.context import Context


class Chat:
    """One member's chat with the bot: send text, photos, locations and
    button presses; read the replies."""

    def __init__(self, ctx: Context, sender: str, channel: str = "console",
                 language: str | None = None, now: datetime = T0) -> None:
        self.ctx, self.sender, self.channel, self.language = ctx, sender, channel, language
        self.conversations = Conversations(ctx)
        self.now = now
        self.replies: list[Reply] = []

    def _handle(self, **fields: Any) -> list[Reply]:
        msg = Incoming(self.channel, self.sender, self.sender, language=self.language, **fields)
        self.replies = self.conversations.handle(msg, self.now)
        self.now += timedelta(seconds=30)
        return self.replies

    def send(self, text: str) -> list[Reply]:
        msg = Incoming.from_text(self.channel, self.sender, self.sender, text,
                                 language=self.language)
        self.replies = self.conversations.handle(msg, self.now)
        self.now += timedelta(seconds=30)
        return self.replies

    def photo(self, data: bytes, caption: str | None = None) -> list[Reply]:
        return self._handle(photo=data, text=caption)

    def location(self, lat: float, lon: float) -> list[Reply]:
        return self._handle(location=Location(lat, lon))

    def data(self, data: str) -> list[Reply]:
        return self._handle(button=data)

    def press(self, label: str, replies: Iterable[Reply] | None = None) -> list[Reply]:
        """Press the button labelled `label` (or starting with it) of the last replies."""
        shown = [b for r in (replies if replies is not None else self.replies)
                 for b in r.all_buttons]
        for button in shown:
            if button.label == label or button.label.startswith(label):
                return self.data(button.data)
        raise AssertionError(f"no button {label!r} in {[b.label for b in shown]}")

    @property
    def text(self) -> str:
        return "\n".join(reply.text for reply in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b.label for r in self.replies for b in r.all_buttons]


def member_id(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        return member.id or 0


def set_locale(ctx: Context, code: str, locale: Locale) -> None:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        member.locale = locale
        session.add(member)
        session.commit()


def inbox(ctx: Context, code: str) -> list[Reply]:
    """Every outbox message queued for the member, rendered for them."""
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        messages = list(session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == member.id).order_by(col(OutboxMessage.id))))
    replies: list[Reply] = []
    for message in messages:
        replies += render(ctx, member, message.template, message.params, message.call_id)
    return replies


def count(ctx: Context, model: Any) -> int:
    with Session(ctx.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


# --- the basics -----------------------------------------------------------------


def test_a_stranger_is_refused_politely_and_nothing_is_stored(ctx: Context, org: Org) -> None:
    stranger = Chat(ctx, "424242", channel="telegram")
    stranger.send("/call")
    assert "仅供已登记的工作人员" in stranger.text
    stranger.language = "en"
    stranger._handle(text="hello", delivery_id="u1")
    assert "only for registered staff" in stranger.text
    assert count(ctx, Dialog) == count(ctx, HandledUpdate) == 0


def test_help_shows_what_each_role_may_do(ctx: Context, org: Org) -> None:
    caller, dispatcher, liaison = (Chat(ctx, c) for c in ("li", "dispatcher", "water-liaison"))
    caller.send("/help")
    assert "/call" in caller.text and "/assign" not in caller.text
    dispatcher.send("/help")
    assert "/assign" in dispatcher.text and "/call：" not in dispatcher.text
    assert "/invite" not in dispatcher.text
    liaison.send("/help")
    assert "签收" in liaison.text and "/stats" not in liaison.text
    admin = Chat(ctx, "admin")
    admin.send("/help")
    assert "/invite" in admin.text


def test_lang_switches_the_members_language(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/lang")
    assert chat.labels == ["简体中文", "繁體中文", "English"]
    chat.press("English")
    assert chat.text == "I will speak English with you."
    chat.send("/help")
    assert "raise a call" in chat.text
    chat.send("/lang zh_Hant")
    assert "繁體中文" in chat.text
    chat.send("/help")
    assert "發起呼叫" in chat.text
    chat.send("/lang klingon")
    assert "zh_Hans" in chat.text
    with Session(ctx.engine) as session:
        assert session.get(Member, org.caller).locale is Locale.ZH_HANT  # type: ignore[union-attr]


def test_unknown_commands_and_buttons_are_answered(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    chat.send("/frobnicate")
    assert "未知命令 /frobnicate" in chat.text
    for forged in ("zzz", "c:ack:abc", "c:hack:1", "f:nothex:ok", "x" * 300, ""):
        chat.data(forged)
        assert "无法识别的按钮" in chat.text, forged
    chat.send("hello")
    assert "/call" in chat.text


def test_a_redelivered_update_is_handled_once(ctx: Context, org: Org) -> None:
    chat = Chat(ctx, "li")
    first = chat._handle(command="call", delivery_id="update-7")
    assert first
    assert chat._handle(command="call", delivery_id="update-7") == []
    assert count(ctx, HandledUpdate) == 1


def test_two_members_in_one_group_chat_keep_their_own_dialogs(ctx: Context, org: Org) -> None:
    from handlers.messages import Incoming

    conversations = Conversations(ctx)
    li = Incoming("console", "li", "group-1", command="call")
    wang = Incoming("console", "wang", "group-1", command="call")
    conversations.handle(li, T0)
    conversations.handle(wang, T0)
    conversations.handle(Incoming("console", "li", "group-1", command="cancel"), T0)
    with Session(ctx.engine) as session:
        keys = [d.chat for d in session.exec(select(Dialog))]
    assert keys == ["group-1/wang"]


def test_prune_forgets_abandoned_dialogs_and_old_deliveries(ctx: Context, org: Org) -> None:
    from handlers import dialogs

    chat = Chat(ctx, "li")
    chat._handle(command="call", delivery_id="u-1")
    assert count(ctx, Dialog) == count(ctx, HandledUpdate) == 1
    assert dialogs.prune(ctx, T0) == 0
    assert dialogs.prune(ctx, T0 + timedelta(days=30)) == 2
    assert count(ctx, Dialog) == count(ctx, HandledUpdate) == 0

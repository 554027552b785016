"""The one message type at the channel boundary.

Each adapter (Telegram, WeCom, the console) turns its platform's update into an
`Incoming` and renders each `Reply` back; the conversations never see a
platform object, so every channel shares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

CHANNELS = ("telegram", "wecom", "console")


@dataclass(frozen=True)
class Location:
    """A shared location (WGS-84 degrees)."""

    lat: float
    lon: float


@dataclass(frozen=True)
class Incoming:
    """What a member sent. Exactly one of `command`, `button`, `photo`,
    `location` or `text` is what the message is; a photo may carry a caption
    in `text`.

    - `channel`: "telegram", "wecom" or "console"; `sender`: the platform's
      user id as text (the member code on the console); `chat`: the chat id.
    - `command` without the slash, lower case, with its `args`.
    - `photo`: the bytes, already downloaded by the adapter — of a photo, or
      of a file sent as a document (an Excel sheet filled in, for instance):
      each conversation checks what it accepts.
    - `button`: the data of the pressed button.
    - `language`: the platform's hint (e.g. Telegram's `language_code`).
    - `delivery_id`: the platform's id of this delivery, so a redelivery is
      handled once (None: no deduplication).
    """

    channel: str
    sender: str
    chat: str
    text: str | None = None
    command: str | None = None
    args: tuple[str, ...] = ()
    photo: bytes | None = None
    location: Location | None = None
    button: str | None = None
    language: str | None = None
    delivery_id: str | None = None

    @classmethod
    def from_text(cls, channel: str, sender: str, chat: str, text: str,
                  language: str | None = None, delivery_id: str | None = None) -> Incoming:
        """A typed line: `/cmd args…` becomes a command, anything else text.
        (`/start@botname x` loses its bot name, as Telegram groups send it.)"""
        stripped = text.strip()
        if stripped.startswith("/") and len(stripped) > 1 and not stripped[1].isspace():
            head, *rest = stripped[1:].split()
            name = head.split("@", 1)[0].lower()
            return cls(channel, sender, chat, command=name, args=tuple(rest),
                       language=language, delivery_id=delivery_id)
        return cls(channel, sender, chat, text=text, language=language,
                   delivery_id=delivery_id)

    @property
    def command_text(self) -> str:
        """The arguments of a command as one string (for `/find` words)."""
        return " ".join(self.args)


@dataclass(frozen=True)
class Button:
    """An inline button: what it says and the data its press sends back
    (short: Telegram allows 64 bytes)."""

    label: str
    data: str


@dataclass(frozen=True)
class Document:
    """A file to send with a reply (e.g. an Excel sheet to fill in): its file
    name as the member sees it, and its bytes in the media store by SHA-256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class Reply:
    """One message to send: text, rows of buttons under it, photos from the
    media store (by SHA-256) sent with it as one album, and files (`documents`)
    sent after it. Whether a reply
    edits an earlier message is the adapter's business.

    `share_location`, when set, is the label of a "share my location" key
    for channels that can ask for a location with one tap (Telegram's reply
    keyboard with `request_location`); such a channel shows the reply's
    buttons as keys of that keyboard too, which send their label as text —
    and a typed label is a press of that button (see `Conversations`). Other
    channels ignore it: their members share a location from the app's menu.

    `keeps_pressed` marks the answer to a press that changed nothing and left
    the pressed message's buttons as good as before (e.g. "finish what you
    are doing first"): a channel that retires pressed buttons leaves them.
    """

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    photos: tuple[str, ...] = field(default=())
    share_location: str | None = None
    keeps_pressed: bool = False
    documents: tuple[Document, ...] = field(default=())

    @property
    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]


def compact(replies: list[Reply]) -> list[Reply]:
    """One message where one suffices: a reply of text alone (a refusal, a
    reminder) is joined to the one after it ("Nothing was changed." and the
    question asked again become one message), so a turn sends fewer
    messages to a chat Telegram allows about one a second."""
    joined: list[Reply] = []
    for reply in replies:
        last = joined[-1] if joined else None
        if last is not None and not last.buttons and not last.photos and not reply.photos:
            joined[-1] = replace(reply, text=last.text + "\n" + reply.text,
                                 keeps_pressed=last.keeps_pressed or reply.keeps_pressed)
        else:
            joined.append(reply)
    return joined

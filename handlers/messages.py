"""The one message type at the channel boundary.

Each adapter (Telegram, WeCom, the console) turns its platform's update into an
`Incoming` and renders each `Reply` back; the conversations never see a
platform object, so every channel shares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    - `photo`: the bytes, already downloaded by the adapter.
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
    """A file from the media store (by SHA-256) sent as a document under its
    `name` (e.g. a report's workbook)."""

    sha256: str
    name: str


@dataclass(frozen=True)
class Reply:
    """One message to send: text, rows of buttons under it, photos from the
    media store (by SHA-256) sent with it as one album, and documents sent
    after it. Whether a reply edits an earlier message is the adapter's
    business."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    photos: tuple[str, ...] = field(default=())
    documents: tuple[Document, ...] = field(default=())

    @property
    def all_buttons(self) -> list[Button]:
        return [button for row in self.buttons for button in row]

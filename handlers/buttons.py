"""Button data: short, parseable, and checked on the way back.

Grammar (all ASCII, well under Telegram's 64 bytes):

- `c:<action>:<call id>` — an action on a call, e.g. `c:ack:12`;
- `q:<action>:<request id>` — a decision on a request, `q:apr:5`;
- `d:<action>:<data request id>` — a data request: `d:ans:3` (a town
  answers), `d:apr:3` (the command centre approves it out of plan);
- `f:<nonce>:<value>` — an answer inside a conversation; the nonce is the
  dialog's, so a button of a finished or older conversation is recognised;
- `l:<locale>` — a language.

Anything else, or an unknown action, is refused as unknown.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from handlers.messages import Button

CALL_ACTIONS = frozenset({"ack", "rsp", "ext", "ret", "res", "cfm", "rej", "wd", "add"})
REQUEST_ACTIONS = frozenset({"apr", "ref"})
DATA_ACTIONS = frozenset({"ans", "apr"})
_PATTERN = re.compile(
    r"^(?:(?P<kind>[cqd]):(?P<action>[a-z]{2,3}):(?P<target>\d{1,12})"
    r"|f:(?P<nonce>[0-9a-f]{6}):(?P<value>[A-Za-z0-9_?.-]{1,40})"
    r"|l:(?P<locale>[A-Za-z_]{2,8}))$"
)


@dataclass(frozen=True)
class Press:
    """A parsed button press."""

    kind: str  # "call", "request", "data", "flow" or "lang"
    action: str = ""
    target: int = 0
    nonce: str = ""
    value: str = ""


def parse(data: str) -> Press | None:
    """The press `data` stands for, or None if it is not one of ours."""
    match = _PATTERN.match(data or "")
    if match is None:
        return None
    if match["kind"] == "c" and match["action"] in CALL_ACTIONS:
        return Press("call", action=match["action"], target=int(match["target"]))
    if match["kind"] == "q" and match["action"] in REQUEST_ACTIONS:
        return Press("request", action=match["action"], target=int(match["target"]))
    if match["kind"] == "d" and match["action"] in DATA_ACTIONS:
        return Press("data", action=match["action"], target=int(match["target"]))
    if match["nonce"]:
        return Press("flow", nonce=match["nonce"], value=match["value"])
    if match["locale"]:
        return Press("lang", value=match["locale"])
    return None


def new_nonce() -> str:
    return secrets.token_hex(3)


def call_button(label: str, action: str, call_id: int) -> Button:
    assert action in CALL_ACTIONS
    return Button(label, f"c:{action}:{call_id}")


def request_button(label: str, action: str, request_id: int) -> Button:
    assert action in REQUEST_ACTIONS
    return Button(label, f"q:{action}:{request_id}")


def data_button(label: str, action: str, data_request_id: int) -> Button:
    assert action in DATA_ACTIONS
    return Button(label, f"d:{action}:{data_request_id}")


def flow_button(label: str, nonce: str, value: str) -> Button:
    return Button(label, f"f:{nonce}:{value}")


def lang_button(label: str, locale: str) -> Button:
    return Button(label, f"l:{locale}")

"""Real encrypted WeCom callbacks, built the way WeCom's servers send them.

Who uses this: the WeCom adapter's tests, to POST (or GET, for URL
verification) exactly what WeCom would to the running ASGI app. The
encryption is wechatpy's own, so the adapter's `WeChatCrypto` is exercised
for real — nothing in wechatpy is mocked.

What WeCom sends (self-built app, "接收消息与事件"):

- URL verification: ``GET <callback>?msg_signature=S&timestamp=T&nonce=N&echostr=E``
  where ``E`` is the encrypted echo string and ``S = sha1(sorted(token, T, N, E))``.
  The app answers 200 with the *decrypted* echo string as the plain body
  (``WeChatCrypto.check_signature(S, T, N, E)`` returns it).
- Messages and events: ``POST <callback>?msg_signature=S&timestamp=T&nonce=N``
  with the body ``<xml><ToUserName>corp_id</ToUserName><AgentID>agent</AgentID>
  <Encrypt>…</Encrypt></xml>`` and ``S = sha1(sorted(token, T, N, Encrypt))``.
  ``WeChatCrypto.decrypt_message(body, S, T, N)`` checks S and returns the
  plaintext XML. The app must answer within 5 s (an empty 200 is fine) or
  WeCom retries, up to three times, with the same MsgId (or for events the
  same FromUserName + CreateTime).

Facts about wechatpy 1.8.18, checked against its source and by
``tests/test_fake_wecom.py``:

- There is no ``wechatpy.work`` in 1.8.x: the WeCom ("enterprise") side is
  ``wechatpy.enterprise`` — ``from wechatpy.enterprise import WeChatCrypto,
  parse_message`` (``wechatpy.enterprise.crypto.WeChatCrypto(token,
  encoding_aes_key, corp_id)``). ``wechatpy.work`` only appears in 2.x.
- ``WeChatCrypto.encrypt_message(xml, nonce, timestamp)`` returns the
  *passive-reply* envelope (``<Encrypt>``, ``<MsgSignature>``,
  ``<TimeStamp>``, ``<Nonce>``) as ``str``; its signature is the same sha1 a
  callback carries as ``msg_signature``, so this module re-wraps the
  ``Encrypt`` value in the envelope WeCom actually POSTs.
- ``decrypt_message`` parses the envelope with xmltodict and needs only its
  ``Encrypt`` element; it checks the signature *before* decrypting and raises
  ``wechatpy.exceptions.InvalidSignatureException`` on a mismatch, and
  ``wechatpy.enterprise.exceptions.InvalidCorpIdException`` when the
  plaintext was encrypted for another corp_id. A malformed, empty or non-XML
  envelope raises ``xml.parsers.expat.ExpatError``; one without
  ``<Encrypt>`` a ``KeyError``. When the signature matches but ``Encrypt``
  is not valid base64 → ``binascii.Error``; not a whole number of AES
  blocks → ``ValueError``; encrypted with another EncodingAESKey →
  typically ``UnicodeDecodeError``. Catch broadly and answer 4xx. Nothing
  limits the size: check ``len(body)`` before decrypting.
- ``WeChatCrypto(token, key, corp_id)`` with a key that is not 43 base64
  characters fails with ``AssertionError`` or ``binascii.Error``: validate
  the setting at startup.
- ``check_signature(signature, timestamp, nonce, echostr)`` (URL
  verification) raises ``InvalidSignatureException`` or returns the plain
  echo string (``str``). ``echostr`` is base64 and contains ``+``, ``/`` and
  ``=``: read it URL-decoded (Starlette's ``request.query_params`` does).
- ``wechatpy.enterprise.parse_message(xml)`` (xmltodict underneath) returns:
  - text → ``wechatpy.enterprise.messages.TextMessage``: ``.type == "text"``,
    ``.content``, ``.id`` (MsgId as ``int``), ``.source`` (FromUserName, the
    member's UserID), ``.target`` (ToUserName, the corp_id), ``.agent``
    (AgentID as ``int``), ``.time`` (CreateTime ``int``), ``.create_time``
    (aware ``datetime``, Asia/Shanghai).
  - image → ``ImageMessage``: ``.media_id`` (MediaId — fetch the bytes with
    ``media/get``), ``.image`` (PicUrl), plus the common fields above.
  - location → ``LocationMessage``: ``.location_x`` (latitude) and
    ``.location_y`` (longitude) as *strings*, ``.location`` (the pair),
    ``.scale`` (str), ``.label``, plus the common fields.
  - ``template_card_event`` → ``wechatpy.messages.UnknownMessage``
    (``.type == "unknown"``; ``wechatpy.enterprise.events.EVENT_TYPES`` has
    no entry for it). Only the common fields are attributes: ``.source``,
    ``.target``, ``.time``, ``.create_time``; ``.id`` is 0 (events carry no
    MsgId). EventKey (the button's ``key``), TaskId, CardType, ResponseCode
    and AgentID are *not* attributes: parse the plaintext XML yourself, e.g.
    ``xmltodict.parse(xml)["xml"]["EventKey"]`` or
    ``ElementTree.fromstring(xml).findtext("EventKey")`` — all values are
    strings there. (``msg._data`` holds the same dict but is private.)
    Vote/multiple-choice cards add ``<SelectedItems>``; button cards do not.
  - ``enter_agent`` → ``wechatpy.enterprise.events.EnterAgentEvent``
    (``.type == "event"``, ``.event == "enter_agent"``).
  - malformed XML → ``ExpatError``; XML without ``<MsgType>`` → ``KeyError``;
    an unknown MsgType → ``UnknownMessage``; empty input → ``None``.
"""

from __future__ import annotations

import base64
import os
import secrets
import time
from typing import NamedTuple
from xml.etree import ElementTree

from wechatpy.enterprise.crypto import WeChatCrypto


class Callback(NamedTuple):
    """One HTTP request as WeCom sends it: the query string and the body."""

    params: dict[str, str]
    body: bytes


def random_aes_key() -> str:
    """A valid EncodingAESKey: 43 characters, base64 of 32 random bytes without the '='."""
    return base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")


def _cdata(value: str) -> str:
    # "]]>" cannot appear inside one CDATA section: split it across two.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml(fields: list[tuple[str, str | int]]) -> str:
    """Plaintext callback XML: strings as CDATA, numbers bare, as WeCom writes them."""
    parts = [
        f"<{name}>{value if isinstance(value, int) else _cdata(value)}</{name}>"
        for name, value in fields
    ]
    return "<xml>" + "".join(parts) + "</xml>"


class WeComCallbacks:
    """Builds signed, encrypted callbacks for one self-built app.

    ``token``, ``encoding_aes_key`` and ``corp_id`` are what the app is
    configured with (``wecom.token``, ``wecom.encoding_aes_key``,
    ``wecom.corp_id``); ``agent_id`` is the app's AgentID. Each builder takes
    an optional ``timestamp`` (seconds) — by default the current time, since
    WeCom's timestamps are real ones.
    """

    def __init__(self, token: str, encoding_aes_key: str, corp_id: str, agent_id: int) -> None:
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.corp_id = corp_id
        self.agent_id = agent_id
        self._crypto = WeChatCrypto(token, encoding_aes_key, corp_id)

    # --- the envelope -------------------------------------------------------

    def _seal(self, plain: str, timestamp: int | None) -> tuple[str, str, str, str]:
        """(encrypted, signature, timestamp, nonce) for a plaintext."""
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(8)
        reply = ElementTree.fromstring(self._crypto.encrypt_message(plain, nonce, stamp))
        encrypted = reply.findtext("Encrypt") or ""
        signature = reply.findtext("MsgSignature") or ""
        return encrypted, signature, stamp, nonce

    def encrypt(self, xml: str, *, timestamp: int | None = None) -> Callback:
        """Any plaintext XML (even a malformed one) as a signed, encrypted POST."""
        encrypted, signature, stamp, nonce = self._seal(xml, timestamp)
        body = _xml([("ToUserName", self.corp_id), ("AgentID", str(self.agent_id)),
                     ("Encrypt", encrypted)])
        params = {"msg_signature": signature, "timestamp": stamp, "nonce": nonce}
        return Callback(params, body.encode("utf-8"))

    def verify_url(self, echo: str | None = None, *, timestamp: int | None = None
                   ) -> tuple[dict[str, str], str]:
        """The URL-verification GET: (query params with the encrypted echostr, plain echostr).

        The app must answer 200 with exactly the plain echostr.
        """
        plain = echo if echo is not None else secrets.token_hex(10)
        encrypted, signature, stamp, nonce = self._seal(plain, timestamp)
        params = {"msg_signature": signature, "timestamp": stamp, "nonce": nonce,
                  "echostr": encrypted}
        return params, plain

    @staticmethod
    def with_wrong_signature(params: dict[str, str]) -> dict[str, str]:
        """The same query with a msg_signature that does not match (body untouched)."""
        good = params["msg_signature"]
        bad = ("0" if good[0] != "0" else "1") + good[1:]
        return {**params, "msg_signature": bad}

    def tampered(self, callback: Callback) -> Callback:
        """A callback whose msg_signature does not match its body."""
        return Callback(self.with_wrong_signature(callback.params), callback.body)

    def verify_url_wrong_signature(self) -> tuple[dict[str, str], str]:
        """A URL verification whose msg_signature does not match."""
        params, plain = self.verify_url()
        return self.with_wrong_signature(params), plain

    # --- plaintext XML, as WeCom writes it ---------------------------------

    def _common(self, from_user: str, msg_type: str, timestamp: int | None
                ) -> list[tuple[str, str | int]]:
        return [("ToUserName", self.corp_id), ("FromUserName", from_user),
                ("CreateTime", timestamp if timestamp is not None else int(time.time())),
                ("MsgType", msg_type)]

    def text_xml(self, from_user: str, content: str, msg_id: int, *,
                 timestamp: int | None = None) -> str:
        return _xml([*self._common(from_user, "text", timestamp), ("Content", content),
                     ("MsgId", msg_id), ("AgentID", self.agent_id)])

    def image_xml(self, from_user: str, media_id: str, pic_url: str, msg_id: int, *,
                  timestamp: int | None = None) -> str:
        return _xml([*self._common(from_user, "image", timestamp), ("PicUrl", pic_url),
                     ("MediaId", media_id), ("MsgId", msg_id), ("AgentID", self.agent_id)])

    def file_xml(self, from_user: str, media_id: str, msg_id: int, *,
                 timestamp: int | None = None) -> str:
        return _xml([*self._common(from_user, "file", timestamp), ("MediaId", media_id),
                     ("MsgId", msg_id), ("AgentID", self.agent_id)])

    def location_xml(self, from_user: str, lat: float, lon: float, label: str, msg_id: int, *,
                     scale: int = 15, timestamp: int | None = None) -> str:
        # Location_X is the latitude, Location_Y the longitude (WeCom's naming).
        return _xml([*self._common(from_user, "location", timestamp),
                     ("Location_X", str(lat)), ("Location_Y", str(lon)), ("Scale", scale),
                     ("Label", label), ("MsgId", msg_id), ("AgentID", self.agent_id),
                     ("AppType", "wxwork")])

    def template_card_event_xml(self, from_user: str, event_key: str, task_id: str, *,
                                response_code: str, card_type: str = "button_interaction",
                                timestamp: int | None = None) -> str:
        return _xml([*self._common(from_user, "event", timestamp),
                     ("Event", "template_card_event"), ("EventKey", event_key),
                     ("TaskId", task_id), ("CardType", card_type),
                     ("ResponseCode", response_code), ("AgentID", self.agent_id)])

    def enter_agent_xml(self, from_user: str, *, timestamp: int | None = None) -> str:
        return _xml([*self._common(from_user, "event", timestamp), ("Event", "enter_agent"),
                     ("EventKey", ""), ("AgentID", self.agent_id)])

    # --- encrypted callbacks -----------------------------------------------

    def text(self, from_user: str, content: str, msg_id: int, *,
             timestamp: int | None = None) -> Callback:
        """A member sends text to the app."""
        return self.encrypt(self.text_xml(from_user, content, msg_id, timestamp=timestamp),
                            timestamp=timestamp)

    def image(self, from_user: str, media_id: str, pic_url: str, msg_id: int, *,
              timestamp: int | None = None) -> Callback:
        """A member sends a photo; ``media_id`` is what ``media/get`` serves
        (``FakeWeCom.add_media``)."""
        return self.encrypt(self.image_xml(from_user, media_id, pic_url, msg_id,
                                           timestamp=timestamp), timestamp=timestamp)

    def file(self, from_user: str, media_id: str, msg_id: int, *,
             timestamp: int | None = None) -> Callback:
        """A member sends a file (``FakeWeCom.add_media`` with type file)."""
        return self.encrypt(self.file_xml(from_user, media_id, msg_id, timestamp=timestamp),
                            timestamp=timestamp)

    def location(self, from_user: str, lat: float, lon: float, label: str, msg_id: int, *,
                 scale: int = 15, timestamp: int | None = None) -> Callback:
        """A member shares a location."""
        return self.encrypt(self.location_xml(from_user, lat, lon, label, msg_id, scale=scale,
                                              timestamp=timestamp), timestamp=timestamp)

    def template_card_event(self, from_user: str, event_key: str, task_id: str, *,
                            response_code: str, card_type: str = "button_interaction",
                            timestamp: int | None = None) -> Callback:
        """A member presses the button ``event_key`` on the card sent with ``task_id``.

        ``response_code`` is the one-use code for ``message/update_template_card``
        (``FakeWeCom.issue_response_code(task_id)`` makes one the fake accepts).
        """
        return self.encrypt(self.template_card_event_xml(
            from_user, event_key, task_id, response_code=response_code, card_type=card_type,
            timestamp=timestamp), timestamp=timestamp)

    def enter_agent(self, from_user: str, *, timestamp: int | None = None) -> Callback:
        """A member opens the app (an event the adapter should ignore quietly)."""
        return self.encrypt(self.enter_agent_xml(from_user, timestamp=timestamp),
                            timestamp=timestamp)

"""The test doubles for WeCom behave like WeCom: the fake server API
(tests/fakes/wecom_api.py) answers as the real one does, and the callbacks
(tests/fakes/wecom_callbacks.py) decrypt and parse with a separate wechatpy
instance exactly as the adapter will see them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import xmltodict
from wechatpy.enterprise import WeChatCrypto, parse_message
from wechatpy.enterprise.events import EnterAgentEvent
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.enterprise.messages import ImageMessage, LocationMessage, TextMessage
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.messages import UnknownMessage

from tests.fakes.wecom_api import INVALID_RESPONSE_CODE, FakeWeCom
from tests.fakes.wecom_callbacks import Callback, WeComCallbacks, random_aes_key

CORP = "wwtestcorp0000001"
SECRET = "app-secret"
AGENT = 1000002
T = 1759222200  # 2025-09-30 16:50 in Shanghai


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeWeCom]:
    with FakeWeCom(corp_id=CORP, secret=SECRET, agent_id=AGENT) as fake:
        yield fake


@pytest.fixture
def wecom(_server: FakeWeCom) -> FakeWeCom:
    """One server for the module (starting uvicorn costs time), reset for each test."""
    _server.reset()
    return _server


@pytest.fixture
def api(wecom: FakeWeCom) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wecom.url + "/cgi-bin/") as client:
        yield client


def token(api: httpx.Client) -> str:
    answer = api.get("gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    assert answer["errcode"] == 0
    return str(answer["access_token"])


def send(api: httpx.Client, access_token: str, **message: Any) -> dict[str, Any]:
    body = {"touser": "zhang|li", "agentid": AGENT, **message}
    answer: dict[str, Any] = api.post("message/send", params={"access_token": access_token},
                                      json=body).json()
    return answer


def button_card(task_id: str) -> dict[str, Any]:
    return {"msgtype": "template_card", "template_card": {
        "card_type": "button_interaction", "task_id": task_id,
        "main_title": {"title": "新诉求：水管爆裂"},
        "button_list": [{"text": "接单", "style": 1, "key": f"ack:{task_id}"},
                        {"text": "办结", "style": 2, "key": f"resolve:{task_id}"}]}}


def test_the_server_runs_only_inside_the_context() -> None:
    fake = FakeWeCom()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        assert httpx.get(fake.url + "/cgi-bin/gettoken").json()["errcode"] == 40013
    with pytest.raises(RuntimeError):
        _ = fake.url


# --- gettoken ---------------------------------------------------------------

def test_gettoken_issues_a_fresh_token_each_time(wecom: FakeWeCom, api: httpx.Client) -> None:
    first = api.get("gettoken", params={"corpid": CORP, "corpsecret": SECRET}).json()
    assert first["errcode"] == 0 and first["errmsg"] == "ok" and first["expires_in"] == 7200
    assert token(api) != first["access_token"]
    assert wecom.token_requests == 2


def test_gettoken_refuses_a_wrong_corp_or_secret(wecom: FakeWeCom, api: httpx.Client) -> None:
    wrong_corp = api.get("gettoken", params={"corpid": "wwother", "corpsecret": SECRET})
    wrong_secret = api.get("gettoken", params={"corpid": CORP, "corpsecret": "nope"})
    assert wrong_corp.status_code == wrong_secret.status_code == 200  # WeCom's way: errcode
    assert wrong_corp.json()["errcode"] == 40013
    assert wrong_secret.json()["errcode"] == 40001
    assert "access_token" not in wrong_secret.json()


def test_expired_token_answers_42001_and_a_fresh_one_works(
        wecom: FakeWeCom, api: httpx.Client) -> None:
    old = token(api)
    wecom.expire_tokens()
    expired = send(api, old, msgtype="text", text={"content": "你好"})
    assert expired["errcode"] == 42001
    assert send(api, token(api), msgtype="text", text={"content": "你好"})["errcode"] == 0
    assert send(api, old, msgtype="text", text={"content": "again"})["errcode"] == 42001
    assert [s.content for s in wecom.sent] == ["你好"]


def test_unknown_or_missing_token_is_refused(api: httpx.Client) -> None:
    assert send(api, "made-up", msgtype="text", text={"content": "x"})["errcode"] == 40014
    missing = api.post("message/send", json={"touser": "zhang", "agentid": AGENT,
                                             "msgtype": "text", "text": {"content": "x"}})
    assert missing.json()["errcode"] == 41001


# --- message/send -------------------------------------------------------------

def test_send_text_and_markdown_are_recorded(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    answer = send(api, access, msgtype="text", text={"content": "您有一条新诉求"})
    assert answer["errcode"] == 0 and answer["msgid"]
    assert "response_code" not in answer
    send(api, access, touser="wang", msgtype="markdown", markdown={"content": "**已办结**"})
    text, markdown = wecom.sent
    assert (text.msgtype, text.recipients, text.content, text.msgid) == (
        "text", ["zhang", "li"], "您有一条新诉求", answer["msgid"])
    assert (markdown.msgtype, markdown.touser, markdown.content) == (
        "markdown", "wang", "**已办结**")
    assert [s.touser for s in wecom.sent_to("li")] == ["zhang|li"]


def test_long_text_is_cut_like_wecom_does(wecom: FakeWeCom, api: httpx.Client) -> None:
    send(api, token(api), msgtype="text", text={"content": "诉" * 1000})  # 3000 bytes
    content = wecom.sent[0].content
    assert content is not None and len(content.encode()) <= 2048 and content == "诉" * 682


@pytest.mark.parametrize(("change", "errcode"), [
    ({"touser": ""}, 40058),
    ({"agentid": 1}, 40056),
    ({"agentid": None}, 41011),
    ({"msgtype": "telegram"}, 40008),
    ({"text": {"content": ""}}, 44004),
    ({"text": None}, 40058),
])
def test_send_refuses_a_malformed_message(
        wecom: FakeWeCom, api: httpx.Client, change: dict[str, Any], errcode: int) -> None:
    message = {"msgtype": "text", "text": {"content": "x"}, **change}
    assert send(api, token(api), **message)["errcode"] == errcode
    assert wecom.sent == []


def test_send_refuses_a_body_that_is_not_json(api: httpx.Client) -> None:
    answer = api.post("message/send", params={"access_token": token(api)}, content=b"{oops")
    assert answer.json()["errcode"] == 47001


def test_news_needs_titled_articles(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    assert send(api, access, msgtype="news", news={"articles": [{"url": "x"}]})["errcode"] == 41016
    ok = send(api, access, msgtype="news",
              news={"articles": [{"title": "诉求 #12", "url": "https://example.org/12"}]})
    assert ok["errcode"] == 0 and wecom.sent[0].msgtype == "news"


# --- template cards ---------------------------------------------------------

def test_card_response_code_updates_the_card_once(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    answer = send(api, access, **button_card("call-12-1"))
    assert answer["errcode"] == 0 and answer["response_code"]
    (card,) = wecom.sent
    assert card.task_id == "call-12-1" and card.response_code == answer["response_code"]
    assert card.button_keys == ["ack:call-12-1", "resolve:call-12-1"]

    update = {"userids": ["li"], "agentid": AGENT, "response_code": answer["response_code"],
              "button": {"replace_name": "李四已接单"}}
    first = api.post("message/update_template_card", params={"access_token": access},
                     json=update).json()
    second = api.post("message/update_template_card", params={"access_token": access},
                      json=update).json()
    assert first["errcode"] == 0
    assert second["errcode"] == INVALID_RESPONSE_CODE
    (done,) = wecom.card_updates
    assert (done.task_id, done.msgid, done.userids, done.replace_name) == (
        "call-12-1", card.msgid, ["li"], "李四已接单")


def test_a_click_code_can_replace_the_whole_card(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    send(api, access, **button_card("call-7-1"))
    code = wecom.issue_response_code("call-7-1")
    new_card = {"card_type": "text_notice", "main_title": {"title": "已办结"}}
    answer = api.post("message/update_template_card", params={"access_token": access},
                      json={"userids": ["li"], "agentid": AGENT, "response_code": code,
                            "template_card": new_card}).json()
    assert answer["errcode"] == 0
    assert wecom.card_updates[0].card == new_card and wecom.card_updates[0].msgid is None


def test_unknown_response_code_is_refused(wecom: FakeWeCom, api: httpx.Client) -> None:
    answer = api.post("message/update_template_card", params={"access_token": token(api)},
                      json={"userids": ["li"], "agentid": AGENT, "response_code": "made-up",
                            "button": {"replace_name": "x"}}).json()
    assert answer["errcode"] == INVALID_RESPONSE_CODE and wecom.card_updates == []


def test_card_task_id_is_unique_and_buttons_are_required(
        wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    assert send(api, access, **button_card("call-1"))["errcode"] == 0
    assert send(api, access, **button_card("call-1"))["errcode"] == 40058
    no_buttons = button_card("call-2")
    no_buttons["template_card"]["button_list"] = []
    assert send(api, access, **no_buttons)["errcode"] == 40058
    bad_task = button_card("call 3 with spaces")
    assert send(api, access, **bad_task)["errcode"] == 40058
    assert len(wecom.sent) == 1


# --- media --------------------------------------------------------------------

def test_media_upload_and_get_round_trip(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    photo = b"\xff\xd8\xff\xe0 not really a jpeg \x00\x01"
    uploaded = api.post("media/upload", params={"access_token": access, "type": "image"},
                        files={"media": ("burst.jpg", photo, "image/jpeg")}).json()
    assert uploaded["errcode"] == 0 and uploaded["type"] == "image" and uploaded["created_at"]
    got = api.get("media/get", params={"access_token": access,
                                       "media_id": uploaded["media_id"]})
    assert got.status_code == 200 and got.content == photo
    assert got.headers["content-type"] == "image/jpeg"
    (media,) = wecom.uploads
    assert (media.filename, media.data) == ("burst.jpg", photo)
    assert send(api, access, msgtype="image",
                image={"media_id": uploaded["media_id"]})["errcode"] == 0
    assert wecom.sent[0].media_id == uploaded["media_id"]


def test_media_a_member_sent_can_be_fetched(wecom: FakeWeCom, api: httpx.Client) -> None:
    media_id = wecom.add_media(b"PNG...", content_type="image/png")
    got = api.get("media/get", params={"access_token": token(api), "media_id": media_id})
    assert (got.content, got.headers["content-type"]) == (b"PNG...", "image/png")
    assert wecom.uploads == []


def test_unknown_media_and_empty_upload_are_refused(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    got = api.get("media/get", params={"access_token": access, "media_id": "nope"})
    assert got.headers["content-type"].startswith("application/json")
    assert got.json()["errcode"] == 40007
    empty = api.post("media/upload", params={"access_token": access, "type": "image"},
                     files={"media": ("x.jpg", b"", "image/jpeg")}).json()
    assert empty["errcode"] == 44001
    wrong_field = api.post("media/upload", params={"access_token": access, "type": "image"},
                           files={"file": ("x.jpg", b"data", "image/jpeg")}).json()
    assert wrong_field["errcode"] == 44001
    assert send(api, access, msgtype="image", image={"media_id": "nope"})["errcode"] == 40007


# --- failure injection and waiting ------------------------------------------

def test_fail_next_with_an_errcode_then_recovers(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    wecom.fail_next("message/send")
    wecom.fail_next("media/get", errcode=45009, count=2)
    assert send(api, access, msgtype="text", text={"content": "1"})["errcode"] == -1
    assert send(api, access, msgtype="text", text={"content": "2"})["errcode"] == 0
    for _ in range(2):
        got = api.get("media/get", params={"access_token": access, "media_id": "x"})
        assert got.json()["errcode"] == 45009
    assert [s.content for s in wecom.sent] == ["2"]
    assert [c.errcode for c in wecom.calls if c.path.endswith("message/send")] == [-1, 0]


def test_fail_next_with_an_http_status(wecom: FakeWeCom, api: httpx.Client) -> None:
    wecom.fail_next("gettoken", http_status=500)
    failed = api.get("gettoken", params={"corpid": CORP, "corpsecret": SECRET})
    assert failed.status_code == 500
    token(api)
    assert wecom.token_requests == 2


def test_wait_for_sees_what_another_thread_sends(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    sender = threading.Thread(
        target=lambda: send(api, access, msgtype="text", text={"content": "后台"}))
    sender.start()
    wecom.wait_for(lambda: len(wecom.sent) == 1)
    sender.join()
    assert wecom.sent[0].content == "后台"
    with pytest.raises(TimeoutError):
        wecom.wait_for(lambda: False, timeout=0)


def test_reset_forgets_everything(wecom: FakeWeCom, api: httpx.Client) -> None:
    access = token(api)
    send(api, access, **button_card("call-1"))
    wecom.add_media(b"x")
    wecom.fail_next("gettoken")
    wecom.reset()
    assert (wecom.sent, wecom.media, wecom.calls, wecom.token_requests) == ([], {}, [], 0)
    assert send(api, access, msgtype="text", text={"content": "x"})["errcode"] == 40014
    assert send(api, token(api), **button_card("call-1"))["errcode"] == 0


def test_an_async_client_in_its_own_loop(wecom: FakeWeCom) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(base_url=wecom.url) as client:
            answer = (await client.get("/cgi-bin/gettoken",
                                       params={"corpid": CORP, "corpsecret": SECRET})).json()
            await client.post("/cgi-bin/message/send",
                              params={"access_token": answer["access_token"]},
                              json={"touser": "zhang", "agentid": AGENT, "msgtype": "text",
                                    "text": {"content": "异步"}})
            await wecom.wait_for_async(lambda: len(wecom.sent) == 1)

    asyncio.run(run())
    assert wecom.sent[0].content == "异步"


# --- callbacks ----------------------------------------------------------------

@pytest.fixture
def aes_key() -> str:
    return random_aes_key()


@pytest.fixture
def callbacks(aes_key: str) -> WeComCallbacks:
    return WeComCallbacks("cb-token", aes_key, CORP, AGENT)


@pytest.fixture
def app_crypto(aes_key: str) -> WeChatCrypto:
    """What the adapter holds: its own WeChatCrypto from the same settings."""
    return WeChatCrypto("cb-token", aes_key, CORP)


def decrypt(crypto: WeChatCrypto, callback: Callback) -> str:
    params = callback.params
    return str(crypto.decrypt_message(callback.body, params["msg_signature"],
                                      params["timestamp"], params["nonce"]))


def test_random_aes_key_is_a_valid_encoding_aes_key(aes_key: str) -> None:
    assert len(aes_key) == 43 and aes_key != random_aes_key()
    WeChatCrypto("t", aes_key, CORP)  # asserts a 32-byte key inside


def test_the_envelope_is_what_wecom_posts(callbacks: WeComCallbacks) -> None:
    params, body = callbacks.text("zhang", "你好", 1, timestamp=T)
    envelope = ElementTree.fromstring(body)
    assert [child.tag for child in envelope] == ["ToUserName", "AgentID", "Encrypt"]
    assert envelope.findtext("ToUserName") == CORP
    assert envelope.findtext("AgentID") == str(AGENT)
    assert set(params) == {"msg_signature", "timestamp", "nonce"} and params["timestamp"] == str(T)


def test_any_xml_decrypts_to_itself(callbacks: WeComCallbacks, app_crypto: WeChatCrypto) -> None:
    xml = callbacks.text_xml("zhang", "含 ]]> 与 <标签> 的文字", 42, timestamp=T)
    assert decrypt(app_crypto, callbacks.encrypt(xml, timestamp=T)) == xml
    assert parse_message(xml).content == "含 ]]> 与 <标签> 的文字"
    assert decrypt(app_crypto, callbacks.encrypt("<xml><oops")) == "<xml><oops"


def test_text_parses_as_text_message(callbacks: WeComCallbacks, app_crypto: WeChatCrypto) -> None:
    message = parse_message(decrypt(app_crypto, callbacks.text(
        "zhang", "村口水管爆了", 7168452209136812345, timestamp=T)))
    assert isinstance(message, TextMessage)
    assert (message.type, message.content, message.id, message.source, message.target,
            message.agent, message.time) == (
        "text", "村口水管爆了", 7168452209136812345, "zhang", CORP, AGENT, T)
    assert message.create_time.utcoffset().total_seconds() == 8 * 3600


def test_image_parses_as_image_message(callbacks: WeComCallbacks,
                                       app_crypto: WeChatCrypto) -> None:
    message = parse_message(decrypt(app_crypto, callbacks.image(
        "zhang", "MEDIA123", "https://wework.qpic.cn/x", 8)))
    assert isinstance(message, ImageMessage)
    assert (message.media_id, message.image, message.id) == (
        "MEDIA123", "https://wework.qpic.cn/x", 8)


def test_location_parses_as_location_message(callbacks: WeComCallbacks,
                                             app_crypto: WeChatCrypto) -> None:
    message = parse_message(decrypt(app_crypto, callbacks.location(
        "zhang", 31.2304, 121.4737, "黄浦区人民大道", 9)))
    assert isinstance(message, LocationMessage)
    # wechatpy gives strings: Location_X is the latitude, Location_Y the longitude.
    assert message.location == ("31.2304", "121.4737")
    assert (message.label, message.scale, message.id) == ("黄浦区人民大道", "15", 9)


def test_card_click_parses_as_unknown_message(callbacks: WeComCallbacks,
                                             app_crypto: WeChatCrypto) -> None:
    xml = decrypt(app_crypto, callbacks.template_card_event(
        "li", "ack:call-12-1", "call-12-1", response_code="RC-1", timestamp=T))
    message = parse_message(xml)
    assert type(message) is UnknownMessage
    assert (message.type, message.source, message.target, message.id, message.time) == (
        "unknown", "li", CORP, 0, T)
    # Everything card-specific must be read from the XML itself.
    fields = xmltodict.parse(xml)["xml"]
    assert {k: fields[k] for k in ("MsgType", "Event", "EventKey", "TaskId", "CardType",
                                   "ResponseCode", "AgentID")} == {
        "MsgType": "event", "Event": "template_card_event", "EventKey": "ack:call-12-1",
        "TaskId": "call-12-1", "CardType": "button_interaction", "ResponseCode": "RC-1",
        "AgentID": str(AGENT)}


def test_enter_agent_parses_as_its_event(callbacks: WeComCallbacks,
                                         app_crypto: WeChatCrypto) -> None:
    message = parse_message(decrypt(app_crypto, callbacks.enter_agent("li")))
    assert isinstance(message, EnterAgentEvent) and message.event == "enter_agent"


def test_url_verification_returns_the_plain_echostr(callbacks: WeComCallbacks,
                                                    app_crypto: WeChatCrypto) -> None:
    params, plain = callbacks.verify_url()
    echoed = app_crypto.check_signature(params["msg_signature"], params["timestamp"],
                                        params["nonce"], params["echostr"])
    assert echoed == plain and params["echostr"] != plain


def test_wrong_signatures_are_refused(callbacks: WeComCallbacks,
                                      app_crypto: WeChatCrypto) -> None:
    with pytest.raises(InvalidSignatureException):
        decrypt(app_crypto, callbacks.tampered(callbacks.text("zhang", "x", 1)))
    params, _ = callbacks.verify_url_wrong_signature()
    with pytest.raises(InvalidSignatureException):
        app_crypto.check_signature(params["msg_signature"], params["timestamp"],
                                   params["nonce"], params["echostr"])
    other_token = WeComCallbacks("another-token", callbacks.encoding_aes_key, CORP, AGENT)
    with pytest.raises(InvalidSignatureException):
        decrypt(app_crypto, other_token.text("zhang", "x", 1))


def test_a_callback_for_another_corp_is_refused(callbacks: WeComCallbacks,
                                                app_crypto: WeChatCrypto) -> None:
    other_corp = WeComCallbacks("cb-token", callbacks.encoding_aes_key, "wwothercorp", AGENT)
    with pytest.raises(InvalidCorpIdException):
        decrypt(app_crypto, other_corp.text("zhang", "x", 1))

"""Conformance of the Open311 GeoReport v2 API: every endpoint and error, in
JSON and XML, against the ASGI app in-process (Starlette's TestClient), with
media_url photos served by an httpx transport that plays the remote host."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from sqlmodel import Session, col, select

with warnings.catch_warnings():
    # Starlette 1.10 would have its TestClient on httpx2; httpx works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from bot.open311 import open311_routes
from bot.open311.media import MediaFetcher
from bot.web import build_app
from models import ApiKey, Attachment, Call, CallStatus, Event, OutboxMessage, SourceEvent
from tests.conftest import JPEG, PNG, T0, Org
from workflows import calls, sources
from workflows.context import Context

BIG = 1024  # the media limit in these tests, in bytes


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def remote(request: httpx.Request) -> httpx.Response:
    """The systems' image host."""
    path = request.url.path
    if path == "/cam/1.jpg":
        return httpx.Response(200, content=JPEG, headers={"content-type": "image/jpeg"})
    if path == "/cam/2.png":
        return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
    if path == "/huge.jpg":
        return httpx.Response(200, content=JPEG + b"\0" * (BIG * 2),
                              headers={"content-type": "image/jpeg"})
    if path == "/page.html":
        return httpx.Response(200, content=b"<html></html>", headers={"content-type": "text/html"})
    if path == "/fake.jpg":  # says image, is not
        return httpx.Response(200, content=b"%PDF-1.4 ...", headers={"content-type": "image/jpeg"})
    if path == "/moved.jpg":
        return httpx.Response(302, headers={"location": "/cam/1.jpg"})
    if path == "/inside.jpg":
        return httpx.Response(302, headers={"location": "http://169.254.169.254/latest/"})
    if path == "/slow.jpg":
        raise httpx.ReadTimeout("timed out", request=request)
    return httpx.Response(404)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(ctx: Context, org: Org, clock: Clock) -> Iterator[TestClient]:
    # The image host is played by the transport (no DNS): the address guard
    # is tested on its own below.
    fetch = MediaFetcher(BIG, 5.0, transport=httpx.MockTransport(remote), allow_private=True)
    app = build_app(open311_routes(ctx, clock, max_body_bytes=32 * 1024, fetch=fetch))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def key(ctx: Context, org: Org) -> str:
    return sources.create_key(ctx, "video-analytics", "taihe-dayuan", T0,
                              items=["drain", "flood"]).key


def post(client: TestClient, key: str | None, fmt: str = "json", **fields: Any) -> httpx.Response:
    form = {"service_code": "drain", "lat": "23.2", "long": "113.3",
            "description": "排水口堵塞", **fields}
    if key is not None:
        form["api_key"] = key
    response: httpx.Response = client.post(
        f"/open311/v2/requests.{fmt}", data={k: v for k, v in form.items() if v is not None})
    return response


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert isinstance(body, list) and all(set(e) == {"code", "description"} for e in body)
    assert body[0]["code"] == response.status_code
    return body


def xml(response: httpx.Response) -> ElementTree.Element:
    assert response.headers["content-type"].startswith("application/xml")
    return ElementTree.fromstring(response.content)


def count(ctx: Context, model: Any) -> int:
    with Session(ctx.engine) as session:
        return len(session.exec(select(model)).all())


# --- services --------------------------------------------------------------------


def test_services_list_the_catalog_in_json_and_xml(client: TestClient) -> None:
    listed = client.get("/open311/v2/services.json").json()
    assert [s["service_code"] for s in listed] == ["drain", "illegal-building", "flood"]
    drain = listed[0]
    assert drain == {"service_code": "drain", "service_name": "排水", "metadata": False,
                     "type": "realtime", "keywords": "enforcement, drain", "group": "综合执法",
                     "description": "综合执法 · 排水"}
    root = xml(client.get("/open311/v2/services.xml"))
    assert root.tag == "services"
    assert [s.findtext("service_code") for s in root.findall("service")] == [
        "drain", "illegal-building", "flood"]
    assert root.find("service/metadata").text == "false"  # type: ignore[union-attr]


def test_service_definition_and_unknown_service(client: TestClient) -> None:
    assert client.get("/open311/v2/services/drain.json").json() == {
        "service_code": "drain", "attributes": []}
    root = xml(client.get("/open311/v2/services/drain.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "drain"
    missing = client.get("/open311/v2/services/nope.json")
    assert missing.status_code == 404 and "nope" in errors(missing)[0]["description"]
    missing_xml = client.get("/open311/v2/services/nope.xml")
    assert missing_xml.status_code == 404
    assert xml(missing_xml).tag == "errors"
    assert xml(missing_xml).findtext("error/code") == "404"


def test_a_wrong_key_is_refused_even_where_none_is_needed(client: TestClient) -> None:
    response = client.get("/open311/v2/services.json", params={"api_key": "wrong"})
    assert response.status_code == 403 and "api_key" in errors(response)[0]["description"]


def test_unknown_format_and_method(client: TestClient) -> None:
    assert client.get("/open311/v2/services.csv").status_code == 404
    wrong = client.delete("/open311/v2/requests.json")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, POST"
    assert client.post("/open311/v2/services.xml").status_code == 405


# --- POST requests ---------------------------------------------------------------------


def test_post_raises_a_routed_call_for_the_keys_unit(
    client: TestClient, ctx: Context, org: Org, key: str
) -> None:
    response = post(client, key, media_url="http://cams.example/cam/1.jpg",
                    address_string="大源村北路口", **{"attribute[camera]": "C-17"})
    assert response.status_code == 201, response.text
    [created] = response.json()
    number = created["service_request_id"]
    assert number.startswith("BY-2025-") and created["token"]
    with Session(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == number)).one()
        assert call.status is CallStatus.DISPATCHED and call.lead_department_id == org.water
        assert call.unit_id == org.village and call.source == "video-analytics"
        assert call.text == "排水口堵塞\ncamera: C-17"
        assert call.location_text == "大源村北路口" and call.latitude == 23.2
        photo = session.exec(select(Attachment).where(Attachment.call_id == call.id)).one()
        assert photo.content_type == "image/jpeg"
        raised = session.exec(select(Event).where(Event.call_id == call.id,
                                                  Event.kind == "CallRaised")).one()
        assert raised.data["source"] == "video-analytics"
        alert = session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == org.water_liaison,
            OutboxMessage.template == "call_alert")).one()
        assert alert.call_id == call.id
        # The system member is never messaged (no undeliverable reports).
        key_row = session.exec(select(ApiKey)).one()
        assert session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == key_row.member_id)).all() == []


def test_post_in_xml(client: TestClient, key: str) -> None:
    root = xml(post(client, key, fmt="xml"))
    assert root.tag == "service_requests"
    assert root.findtext("request/service_request_id", "").startswith("BY-")
    assert root.findtext("request/token")


def test_the_key_can_come_in_a_header(client: TestClient, key: str) -> None:
    response = client.post("/open311/v2/requests.json", headers={"X-Api-Key": key},
                           data={"service_code": "drain", "address_string": "大源村"})
    assert response.status_code == 201
    assert client.get("/open311/v2/requests.json",
                      headers={"X-Api-Key": key}).json()[0]["description"] == "排水"


@pytest.mark.parametrize(("fields", "field"), [
    ({"service_code": "nope"}, "service_code"),
    ({"service_code": ""}, "service_code"),
    ({"lat": None, "long": None}, "address_string"),
    ({"long": None}, "lat"),
    ({"lat": "north"}, "lat"),
    ({"lat": "nan"}, "lat"),
    ({"lat": "123"}, "lat"),
    ({"description": "长" * 1001}, "description"),
    ({"attribute[camera]": "c" * 61}, "attribute"),
    ({**{f"attribute[a{n}]": "1" for n in range(11)}}, "attribute"),
    ({"address_string": "路" * 501}, "address_string"),
    ({"media_url": "file:///etc/passwd"}, "media_url"),
    ({"external_id": "x" * 129}, "external_id"),
    ({"external_id": "带中文"}, "external_id"),
    ({"media_url": "http://"}, "media_url"),
])
def test_bad_posts_are_400_with_the_field_named_and_store_nothing(
    client: TestClient, ctx: Context, key: str, fields: dict[str, Any], field: str
) -> None:
    response = post(client, key, **fields)
    assert response.status_code == 400, response.text
    assert errors(response)[0]["description"].startswith(field)
    assert count(ctx, Call) == 0 and count(ctx, SourceEvent) == 0


def test_nul_characters_are_dropped_from_a_post(client: TestClient, key: str) -> None:
    """PostgreSQL can store no NUL (schemathesis found a 500 there): a form's
    NUL characters are dropped before anything reads the fields."""
    created = post(client, key, description="积水\x00漫到路面")
    assert created.status_code == 201, created.text
    number = created.json()[0]["service_request_id"]
    read = client.get(f"/open311/v2/requests/{number}.json", params={"api_key": key})
    assert read.json()[0]["description"] == "积水漫到路面"


def test_oversize_and_malformed_bodies(client: TestClient, ctx: Context, key: str) -> None:
    big = client.post("/open311/v2/requests.json",
                      content=b"api_key=" + key.encode() + b"&description=" + b"x" * 40000,
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 400 and errors(big)[0]["description"].startswith("body")
    binary = client.post("/open311/v2/requests.json", content=b"\xff\xfe\xfd",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert binary.status_code == 400 and errors(binary)[0]["description"].startswith("body")
    as_json = client.post("/open311/v2/requests.json", json={"service_code": "drain"})
    assert as_json.status_code == 400
    assert errors(as_json)[0]["description"].startswith("content-type")
    assert count(ctx, Call) == 0


def test_keys_missing_wrong_revoked_or_not_allowed_get_403(
    client: TestClient, ctx: Context, key: str
) -> None:
    assert post(client, None).status_code == 403
    assert post(client, "not-a-key").status_code == 403
    not_allowed = post(client, key, service_code="illegal-building")
    assert not_allowed.status_code == 403
    assert errors(not_allowed)[0]["description"].startswith("service_code")
    sources.revoke_key(ctx, "video-analytics", T0)
    revoked = post(client, key)
    assert revoked.status_code == 403 and "revoked" in errors(revoked)[0]["description"]
    assert client.get("/open311/v2/requests.json", params={"api_key": key}).status_code == 403
    xml_error = xml(post(client, key, fmt="xml"))
    assert xml_error.tag == "errors" and xml_error.findtext("error/code") == "403"
    assert count(ctx, Call) == 0


# --- machine sources: idempotency, repeats, bursts, media ---------------------------------


def test_the_same_event_twice_is_the_same_call(client: TestClient, ctx: Context,
                                               key: str) -> None:
    first = post(client, key, external_id="evt-1", media_url="http://cams.example/cam/1.jpg")
    again = post(client, key, external_id="evt-1", media_url="http://cams.example/cam/1.jpg")
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    assert first.json()[0]["token"] == again.json()[0]["token"]
    assert count(ctx, Call) == 1 and count(ctx, SourceEvent) == 1 and count(ctx, Attachment) == 1


def test_a_repeat_of_an_open_call_is_added_to_it(
    client: TestClient, ctx: Context, org: Org, key: str, clock: Clock
) -> None:
    first = post(client, key, external_id="evt-1", lat="23.20000", long="113.30000")
    clock.now += timedelta(minutes=5)
    # 20 m away, another sighting of the same thing, with a photo.
    repeat = post(client, key, external_id="evt-2", lat="23.20018", long="113.30000",
                  description="仍然堵塞", media_url="http://cams.example/cam/2.png")
    assert repeat.status_code == 200
    [answer] = repeat.json()
    assert answer["service_request_id"] == first.json()[0]["service_request_id"]
    assert "added" in answer["service_notice"]
    far = post(client, key, external_id="evt-3", lat="23.21", long="113.30")
    assert far.status_code == 201
    with Session(ctx.engine) as session:
        assert len(session.exec(select(Call)).all()) == 2
        info = session.exec(select(Event).where(Event.kind == "InfoAdded")).one()
        assert info.note == "仍然堵塞" and len(info.data["attachments"]) == 1
        assert session.exec(select(OutboxMessage).where(
            OutboxMessage.template == "call_info_added",
            OutboxMessage.member_id == org.water_liaison)).one()
    # Once the call is closed, the same sighting raises a new call.
    number = first.json()[0]["service_request_id"]
    with Session(ctx.engine) as session:
        call_id = session.exec(select(Call.id).where(Call.number == number)).one()
    call = calls.acknowledge(ctx, call_id or 0, org.water_liaison, clock.now)
    calls.respond(ctx, call.id or 0, org.water_liaison, clock.now, "去处理")
    calls.resolve(ctx, call.id or 0, org.water_liaison, clock.now, "已疏通")
    again = post(client, key, external_id="evt-4", lat="23.20000", long="113.30000")
    assert again.status_code == 201
    assert again.json()[0]["service_request_id"] != number


def test_an_address_repeat_counts_as_the_same_place(client: TestClient, ctx: Context,
                                                    key: str) -> None:
    post(client, key, lat=None, long=None, address_string="太和镇 大源村 北路口")
    second = post(client, key, lat=None, long=None, address_string=" 太和镇  大源村 北路口 ")
    assert second.status_code == 200 and count(ctx, Call) == 1


def test_bursts_are_rate_limited_per_key(client: TestClient, ctx: Context, org: Org,
                                         clock: Clock) -> None:
    key = sources.create_key(ctx, "sensors", "taihe", T0, per_minute=3).key
    other = sources.create_key(ctx, "monitors", "taihe", T0, per_minute=3).key
    for n in range(3):
        clock.now += timedelta(seconds=1)
        assert post(client, key, external_id=f"s-{n}", lat=str(23 + n / 10)).status_code == 201
    limited = post(client, key, external_id="s-3", lat="23.5")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "58"  # the first of the three leaves the window
    assert errors(limited)[0]["code"] == 429
    assert post(client, key, external_id="s-0", lat="23.0").status_code == 200  # a replay
    assert post(client, other, external_id="m-0").status_code == 201  # keys are apart
    clock.now += timedelta(seconds=58)
    assert post(client, key, external_id="s-3", lat="23.5").status_code == 201
    assert count(ctx, Call) == 5


@pytest.mark.parametrize(("url", "reason"), [
    ("http://cams.example/huge.jpg", "too_large"),
    ("http://cams.example/page.html", "not_an_image"),
    ("http://cams.example/fake.jpg", "not_an_image"),
    ("http://cams.example/slow.jpg", "unreachable"),
    ("http://cams.example/missing.jpg", "unreachable"),
])
def test_a_failed_media_fetch_keeps_the_call_and_notes_it(
    client: TestClient, ctx: Context, key: str, url: str, reason: str
) -> None:
    response = post(client, key, media_url=url)
    assert response.status_code == 201
    number = response.json()[0]["service_request_id"]
    with Session(ctx.engine) as session:
        event = session.exec(select(SourceEvent)).one()
        assert event.media_error == reason and event.media_url == url
        assert session.exec(select(Attachment)).all() == []
    from workflows.queries import call_by_number

    assert call_by_number(ctx, number).source_media_error == reason
    shown = client.get(f"/open311/v2/requests/{number}.json", params={"api_key": key}).json()
    assert shown[0]["media_url"] == url


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/cam/1.jpg", "forbidden_address"),
    ("http://10.1.2.3/cam/1.jpg", "forbidden_address"),
    ("http://[::1]/cam/1.jpg", "forbidden_address"),
    ("http://169.254.169.254/latest/meta-data", "forbidden_address"),
    ("http://93.184.215.14/inside.jpg", "forbidden_address"),  # a redirect inwards
    ("http://93.184.215.14/moved.jpg", None),  # a redirect to a public address
    ("http://93.184.215.14/cam/1.jpg", None),
])
def test_media_comes_from_public_addresses_only(url: str, reason: str | None) -> None:
    fetch = MediaFetcher(BIG, 5.0, transport=httpx.MockTransport(remote))
    fetched = fetch(url)
    assert fetched.error == reason
    assert (fetched.photo is not None) == (reason is None)


# --- GET requests, requests/{id}, tokens/{token} -----------------------------------------------


def test_get_requests_filters_and_pages(client: TestClient, ctx: Context, org: Org, key: str,
                                        clock: Clock) -> None:
    numbers = []
    for n in range(5):
        clock.now = T0 + timedelta(hours=n)
        code = "flood" if n == 4 else "drain"
        response = post(client, key, service_code=code, lat=str(22 + n), long="113")
        numbers.append(response.json()[0]["service_request_id"])
    # Someone else's call (a cadre's, from chat) is not for this key to read.
    calls.raise_call(ctx, org.caller, T0, "别人的", item_code="drain")

    def get(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/open311/v2/requests.json", params={"api_key": key, **params})
        assert response.status_code == 200, response.text
        return list(response.json())

    assert [r["service_request_id"] for r in get()] == numbers[::-1]
    assert [r["service_request_id"] for r in get(service_code="flood")] == [numbers[4]]
    assert [r["service_request_id"] for r in get(
        service_request_id=f"{numbers[0]},{numbers[2]}")] == [numbers[2], numbers[0]]
    window = get(start_date=(T0 + timedelta(hours=1)).isoformat(),
                 end_date=(T0 + timedelta(hours=2)).isoformat())
    assert [r["service_request_id"] for r in window] == [numbers[2], numbers[1]]
    assert [r["service_request_id"] for r in get(page_size=2, page=2)] == [numbers[2],
                                                                           numbers[1]]
    assert get(status="closed") == [] and len(get(status="open,closed")) == 5
    first = get(service_request_id=numbers[0])[0]
    assert first["status"] == "open" and first["agency_responsible"] == "water"
    assert first["requested_datetime"] == "2025-09-30T16:50:00+08:00"
    assert first["expected_datetime"] is not None and first["lat"] == 22.0
    assert first["status_notes"] == "已派单，待签收"
    root = xml(client.get("/open311/v2/requests.xml", params={"api_key": key, "page_size": 1}))
    assert root.tag == "service_requests" and len(root.findall("request")) == 1
    assert root.findtext("request/status") == "open"


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "pending"}, "status"),
    ({"start_date": "yesterday"}, "start_date"),
    ({"end_date": "2025-13-01"}, "end_date"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "1000"}, "page_size"),
    ({"page": "0"}, "page"),
    ({"page": "-1"}, "page"),
    ({"service_request_id": ",".join(str(n) for n in range(101))}, "service_request_id"),
    ({"service_code": "drain\x00"}, "service_code"),
])
def test_bad_queries_are_400(client: TestClient, key: str, params: dict[str, str],
                             field: str) -> None:
    response = client.get("/open311/v2/requests.json", params={"api_key": key, **params})
    assert response.status_code == 400
    assert errors(response)[0]["description"].startswith(field)


def test_one_request_its_status_as_it_moves_and_its_token(
    client: TestClient, ctx: Context, org: Org, key: str, clock: Clock
) -> None:
    created = post(client, key).json()[0]
    number, token = created["service_request_id"], created["token"]

    def show(fmt: str = "json") -> Any:
        response = client.get(f"/open311/v2/requests/{number}.{fmt}", params={"api_key": key})
        assert response.status_code == 200
        return response.json()[0] if fmt == "json" else xml(response)

    assert show()["status"] == "open"
    with Session(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == number)).one()
    clock.now += timedelta(hours=1)
    calls.acknowledge(ctx, call.id or 0, org.water_liaison, clock.now)
    calls.respond(ctx, call.id or 0, org.water_liaison, clock.now, "安排清淤")
    calls.resolve(ctx, call.id or 0, org.water_liaison, clock.now, "已清淤疏通")
    shown = show()
    assert shown["status"] == "closed"
    assert shown["status_notes"] == "已办结，待呼叫方确认 · 已清淤疏通"
    assert shown["updated_datetime"] == "2025-09-30T17:50:00+08:00"
    assert show("xml").findtext("request/status") == "closed"
    tokens = client.get(f"/open311/v2/tokens/{token}.json", params={"api_key": key})
    assert tokens.json() == [{"service_request_id": number, "token": token}]
    assert xml(client.get(f"/open311/v2/tokens/{token}.xml", params={"api_key": key})
               ).findtext("request/service_request_id") == number
    for path in (f"requests/{number}", f"tokens/{token}"):
        assert client.get(f"/open311/v2/{path}.json").status_code == 403


def test_other_calls_and_tokens_are_not_found(client: TestClient, ctx: Context, org: Org,
                                              key: str) -> None:
    other_key = sources.create_key(ctx, "monitors", "taihe", T0).key
    theirs = post(client, other_key).json()[0]
    chat = calls.raise_call(ctx, org.caller, T0, "群众反映", item_code="drain")
    for path in (f"requests/{theirs['service_request_id']}", f"requests/{chat.number}",
                 "requests/BY-2025-999999", f"tokens/{theirs['token']}", "tokens/nope"):
        response = client.get(f"/open311/v2/{path}.json", params={"api_key": key})
        assert response.status_code == 404, path
        errors(response)


def test_openapi_document_is_served(client: TestClient) -> None:
    document = client.get("/open311/v2/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/open311/v2/requests.{format}" in document["paths"]
    json.dumps(document)


def test_keys_are_stored_hashed_and_listed_without_the_key(ctx: Context, org: Org) -> None:
    new = sources.create_key(ctx, "water-quality", "taihe", T0)
    with Session(ctx.engine) as session:
        row = session.exec(select(ApiKey).where(col(ApiKey.name) == "water-quality")).one()
        assert row.key_hash == sources.hash_key(new.key) and new.key not in row.key_hash
    [info] = sources.list_keys(ctx)
    assert info.prefix == new.key[:8] and info.unit_code == "taihe" and info.items is None
    assert sources.authenticate(ctx, new.key) is not None
    assert sources.authenticate(ctx, new.key + "x") is None


def test_reports_count_calls_by_source(client: TestClient, ctx: Context, org: Org,
                                       key: str) -> None:
    from bot.report import render_report
    from handlers.i18n import Translator
    from models import Locale
    from tests.test_handlers_chat import Chat
    from workflows.stats import Period, report

    post(client, key, lat="23.1")
    post(client, key, lat="23.3")
    calls.raise_call(ctx, org.caller, T0, "群众反映", item_code="drain")
    later = T0 + timedelta(days=1)
    result = report(ctx, Period.parse("2025-09", ctx.rules.tz), later)
    assert {g.code: g.figures.raised for g in result.sources} == {
        None: 1, "video-analytics": 2}
    assert "video-analytics" in render_report(result, Translator(Locale.EN, ctx.rules.tz))
    # The workbook has the same groups on a sheet of their own, and each
    # call's source in the ledger; the JSON lists them too.
    import io

    from openpyxl import load_workbook

    from bot.exports.json import report_data
    from bot.exports.xlsx import workbook_bytes

    book = load_workbook(io.BytesIO(workbook_bytes(result, Translator(Locale.ZH_HANS,
                                                                      ctx.rules.tz))))
    rows = list(book["来源"].iter_rows(min_row=2, max_col=2, values_only=True))
    assert rows == [("聊天（干部发起）", 1), ("video-analytics", 2)]
    ledger = list(book["台账"].iter_rows(values_only=True))
    assert sorted(row[-1] for row in ledger[1:]) == [
        "video-analytics", "video-analytics", "聊天（干部发起）"]
    assert {s["code"]: s["figures"]["raised"] for s in report_data(result)["sources"]} == {
        None: 1, "video-analytics": 2}
    chat = Chat(ctx, "dispatcher", now=later)
    chat.send("/stats 2025-09")
    assert ("其他系统发起的呼叫（Open311 接入）：\n"
            "video-analytics：呼叫 2 件，办结 0 件") in chat.text


def test_a_period_without_systems_lists_no_sources(ctx: Context, org: Org) -> None:
    from workflows.stats import Period, report

    calls.raise_call(ctx, org.caller, T0, "群众反映", item_code="drain")
    assert report(ctx, Period.parse("2025-09", ctx.rules.tz), T0).sources == []


# --- items that declare attributes (the catalog's `attributes`) ---------------------------


@pytest.fixture
def district_client(ctx: Context, clock: Clock) -> Iterator[TestClient]:
    """The example district, whose street-occupation and pollution items
    declare attributes."""
    from pathlib import Path

    from workflows.directory import load
    from workflows.orgfile import read_catalog, read_org

    examples = Path(__file__).resolve().parent.parent / "examples"
    org = read_org(examples / "org.yaml")
    load(ctx.engine, org, read_catalog(examples / "catalog.yaml", org), T0)
    fetch = MediaFetcher(BIG, 5.0, transport=httpx.MockTransport(remote), allow_private=True)
    with TestClient(build_app(open311_routes(ctx, clock, fetch=fetch))) as test_client:
        yield test_client


def test_declared_attributes_are_listed_and_checked(district_client: TestClient,
                                                    ctx: Context) -> None:
    client = district_client
    key = sources.create_key(ctx, "video-analytics", "taihe-helong", T0).key
    listed = {s["service_code"]: s for s in client.get("/open311/v2/services.json").json()}
    assert listed["street-occupation"]["metadata"] is True
    assert listed["drainage-blockage"]["metadata"] is False
    # The catalog's keywords are GeoReport's keywords too.
    assert listed["street-occupation"]["keywords"].startswith(
        "enforcement, street, occupation, 摆摊, 摊贩")
    definition = client.get("/open311/v2/services/street-occupation.json").json()
    violation, camera = definition["attributes"]
    assert violation["code"] == "violation" and violation["datatype"] == "singlevaluelist"
    assert violation["required"] is True and violation["order"] == 1
    assert len(violation["values"]) == 9
    assert violation["values"][0] == {"key": "out-of-store", "name": "出店经营"}
    assert camera == {"variable": True, "code": "camera", "datatype": "string",
                      "required": False, "datatype_description": None, "order": 2,
                      "description": "摄像头编号", "values": []}
    root = xml(client.get("/open311/v2/services/street-occupation.xml"))
    assert root.findtext("attributes/attribute/values/value/key") == "out-of-store"

    def raise_(**fields: str) -> httpx.Response:
        return post(client, key, service_code="street-occupation", description="",
                    **fields)

    for fields, why in [({}, "required"),
                        ({"attribute[violation]": "parking"}, "one of"),
                        ({"attribute[violation]": "out-of-store", "attribute[speed]": "3"},
                         "not an attribute")]:
        refused = raise_(**fields)
        assert refused.status_code == 400
        assert errors(refused)[0]["description"].startswith("attribute[")
        assert why in errors(refused)[0]["description"]
    created = raise_(**{"attribute[violation]": "out-of-store", "attribute[camera]": "C-17"})
    assert created.status_code == 201
    with Session(ctx.engine) as session:
        call = session.exec(select(Call)).one()
    assert call.text == "占道经营整治\n摄像头编号: C-17\n违规类型: 出店经营"
    monitor = sources.create_key(ctx, "water-quality", "taihe-helong", T0).key
    bad_reading = post(client, monitor, service_code="pollution-discharge",
                       **{"attribute[reading]": "high"})
    assert bad_reading.status_code == 400 and "not a number" in bad_reading.text
    assert post(client, monitor, service_code="pollution-discharge",
                **{"attribute[indicator]": "ammonia",
                   "attribute[reading]": "2.35"}).status_code == 201


def test_a_catalog_list_attribute_needs_values(tmp_path: Any) -> None:
    from pathlib import Path

    from workflows.orgfile import OrgFileError, read_catalog, read_org

    examples = Path(__file__).resolve().parent.parent / "examples"
    text = (examples / "catalog.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "catalog.yaml"
    bad.write_text(text.replace("      - {code: reading, description: 监测值, datatype: number}",
                                "      - {code: reading, description: 监测值, "
                                "datatype: singlevaluelist}"), encoding="utf-8")
    with pytest.raises(OrgFileError, match="needs values"):
        read_catalog(bad, read_org(examples / "org.yaml"))

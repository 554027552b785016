"""The dispatch board in process (Starlette's test client over the real
routes and a real database): the one-time link from `/board`, sessions,
CSRF, who sees which calls, the dispatcher's decisions, filters and paging.
The same flows in a real browser are in `test_board_browser.py`."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from httpx import Response
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.board import Board
from bot.exports import export_files
from models import Call, CallRequest, CallStatus, Member, OutboxMessage, RequestStatus
from tests.conftest import PNG, T0, Org
from tests.test_handlers_chat import Chat
from tests.test_handlers_liaison import status
from workflows import board, calls
from workflows.calendar import WorkingDayCalendar
from workflows.context import Context
from workflows.deadlines import WorkdayPolicy, working_time_between
from workflows.errors import NotAllowed, WrongState
from workflows.photos import Photo

URL = "http://board.test"
LINK = re.compile(r"http://board\.test/board/login/(\S+)")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def bctx(ctx: Context) -> Context:
    return replace(ctx, board_url=URL, exports=export_files)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture
def client(bctx: Context, clock: Clock) -> TestClient:
    app = Starlette(routes=Board(bctx, clock, secure=False).routes())
    return TestClient(app, base_url=URL, follow_redirects=False)


def link_for(ctx: Context, code: str, now: datetime) -> str:
    chat = Chat(ctx, code, now=now)
    chat.send("/board")
    found = LINK.search(chat.text)
    assert found, chat.text
    return found.group(1)


def sign_in(client: TestClient, ctx: Context, code: str, now: datetime) -> None:
    token = link_for(ctx, code, now)
    page = client.get(f"/board/login/{token}")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    answer = client.post("/board/login", data={"csrf": csrf.group(1), "token": token})
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/board/"


def page_csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def raise_call(ctx: Context, org: Org, text: str = "积水", item: str | None = "drain",
               at: datetime = T0) -> int:
    call = calls.raise_call(ctx, org.caller, at, text, item_code=item, photos=[Photo(PNG)])
    return call.id or 0


# --- the link -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["dispatcher", "supervisor", "water-head", "admin"])
def test_board_users_get_a_link(bctx: Context, org: Org, who: str) -> None:
    chat = Chat(bctx, who)
    chat.send("/board")
    assert LINK.search(chat.text), chat.text
    assert "10" in chat.text  # minutes


@pytest.mark.parametrize("who", ["li", "water-liaison"])
def test_callers_and_liaisons_get_no_link(bctx: Context, org: Org, who: str) -> None:
    chat = Chat(bctx, who)
    chat.send("/board")
    assert not LINK.search(chat.text)
    assert "指挥调度中心" in chat.text
    with pytest.raises(NotAllowed):
        board.issue_link(bctx, org.caller, T0)


def test_no_link_in_a_group_chat_or_without_a_board(ctx: Context, bctx: Context,
                                                    org: Org) -> None:
    from handlers.conversations import Conversations
    from handlers.messages import Incoming

    replies = Conversations(bctx).handle(
        Incoming.from_text("console", "dispatcher", "group-1", "/board"), T0)
    assert "私聊" in replies[0].text and not LINK.search(replies[0].text)
    chat = Chat(ctx, "dispatcher")
    chat.send("/board")
    assert "尚未开通" in chat.text


def test_help_and_menu_list_board_for_board_users_only(bctx: Context, org: Org) -> None:
    from handlers.menu import command_menu
    from models import Locale, Role

    assert "board" in dict(command_menu(Role.HEAD, Locale.EN))
    assert "board" not in dict(command_menu(Role.CALLER, Locale.EN))
    chat = Chat(bctx, "supervisor")
    chat.send("/help")
    assert "/board" in chat.text


# --- login and sessions --------------------------------------------------------------------


def test_opening_the_link_does_not_spend_it_and_login_starts_a_session(
    client: TestClient, bctx: Context, org: Org, clock: Clock
) -> None:
    token = link_for(bctx, "dispatcher", clock.now)
    for _ in range(2):  # a chat app's link preview, then the person
        assert client.get(f"/board/login/{token}").status_code == 200
    page = client.get(f"/board/login/{token}")
    answer = client.post("/board/login", data={"csrf": page_csrf(page.text), "token": token})
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "youhu_board=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Max-Age=28800" in cookie and "Secure" not in cookie
    board_page = client.get("/board/")
    assert board_page.status_code == 200
    assert '<html lang="zh-Hans">' in board_page.text and "在办呼叫" in board_page.text


def test_secure_cookie_behind_https(bctx: Context, org: Org, clock: Clock) -> None:
    ctx = replace(bctx, board_url="https://board.test")
    app = Starlette(routes=Board(ctx, clock, secure=True).routes())
    client = TestClient(app, base_url="https://board.test", follow_redirects=False)
    token = board.issue_link(ctx, org.dispatcher, clock.now)
    page = client.get(f"/board/login/{token}")
    answer = client.post("/board/login", data={"csrf": page_csrf(page.text), "token": token})
    assert "Secure" in answer.headers["set-cookie"]


def test_a_used_or_expired_link_is_refused(client: TestClient, bctx: Context, org: Org,
                                           clock: Clock) -> None:
    def submit(token: str) -> Response:
        form = client.get(f"/board/login/{token}")  # opened again from the chat
        answer: Response = client.post("/board/login",
                                       data={"csrf": page_csrf(form.text), "token": token})
        return answer

    token = link_for(bctx, "dispatcher", clock.now)
    assert submit(token).status_code == 303
    again = submit(token)
    assert again.status_code == 403 and "已使用" in again.text
    late = link_for(bctx, "dispatcher", clock.now)
    clock.now += board.LINK_LIFETIME + timedelta(seconds=1)
    expired = submit(late)
    assert expired.status_code == 403 and "已过期" in expired.text
    forged = submit("x" * 43)
    assert forged.status_code == 403 and "无效" in forged.text


def test_a_link_works_once_even_when_redeemed_twice_at_once(bctx: Context, org: Org) -> None:
    import threading

    token = board.issue_link(bctx, org.dispatcher, T0)
    results: list[str] = []

    def redeem() -> None:
        try:
            board.redeem_link(bctx, token, T0 + timedelta(seconds=1))
            results.append("ok")
        except WrongState:
            results.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok", "refused", "refused", "refused"]


def test_login_form_needs_its_csrf_cookie(client: TestClient, bctx: Context, org: Org,
                                          clock: Clock) -> None:
    token = link_for(bctx, "dispatcher", clock.now)
    client.get(f"/board/login/{token}")
    answer = client.post("/board/login", data={"csrf": "guessed", "token": token})
    assert answer.status_code == 403
    assert board.redeem_link(bctx, token, clock.now).member_id == org.dispatcher  # unspent


def test_signed_out_pages_say_how_to_get_in(client: TestClient, org: Org) -> None:
    for path in ("/board/", "/board/calls/1", "/board/report"):
        answer = client.get(path)
        assert answer.status_code == 401 and "/board" in answer.text
    assert client.get("/board/events").status_code == 401
    assert client.get("/board/photos/" + "0" * 64).status_code == 401


def test_a_session_ends_after_eight_hours_at_logout_and_at_revocation(
    client: TestClient, bctx: Context, org: Org, clock: Clock
) -> None:
    sign_in(client, bctx, "dispatcher", clock.now)
    clock.now += board.SESSION_LIFETIME - timedelta(minutes=1)
    assert client.get("/board/").status_code == 200
    clock.now += timedelta(minutes=2)
    assert client.get("/board/").status_code == 401

    sign_in(client, bctx, "dispatcher", clock.now)
    page = client.get("/board/")
    out = client.post("/board/logout", data={"csrf": page_csrf(page.text)})
    assert out.status_code == 200
    assert client.get("/board/").status_code == 401

    sign_in(client, bctx, "supervisor", clock.now)
    assert [s.member_code for s in board.live_sessions(bctx, clock.now)] == ["supervisor"]
    with pytest.raises(NotAllowed):
        board.revoke_sessions(bctx, "supervisor", org.dispatcher, clock.now)
    assert board.revoke_sessions(bctx, "supervisor", org.admin, clock.now) == 1
    assert client.get("/board/").status_code == 401


def test_a_deactivated_member_is_signed_out(client: TestClient, bctx: Context, org: Org,
                                            clock: Clock) -> None:
    sign_in(client, bctx, "water-head", clock.now)
    with Session(bctx.engine) as session:
        head = session.get(Member, org.water_head)
        assert head is not None
        head.active = False
        session.add(head)
        session.commit()
    assert client.get("/board/").status_code == 401


def test_the_revoke_command(bctx: Context, org: Org, db_url: str, clock: Clock,
                            capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    now = datetime.now(UTC)  # the command runs on the wall clock
    token = board.issue_link(bctx, org.dispatcher, now)
    board.redeem_link(bctx, token, now)
    unused = board.issue_link(bctx, org.dispatcher, now)
    monkeypatch.setenv("YOUHU_DATABASE__URL", db_url)
    monkeypatch.delenv("YOUHU_CONFIG", raising=False)
    assert main(["board-sessions", "list"]) == 0
    assert "dispatcher" in capsys.readouterr().out
    assert main(["board-sessions", "revoke", "--member", "dispatcher"]) == 0
    assert "1" in capsys.readouterr().out
    assert board.live_sessions(bctx, datetime.now(UTC)) == []
    with pytest.raises(WrongState):
        board.redeem_link(bctx, unused, datetime.now(UTC))
    assert main(["board-sessions", "revoke"]) == 2  # neither --member nor --all


def test_an_admin_revokes_sessions_in_chat(client: TestClient, bctx: Context, org: Org,
                                           clock: Clock) -> None:
    sign_in(client, bctx, "water-head", clock.now)
    dispatcher = Chat(bctx, "dispatcher", now=clock.now)
    dispatcher.send("/board revoke water-head")
    assert "未做任何更改" in dispatcher.text  # only admins revoke
    assert client.get("/board/").status_code == 200
    admin = Chat(bctx, "admin", now=clock.now)
    admin.send("/help")
    assert "/board revoke" in admin.text
    admin.send("/board revoke water-head")
    assert "1" in admin.text
    assert client.get("/board/").status_code == 401
    admin.send("/board revoke nobody")
    assert "nobody" in admin.text
    admin.send("/board revoke")
    assert "/board revoke <" in admin.text


# --- what each sees ------------------------------------------------------------------------


def test_a_head_sees_only_their_departments_calls(client: TestClient, bctx: Context,
                                                  org: Org, clock: Clock) -> None:
    water = raise_call(bctx, org, "自来水管破裂")
    urban = raise_call(bctx, org, "违建", item="illegal-building")  # urban leads, housing assists
    sign_in(client, bctx, "water-head", clock.now)
    table = client.get("/board/").text
    assert "自来水管破裂" in table and "违建" not in table
    assert client.get(f"/board/calls/{water}").status_code == 200
    refused = client.get(f"/board/calls/{urban}")
    assert refused.status_code == 403 and "违建" not in refused.text
    with Session(bctx.engine) as session:
        photo = session.exec(select(Call).where(Call.id == urban)).one()
    from models import Attachment

    with Session(bctx.engine) as session:
        sha = session.exec(select(Attachment.sha256).where(Attachment.call_id == photo.id)).one()
    # The same photo bytes belong to the water call too: served, as that call is in scope.
    assert client.get(f"/board/photos/{sha}").status_code == 200
    assert client.get("/board/photos/" + "a" * 64).status_code == 404
    # A head may not dispatch, even with a valid form.
    csrf = page_csrf(client.get(f"/board/calls/{water}").text)
    answer = client.post(f"/board/calls/{water}/assign", data={"csrf": csrf,
                                                                "department": "housing"})
    assert answer.status_code == 403
    assert status(bctx, water) is CallStatus.DISPATCHED


def test_an_assisting_departments_head_sees_the_joint_call(client: TestClient, bctx: Context,
                                                           org: Org, clock: Clock) -> None:
    from models import Role, UnitKind  # noqa: F401  (documenting the roles involved)

    joint = raise_call(bctx, org, "违建", item="illegal-building")
    with Session(bctx.engine) as session:
        session.add(Member(code="housing-head", name="housing-head", role=Role.HEAD,
                           unit_id=org.housing, created_at=T0))
        session.commit()
    sign_in(client, bctx, "housing-head", clock.now)
    assert client.get(f"/board/calls/{joint}").status_code == 200


def test_the_call_page_shows_timeline_photos_place_and_requests(
    client: TestClient, bctx: Context, org: Org, clock: Clock
) -> None:
    call = calls.raise_call(bctx, org.caller, T0, "井盖缺失", item_code="drain",
                            location_text="大源村口", latitude=23.1912, longitude=113.3245,
                            photos=[Photo(PNG)])
    cid = call.id or 0
    calls.acknowledge(bctx, cid, org.water_liaison, T0 + timedelta(minutes=5))
    calls.respond(bctx, cid, org.water_liaison, T0 + timedelta(minutes=6), "已派人")
    calls.request_extension(bctx, cid, org.water_liaison, T0 + timedelta(minutes=7), 2, "材料未到")
    sign_in(client, bctx, "dispatcher", clock.now)
    page = client.get(f"/board/calls/{cid}").text
    assert "井盖缺失" in page and "大源村口" in page
    assert "openstreetmap.org/?mlat=23.191200&amp;mlon=113.324500" in page
    assert page.count("/board/photos/") == 1  # the before photo; no after photo yet
    assert "已签收" in page and "已派人" in page
    assert "材料未到" in page and "同意" in page and "延期" in page


def test_the_call_page_says_a_deadline_in_an_uncovered_year_is_estimated(
    client: TestClient, bctx: Context, org: Org, clock: Clock
) -> None:
    covered = raise_call(bctx, org)
    late = raise_call(bctx, org, at=T0.replace(year=2026, month=12, day=30))  # due in 2027
    sign_in(client, bctx, "dispatcher", clock.now)
    note = "（按周末推算，节假日安排未发布）"
    assert note in client.get(f"/board/calls/{late}").text
    assert note not in client.get(f"/board/calls/{covered}").text


# --- the dispatcher's actions --------------------------------------------------------------


def test_the_dispatcher_assigns_from_the_board_and_the_liaison_is_alerted(
    client: TestClient, bctx: Context, org: Org, clock: Clock
) -> None:
    cid = raise_call(bctx, org, "不知道归谁管", item=None)
    sign_in(client, bctx, "dispatcher", clock.now)
    page = client.get(f"/board/calls/{cid}")
    assert "派单" in page.text
    answer = client.post(f"/board/calls/{cid}/assign",
                         data={"csrf": page_csrf(page.text), "department": "water"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("done=1")
    assert status(bctx, cid) is CallStatus.DISPATCHED
    with Session(bctx.engine) as session:
        alerts = session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == org.water_liaison, OutboxMessage.call_id == cid)).all()
    assert alerts
    # Once acknowledged the call can no longer be rerouted: the use case
    # refuses, the page says so, and nothing changes.
    calls.acknowledge(bctx, cid, org.water_liaison, clock.now)
    again = client.post(f"/board/calls/{cid}/assign",
                        data={"csrf": page_csrf(page.text), "department": "housing"})
    assert again.status_code == 303
    shown = client.get(again.headers["location"]).text
    assert "未做任何更改" in shown
    assert status(bctx, cid) is CallStatus.ACKNOWLEDGED


def test_a_forged_form_is_refused_and_changes_nothing(client: TestClient, bctx: Context,
                                                      org: Org, clock: Clock) -> None:
    cid = raise_call(bctx, org, "不知道归谁管", item=None)
    sign_in(client, bctx, "dispatcher", clock.now)
    for data in ({"department": "water"}, {"department": "water", "csrf": "forged"}):
        answer = client.post(f"/board/calls/{cid}/assign", data=data)
        assert answer.status_code == 403
    assert status(bctx, cid) is CallStatus.PENDING_DISPATCH


def test_extension_and_return_decided_on_the_board(client: TestClient, bctx: Context,
                                                   org: Org, clock: Clock) -> None:
    first = raise_call(bctx, org)
    second = raise_call(bctx, org)
    for cid in (first, second):
        calls.acknowledge(bctx, cid, org.water_liaison, T0 + timedelta(minutes=5))
    calls.respond(bctx, first, org.water_liaison, T0 + timedelta(minutes=6), "在办")
    extension = calls.request_extension(bctx, first, org.water_liaison,
                                        T0 + timedelta(minutes=6), 3, "等材料")
    returned = calls.return_call(bctx, second, org.water_liaison, T0 + timedelta(minutes=6),
                                 "不归我们管")
    sign_in(client, bctx, "dispatcher", clock.now)
    csrf = page_csrf(client.get(f"/board/calls/{first}").text)
    client.post(f"/board/requests/{extension.id}/decide",
                data={"csrf": csrf, "decision": "approve", "note": "同意"})
    client.post(f"/board/requests/{returned.id}/decide",
                data={"csrf": csrf, "decision": "approve", "department": "housing"})
    with Session(bctx.engine) as session:
        decided = {r.id: r.status for r in session.exec(select(CallRequest))}
        moved = session.get(Call, second)
        assert moved is not None
        assert moved.lead_department_id == org.housing
    assert decided == {extension.id: RequestStatus.APPROVED, returned.id: RequestStatus.APPROVED}
    late = client.post(f"/board/requests/{extension.id}/decide",
                       data={"csrf": csrf, "decision": "refuse"})
    assert late.status_code == 409


def test_supervisors_read_everything_but_have_no_forms(client: TestClient, bctx: Context,
                                                       org: Org, clock: Clock) -> None:
    cid = raise_call(bctx, org, "不知道归谁管", item=None)
    sign_in(client, bctx, "supervisor", clock.now)
    page = client.get(f"/board/calls/{cid}").text
    assert "不知道归谁管" in page and "/assign" not in page
    answer = client.post(f"/board/calls/{cid}/assign",
                         data={"csrf": page_csrf(page), "department": "water"})
    assert answer.status_code == 403


# --- the table -----------------------------------------------------------------------------


def test_filters_search_sort_and_pages(client: TestClient, bctx: Context, org: Org,
                                       clock: Clock) -> None:
    ids = [raise_call(bctx, org, f"第{i}号积水", at=T0 + timedelta(minutes=i)) for i in range(55)]
    pending = raise_call(bctx, org, "无人认领", item=None, at=T0 + timedelta(minutes=58))
    sign_in(client, bctx, "dispatcher", clock.now)
    first = client.get("/board/").text
    assert "56" in first and "第 1 页，共 2 页" in first
    second = client.get("/board/?page=2").text
    assert second.count('<tr>') + second.count('<tr class="late">') - 1 == 6
    found = client.get("/board/?q=第7号").text
    assert "第7号积水" in found and "第8号积水" not in found
    by_number = client.get("/board/?q=" + f"{pending:06d}").text
    assert "无人认领" in by_number
    state = client.get("/board/?status=pending_dispatch").text
    assert "无人认领" in state and "第1号积水" not in state
    department = client.get(f"/board/?department={org.housing}").text
    assert "在办呼叫 0 件" in department
    town = client.get(f"/board/?town={org.town}").text
    assert "56" in town
    assert "第0号积水" in client.get("/board/?sort=raised").text.split("第1号积水")[0]
    newest = client.get("/board/?sort=raised&order=desc").text
    assert newest.index("无人认领") < newest.index("第54号积水")
    # Nothing is overdue an hour in; a week later every dispatched call is.
    assert "第1号积水" not in client.get("/board/?overdue=1").text
    clock.now = T0 + timedelta(days=14)
    sign_in(client, bctx, "dispatcher", clock.now)
    overdue = client.get("/board/?overdue=1").text
    assert "第1号积水" in overdue and "无人认领" not in overdue and "超时" in overdue
    assert len(ids) == 55
    # Bad parameters are ignored, not errors.
    assert client.get("/board/?page=abc&sort=evil&status=nope&department=x").status_code == 200


def test_supervised_filter(client: TestClient, bctx: Context, org: Org, clock: Clock) -> None:
    cid = raise_call(bctx, org, "督办的那件")
    raise_call(bctx, org, "普通的那件")
    with Session(bctx.engine) as session:
        call = session.get(Call, cid)
        assert call is not None
        call.supervision_number = "BY-DB-2025-0001"
        session.add(call)
        session.commit()
    sign_in(client, bctx, "supervisor", clock.now)
    page = client.get("/board/?supervised=1").text
    assert "督办的那件" in page and "普通的那件" not in page


def test_english_for_a_member_who_chose_it(client: TestClient, bctx: Context, org: Org,
                                           clock: Clock) -> None:
    from models import Locale
    from tests.test_handlers_chat import set_locale

    set_locale(bctx, "dispatcher", Locale.EN)
    sign_in(client, bctx, "dispatcher", clock.now)
    page = client.get("/board/").text
    assert '<html lang="en">' in page and "Open calls" in page


def test_the_report_page(client: TestClient, bctx: Context, org: Org, clock: Clock) -> None:
    raise_call(bctx, org)
    sign_in(client, bctx, "water-head", clock.now)
    page = client.get("/board/report?month=2025-09")
    assert page.status_code == 200 and "2025-09" in page.text and "water" in page.text
    # A head reads their own department's line only.
    assert "housing" not in page.text and "响应率" in page.text
    client.cookies.clear()
    sign_in(client, bctx, "supervisor", clock.now)
    district = client.get("/board/report?month=2025-09").text
    assert "housing" in district and "water" in district
    assert client.get("/board/report?month=never").status_code == 400
    # The district's readers get the chat's files: the chart and the workbook.
    assert "/board/report/workbook.xlsx?month=2025-09" in district
    chart = client.get("/board/report/chart.png?month=2025-09")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(chart.content)).size == (1200, 900)
    workbook = client.get("/board/report/workbook.xlsx?month=2025-09")
    assert "attachment" in workbook.headers["content-disposition"]
    sheets = load_workbook(io.BytesIO(workbook.content)).sheetnames
    assert len(sheets) >= 2
    assert client.get("/board/report/other.txt?month=2025-09").status_code == 404
    client.cookies.clear()
    sign_in(client, bctx, "water-head", clock.now)
    assert client.get("/board/report/workbook.xlsx?month=2025-09").status_code == 403


# --- clocks in working time ------------------------------------------------------------------


def test_working_time_skips_the_national_day_holiday() -> None:
    calendar, policy = WorkingDayCalendar(), WorkdayPolicy()
    start = T0  # 2025-09-30 16:50 Shanghai
    due = datetime(2025, 10, 9, 10, 0, tzinfo=T0.tzinfo)  # 18:00 Shanghai on 2025-10-09
    # Working hours (09:00-18:00, deadlines.working_time_between): 1 h 10 min
    # left of 30 September, October 1-8 off, 9 h of 9 October.
    expected = timedelta(hours=10, minutes=10)
    assert working_time_between(start, due, calendar, policy) == expected
    assert working_time_between(due, start, calendar, policy) == -expected
    # Round the clock it would be 9 days and more.
    assert due - start == timedelta(days=9, hours=1, minutes=10)

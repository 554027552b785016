"""The dispatch board in a real browser: Debian's Chromium driven by
Playwright, against `youhu run` on loopback with the fake Bot API.

Each test signs in through a link the bot sent to the fake Telegram chat,
as a person would. Screenshots of the pages go to `artefacts/board/`
(ignored by git); every page is checked with axe-core and must show no
violation. Skipped, with the reason, when Chromium is not installed
(`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from models import Call, CallStatus, MediaStore, Member, make_engine, upgrade_to_head
from tests.fakes.telegram_api import FakeTelegram
from workflows import accounts, board, calls
from workflows.context import Context
from workflows.directory import load
from workflows.orgfile import read_catalog, read_org
from workflows.photos import Photo

ROOT = Path(__file__).resolve().parent.parent
ARTEFACTS = ROOT / "artefacts" / "board"
AXE = ROOT / "tests" / "assets" / "axe-core" / "axe-4.14.1.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DISPATCHER = 700000301  # 郑宇, command centre
LIAISON = 700000201  # 何文斌, water
HEAD = 700000401  # 周国强, head of water (zh_Hant)
SUPERVISOR = 700000402  # 许青
CALLER = 700000101  # 张伟, a caller
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/board/login/[A-Za-z0-9_-]+)")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Chromium is not installed (apt-get install chromium)")


@dataclass
class Running:
    ctx: Context
    tg: FakeTelegram
    url: str
    process: subprocess.Popen[str]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """`youhu run` with the example organisation, polling the fake Bot API and
    serving the board on a free loopback port."""
    folder = tmp_path_factory.mktemp("board-browser")
    db_url = f"sqlite:///{folder / 'youhu.db'}"
    upgrade_to_head(db_url)
    engine = make_engine(db_url)
    org = read_org(ROOT / "examples" / "org.yaml")
    load(engine, org, read_catalog(ROOT / "examples" / "catalog.yaml", org), datetime.now(UTC))
    with Session(engine) as session:
        for code, telegram_id in (("zhou-guoqiang", HEAD), ("xu-qing", SUPERVISOR)):
            member = session.exec(select(Member).where(Member.code == code)).one()
            accounts.bind(session, member.id or 0, "telegram", telegram_id)
        session.commit()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    ctx = Context(engine=engine, media=MediaStore(folder / "media"), board_url=url)
    with FakeTelegram() as tg:
        env = {**os.environ, "YOUHU_DATABASE__URL": db_url,
               "YOUHU_TELEGRAM__TOKEN": tg.token, "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
               "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
               "YOUHU_MEDIA__DIR": str(folder / "media"),
               "YOUHU_HTTP__PORT": str(port), "YOUHU_BOARD__URL": url,
               "YOUHU_SCHEDULER__SWEEP_SECONDS": "0.5", "YOUHU_SCHEDULER__DELIVER_SECONDS": "0.5"}
        env.pop("YOUHU_CONFIG", None)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for_port(port, process)
            yield Running(ctx, tg, url, process)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
            engine.dispose()
        assert process.returncode == 0, output
        assert "youhu stopped." in output and "Traceback" not in output, output


def _wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # a safety net for a broken start, not a measure
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"youhu run exited: {process.communicate()[0]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("youhu run did not start serving")


@pytest.fixture
def browser() -> Iterator[Any]:
    """A fresh Chromium with an empty profile (no cookies carried over)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="youhu-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900}, locale="zh-CN",
            bypass_csp=True,  # lets the test inject axe-core; the board itself sets a CSP
        )
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def link_from_chat(running: Running, user_id: int) -> str:
    since = len(running.tg.sent)
    running.tg.user_sends_command(user_id, "board")
    # Other messages may reach the same chat meanwhile (a new call's notice).
    message = running.tg.wait_for(lambda m: m.chat_id == user_id and bool(LINK.search(
        m.text or "")), since=since, timeout=30)
    found = LINK.search(message.text or "")
    assert found, message.text
    return found.group(1)


def sign_in(page: Any, running: Running, user_id: int) -> None:
    page.goto(link_from_chat(running, user_id))
    page.get_by_role("button").first.click()
    page.wait_for_url(f"{running.url}/board/")


def check_accessibility(page: Any, name: str) -> None:
    """axe-core on the page as it is (WCAG 2 A/AA and best practices), and a screenshot."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values:
            ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    assert result == [], f"{name}: " + json.dumps(result, ensure_ascii=False, indent=1)


def photo_png(width: int = 160, height: int = 120, red: int = 200) -> bytes:
    """A real, visible PNG (a colour gradient), written with zlib."""
    import struct
    import zlib

    rows = b"".join(b"\x00" + bytes(
        value for x in range(width) for value in (red, (x * 255) // width, (y * 255) // height))
        for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def member_id(running: Running, code: str) -> int:
    with Session(running.ctx.engine) as session:
        return session.exec(select(Member).where(Member.code == code)).one().id or 0


def call_status(running: Running, call_id: int) -> CallStatus:
    with Session(running.ctx.engine) as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call.status


def test_sign_in_see_a_call_arrive_live_and_assign_it(running: Running, browser: Any) -> None:
    page = browser.new_page()
    sign_in(page, running, DISPATCHER)
    page.evaluate("window.youhuNoReload = true")  # gone if the page reloads
    check_accessibility(page, "open-calls-empty")
    # A village cadre raises a call nobody can route; it appears on the open board.
    call = calls.raise_call(running.ctx, member_id(running, "zhang-wei"), datetime.now(UTC),
                            "路口井盖丢失，夜间危险", location_text="钟落潭镇政府路口",
                            latitude=23.3952, longitude=113.4123,
                            photos=[Photo(photo_png())])
    page.get_by_role("link", name=call.number).wait_for()
    assert page.evaluate("window.youhuNoReload") is True
    assert "路口井盖丢失" in page.inner_text("#live")
    check_accessibility(page, "open-calls")

    page.get_by_role("link", name=call.number).click()
    page.wait_for_url(f"{running.url}/board/calls/{call.id}")
    before = page.get_by_role("img", name="处置前 1")
    assert before.is_visible()
    assert before.evaluate("img => img.naturalWidth") == 160  # the photo itself, served
    assert page.locator(".photos").nth(1).inner_text().endswith("无照片。")  # no after photo
    assert "openstreetmap.org" in (page.get_by_role("link", name=re.compile("23.39520"))
                                   .get_attribute("href") or "")
    check_accessibility(page, "call")
    page.get_by_label("派单至部门").select_option("water")
    since = len(running.tg.sent)
    page.get_by_role("button", name="派单").click()
    page.get_by_role("status").filter(has_text="已完成").wait_for()
    assert call_status(running, call.id or 0) is CallStatus.DISPATCHED
    alert = running.tg.wait_for(lambda m: m.chat_id == LIAISON and call.number in (
        m.text or m.caption or ""), since=since, timeout=30)
    assert "井盖" in (alert.text or alert.caption or "")
    check_accessibility(page, "call-dispatched")

    # The department fixes it; the open page shows the after photo beside the before one.
    page.evaluate("window.youhuNoReload = true")
    liaison, now = member_id(running, "he-wenbin"), datetime.now(UTC)
    calls.acknowledge(running.ctx, call.id or 0, liaison, now)
    calls.respond(running.ctx, call.id or 0, liaison, now, "已安排人员")
    calls.resolve(running.ctx, call.id or 0, liaison, now, "已更换井盖",
                  photos=[Photo(photo_png(red=30))])
    after = page.get_by_role("img", name="处置后 1")
    after.wait_for()
    assert after.evaluate("img => img.naturalWidth") == 160
    assert page.evaluate("window.youhuNoReload") is True
    check_accessibility(page, "call-before-after")


def test_a_head_sees_their_department_only(running: Running, browser: Any) -> None:
    now = datetime.now(UTC)
    water = calls.raise_call(running.ctx, member_id(running, "zhang-wei"), now, "水管爆裂",
                             item_code="drainage-blockage")
    other = calls.raise_call(running.ctx, member_id(running, "zhang-wei"), now, "占道经营",
                             item_code=_item_of_another_department(running))
    page = browser.new_page()
    sign_in(page, running, HEAD)
    assert page.locator("html").get_attribute("lang") == "zh-Hant"  # the head's language
    table = page.inner_text("#live")
    assert water.number in table and other.number not in table
    check_accessibility(page, "open-calls-head")
    answer = page.goto(f"{running.url}/board/calls/{other.id}")
    assert answer is not None and answer.status == 403
    assert "占道经营" not in page.content()
    check_accessibility(page, "refused-other-department")
    assert page.get_by_role("button", name="派單").count() == 0  # heads do not dispatch


def _item_of_another_department(running: Running) -> str:
    from models import CatalogItem, Unit

    with Session(running.ctx.engine) as session:
        water = session.exec(select(Unit).where(Unit.code == "water")).one()
        item = session.exec(select(CatalogItem).where(
            CatalogItem.lead_department_id != water.id)).first()
        assert item is not None
        return item.code


def test_a_used_or_expired_link_is_refused(running: Running, browser: Any) -> None:
    page = browser.new_page()
    link = link_from_chat(running, SUPERVISOR)
    page.goto(link)
    page.get_by_role("button").first.click()
    page.wait_for_url(f"{running.url}/board/")
    other = browser.new_page()
    other.goto(link)
    other.get_by_role("button").first.click()
    assert "已使用" in other.inner_text("main")
    check_accessibility(other, "link-used")
    # A link issued 11 minutes ago has expired.
    token = board.issue_link(running.ctx, member_id(running, "xu-qing"),
                             datetime.now(UTC) - timedelta(minutes=11))
    other.goto(f"{running.url}/board/login/{token}")
    other.get_by_role("button").first.click()
    assert "已过期" in other.inner_text("main")
    # A caller asking for a link gets none.
    since = len(running.tg.sent)
    running.tg.user_sends_command(CALLER, "board")
    refusal = running.tg.wait_for(lambda m: m.chat_id == CALLER, since=since, timeout=30)
    assert not LINK.search(refusal.text or "")


def test_a_forged_form_is_refused(running: Running, browser: Any) -> None:
    call = calls.raise_call(running.ctx, member_id(running, "zhang-wei"), datetime.now(UTC),
                            "无人认领的呼叫")
    page = browser.new_page()
    sign_in(page, running, DISPATCHER)
    page.goto(f"{running.url}/board/calls/{call.id}")
    page.evaluate("""() => document.querySelectorAll('input[name=csrf]')
                            .forEach(i => { i.value = 'forged'; })""")
    page.get_by_label("派单至部门").select_option("water")
    page.get_by_role("button", name="派单").click()
    assert "并非来自您当前的平台会话" in page.inner_text("main")
    assert call_status(running, call.id or 0) is CallStatus.PENDING_DISPATCH


def test_report_page_sign_out_and_keyboard(running: Running, browser: Any) -> None:
    page = browser.new_page()
    sign_in(page, running, DISPATCHER)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "跳到正文"
    page.get_by_role("link", name="月度统计").click()
    page.wait_for_url(re.compile(r".*/board/report$"))
    check_accessibility(page, "report")
    page.get_by_role("button", name="退出登录").click()
    assert "已退出" in page.inner_text("main")
    page.goto(f"{running.url}/board/")
    assert "尚未登录" in page.inner_text("main")
    check_accessibility(page, "signed-out")


def test_pages_read_without_javascript(running: Running, tmp_path: Path) -> None:
    """Reading needs no script: the table, a call and the filters work as plain HTML."""
    from playwright.sync_api import sync_playwright

    call = calls.raise_call(running.ctx, member_id(running, "zhang-wei"), datetime.now(UTC),
                            "不用脚本也能看到", item_code="drainage-blockage")
    link = link_from_chat(running, DISPATCHER)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, java_script_enabled=False)
        try:
            page = context.new_page()
            page.goto(link)
            page.get_by_role("button").first.click()
            page.wait_for_url(f"{running.url}/board/")
            page.get_by_label("编号或关键词").fill("不用脚本")
            page.get_by_role("button", name="查询").click()
            page.wait_for_url(re.compile(r".*q=.*"))
            assert call.number in page.inner_text("#live")
            page.get_by_role("link", name=call.number).click()
            assert "不用脚本也能看到" in page.inner_text("main")
            page.screenshot(path=str(ARTEFACTS / "call-without-javascript.png"), full_page=True)
        finally:
            context.close()

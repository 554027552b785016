"""The report's exports read back: the workbook (openpyxl) holds the text
report's figures, the chart is a real PNG of the expected size (Pillow), the
JSON adds up; every column and sheet is labelled in three languages; and in
the chat, `/report` through the fake Bot API brings a photo and a document,
as does the monthly report through the outbox."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import Session, select

from bot.exports import export_files
from bot.exports.chart import HEIGHT_PX, WIDTH_PX, NoCjkFont, chart_png, cjk_font
from bot.exports.json import report_data
from bot.exports.xlsx import FIGURE_COLUMNS, LEDGER_COLUMNS, workbook_bytes
from bot.report import TEXT_COLUMNS, render_report
from handlers import report_labels as labels
from handlers.i18n import Translator
from models import Locale, Member, RatingLevel
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wecom_api import FakeWeCom
from tests.test_handlers_chat import Chat
from tests.test_telegram import EXAMPLES, running
from tests.test_wecom import Clock as WeComClock
from tests.test_wecom import running as wecom_running
from workflows import accounts, calls
from workflows.context import Context
from workflows.directory import load
from workflows.orgfile import read_catalog, read_org
from workflows.routine import routine
from workflows.stats import Period, report
from workflows.sweep import sweep

SHANGHAI = ZoneInfo("Asia/Shanghai")
OCTOBER = Period.month(2025, 10, SHANGHAI)
AS_OF = datetime(2025, 11, 1, 1, 0, tzinfo=UTC)
DISPATCHER = 700000301  # 郑宇, the command centre
ADMIN = 700000001  # 唐可, speaks English


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def member_id(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        return session.exec(select(Member).where(Member.code == code)).one().id or 0


@pytest.fixture
def october(ctx: Context) -> Context:
    """Baiyun with a few October calls: one on time and rated, one late and
    rated badly, one no one acknowledges (it reaches 问责), one not sure."""
    org = read_org(EXAMPLES / "org.yaml")
    load(ctx.engine, org, read_catalog(EXAMPLES / "catalog.yaml", org), local("2025-09-01 09:00"))
    ctx = replace(ctx, exports=export_files)
    li, water = member_id(ctx, "li-ming"), member_id(ctx, "he-wenbin")
    good = calls.raise_call(ctx, li, local("2025-10-13 09:00"), "排水管堵塞",
                            item_code="drainage-blockage").id or 0
    calls.acknowledge(ctx, good, water, local("2025-10-13 10:00"))
    calls.respond(ctx, good, water, local("2025-10-13 11:00"), "马上处理")
    calls.resolve(ctx, good, water, local("2025-10-14 11:00"), "已疏通")
    calls.confirm(ctx, good, li, local("2025-10-14 15:00"), RatingLevel.SATISFIED, "很快")
    late = calls.raise_call(ctx, li, local("2025-10-15 09:00"), "河涌淤积",
                            item_code="river-remediation").id or 0
    calls.acknowledge(ctx, late, water, local("2025-10-17 09:00"))  # due 10-16 18:00
    calls.respond(ctx, late, water, local("2025-10-17 10:00"), "安排清淤")
    calls.resolve(ctx, late, water, local("2025-10-20 10:00"), "已清淤")
    calls.confirm(ctx, late, li, local("2025-10-20 12:00"), RatingLevel.DISSATISFIED)
    calls.raise_call(ctx, member_id(ctx, "wu-lihua"), local("2025-10-24 10:00"), "工厂偷排",
                     item_code="pollution-discharge")
    calls.raise_call(ctx, li, local("2025-10-27 10:00"), "不知道归谁管")
    sweep(ctx, local("2025-10-31 20:00"))  # the ladder: 督办 and 问责 for the ignored call
    return ctx


def rate(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def test_the_workbook_holds_the_text_reports_figures(october: Context) -> None:
    result = report(october, OCTOBER, AS_OF)
    t = Translator(Locale.ZH_HANS, SHANGHAI)
    book = load_workbook(io.BytesIO(workbook_bytes(result, t)))
    assert book.sheetnames == ["汇总", "部门排名", "镇街", "领域", "台账"]

    # The text report's rows, parsed back: the departments' line is rank, name, figures.
    text = render_report(result, t)
    departments = book["部门排名"]
    header = [c.value for c in departments[1]]
    assert header[:2] == ["排名", "区直部门"] and "督办" in header and "扣分" in header
    rows = {row[1]: row for row in departments.iter_rows(min_row=2, values_only=True)}
    for entry in result.departments:
        row = rows[entry.department_name]
        assert row[0] == entry.rank
        figures = dict(zip(FIGURE_COLUMNS, row[2:2 + len(FIGURE_COLUMNS)], strict=True))
        for column in FIGURE_COLUMNS:
            expected = getattr(entry.figures, column)
            assert rate(figures[column]) == rate(expected), (entry.department_code, column)
        assert rate(row[-1]) == rate(entry.score)
        if entry.figures.raised:  # the text shows the same counts on the department's line
            line = next(ln for ln in text.splitlines() if f" {entry.department_name} " in
                        f" {ln} ")
            counts = [int(n) for n in re.findall(r"(?<![\d.])\d+(?![\d.%])", line)[1:8]]
            assert counts == [getattr(entry.figures, c) for c in TEXT_COLUMNS[:7]]
    water = result.department("water")
    assert (water.figures.raised, water.figures.late, water.rank) == (2, 1, 1)
    ecology = result.department("ecology")
    assert (ecology.figures.supervised, ecology.figures.referred, ecology.deduction) == (1, 1, 15)

    # The summary is the district's total; the domains add up to it (with "no domain").
    summary = {r[0]: r[1] for r in book["汇总"].iter_rows(min_row=2, values_only=True)}
    assert summary["区"] == "白云区" and summary["统计期"] == "2025-10"
    assert summary["发起"] == result.total.raised == 4
    assert summary["当前逾期"] == result.total.overdue == 1  # "not sure": no deadline yet
    domains = list(book["领域"].iter_rows(min_row=2, values_only=True))
    assert domains[-1][0] == "未选领域（不确定）"
    assert sum(int(r[1]) for r in domains) == result.total.raised

    # The 台账: one row per call, Chinese column names, local times, late flags.
    ledger = book["台账"]
    assert [c.value for c in ledger[1]] == [t._(labels.LEDGER[c]) for c in LEDGER_COLUMNS]
    rows_by_number = {r[0]: dict(zip(LEDGER_COLUMNS, r, strict=True))
                      for r in ledger.iter_rows(min_row=2, values_only=True)}
    assert len(rows_by_number) == len(result.facts) == 4
    first, second = (rows_by_number[f.number] for f in result.facts[:2])
    assert first["raised_at"] == datetime(2025, 10, 13, 9, 0)  # Asia/Shanghai, as read
    assert (first["acknowledge_late"], second["acknowledge_late"]) == ("否", "是")
    assert (first["rating"], first["rating_comment"]) == ("满意", "很快")
    assert first["town"] == "钟落潭镇" and first["unit"] == "良田村"
    ignored = rows_by_number[result.facts[2].number]
    assert ignored["referred"] == "是" and str(ignored["supervision_number"]).startswith("BY-DB-")
    # Frozen header and filters on every sheet.
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "B2"
        assert sheet.auto_filter.ref is not None and sheet.auto_filter.ref.startswith("A1:")


@pytest.mark.parametrize("locale", list(Locale))
def test_every_label_in_three_languages(october: Context, locale: Locale) -> None:
    """Every column, sheet and row label of the exports is translated (the
    catalogs check each message; here: they reach the workbook)."""
    result = report(october, OCTOBER, AS_OF)
    t = Translator(locale, SHANGHAI)
    book = load_workbook(io.BytesIO(workbook_bytes(result, t)))
    expected = [t._(labels.SHEETS[k]) for k in ("summary", "departments", "towns", "domains",
                                                  "ledger")]
    assert book.sheetnames == expected
    headers = [c.value for c in book.worksheets[-1][1]]
    assert headers == [t._(labels.LEDGER[c]) for c in LEDGER_COLUMNS]
    if locale is not Locale.EN:  # really translated, not the English source
        assert not any(re.search(r"[A-Za-z]{3,}", str(h)) for h in headers)
        assert not any(re.search(r"[A-Za-z]{3,}", name) for name in book.sheetnames)
    text = render_report(result, t)
    assert t._(labels.TOTAL_HEADING) in text and "白云区" in text


def test_the_chart_is_a_png_of_the_expected_size(october: Context) -> None:
    result = report(october, OCTOBER, AS_OF)
    data = chart_png(result, Translator(Locale.ZH_HANS, SHANGHAI))
    image = Image.open(io.BytesIO(data))
    image.verify()  # a whole, valid PNG
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("PNG", (WIDTH_PX, HEIGHT_PX))
    # Not blank: the bars are drawn in more than a handful of colours.
    colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50


def test_an_empty_month_still_charts(october: Context) -> None:
    empty = report(october, Period.month(2025, 6, SHANGHAI), AS_OF)
    image = Image.open(io.BytesIO(chart_png(empty, Translator(Locale.EN, SHANGHAI))))
    assert image.size == (WIDTH_PX, HEIGHT_PX)


def test_no_cjk_font_is_a_clear_error(october: Context, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    cjk_font.cache_clear()
    monkeypatch.setenv("YOUHU_CJK_FONT", str(tmp_path / "missing.ttf"))
    try:
        with pytest.raises(NoCjkFont, match="not a file"):
            chart_png(report(october, OCTOBER, AS_OF), Translator(Locale.EN, SHANGHAI))
    finally:
        cjk_font.cache_clear()


def test_the_json_adds_up(october: Context) -> None:
    result = report(october, OCTOBER, AS_OF)
    data = json.loads(json.dumps(report_data(result)))
    assert data["schema"] == "youhu.report/1" and data["district"] == "白云区"
    assert data["total"]["raised"] == len(data["calls"]) == 4
    assert sum(d["figures"]["raised"] for d in data["domains"]) == data["total"]["raised"]
    assert data["domains"][-1]["code"] is None
    ecology = next(d for d in data["departments"] if d["code"] == "ecology")
    assert ecology["deduction"] == 15.0 and ecology["figures"]["referred"] == 1
    assert {c["limits"]["acknowledge"]["late"] for c in data["calls"]} == {True, False}


def test_report_in_the_chat_for_each_role(october: Context) -> None:
    ctx = october
    now = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
    dispatcher = Chat(ctx, "zheng-yu", now=now)
    (reply,) = dispatcher.send("/report 2025-10")
    assert "共发起呼叫4件，已响应办结2件" in reply.text and "问责：1件" in reply.text
    assert len(reply.photos) == 1 and [d.name for d in reply.documents] == [
        "youhu-report-2025-10.xlsx"]
    assert ctx.media.read(reply.photos[0]).startswith(b"\x89PNG")
    head = Chat(ctx, "cai-jun", now=now)  # 生态环境分局's head: the department only
    (mine,) = head.send("/report 2025-10")
    assert "区生态环境分局" in mine.text and "扣分15" in mine.text and not mine.documents
    caller = Chat(ctx, "li-ming", now=now)
    assert "报告仅供" in caller.send("/report 2025-10")[0].text
    assert "用法" in dispatcher.send("/report October")[0].text


def test_report_through_the_bot_api_brings_a_photo_and_a_document(october: Context) -> None:
    ctx = october

    async def scenario(tg: FakeTelegram) -> None:
        async with running(ctx, tg):
            mark = len(tg.sent)
            tg.user_sends_command(DISPATCHER, "/report", "2025-10")
            await tg.wait_for_async(lambda m: m.chat_id == DISPATCHER
                                    and m.method == "sendDocument", since=mark, timeout=30)

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
        sent = tg.messages_to(DISPATCHER)
    photo = next(m for m in sent if m.method == "sendPhoto")
    assert "2025-10" in (photo.caption or "")
    assert isinstance(photo.photos[0], bytes)
    assert Image.open(io.BytesIO(photo.photos[0])).size == (WIDTH_PX, HEIGHT_PX)
    document = next(m for m in sent if m.method == "sendDocument")
    (data,) = document.documents
    assert document.params["document:filename"] == "youhu-report-2025-10.xlsx"
    assert load_workbook(io.BytesIO(data))["汇总"]["B2"].value == "白云区"


def test_the_monthly_report_goes_through_the_outbox_once_with_its_files(
    october: Context,
) -> None:
    ctx = october
    first = local("2025-11-01 09:00")
    assert routine(ctx, first).reports == 3  # 郑宇, 唐可 (the centre), 许青 (supervision)
    assert routine(ctx, first + timedelta(minutes=30)).reports == 0

    async def scenario(tg: FakeTelegram) -> None:
        # The scheduler runs on the test's clock (October's report is sent): on
        # the real one, after 08:30, it would add the real last month's report.
        async with running(ctx, tg, clock=lambda: first + timedelta(hours=1)):
            await tg.wait_until_async(lambda: sum(
                1 for m in tg.sent if m.method == "sendDocument") >= 2, timeout=30)

    with FakeTelegram() as tg:
        asyncio.run(scenario(tg))
        english = tg.messages_to(ADMIN)
        chinese = tg.messages_to(DISPATCHER)
    # (The month's other notices — alerts, the ladder — are delivered too.)
    reports = [m for m in chinese if "2025-10报告" in (m.caption or m.text or "")]
    assert [m.method for m in reports] == ["sendPhoto"]  # once, the chart with the summary
    assert [m.params["document:filename"] for m in chinese
            if m.documents] == ["youhu-report-2025-10.xlsx"]
    assert any("The report for 2025-10" in (m.caption or "") for m in english)
    (english_book,) = [m.documents[0] for m in english if m.documents]
    assert load_workbook(io.BytesIO(english_book)).sheetnames[0] == "Summary"


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom() as fake:
        yield fake


def test_report_over_wecom_brings_an_image_and_a_file(october: Context, wecom: FakeWeCom,
                                                      unused_port: int) -> None:
    ctx = october
    with Session(ctx.engine) as session:
        dispatcher = session.exec(select(Member).where(Member.code == "zheng-yu")).one()
        accounts.bind(session, dispatcher.id or 0, "wecom", "ZhengYu")
        session.commit()

    async def scenario() -> None:
        # On the test's clock, before the day's routine (08:30): on the real one,
        # after 08:30 the scheduler would add the real last month's report.
        clock = WeComClock()
        clock.offset = local("2025-10-31 08:00") - datetime.now(UTC)
        async with wecom_running(ctx, wecom, unused_port, clock=clock) as h:
            mark = h.mark()
            await h.text("ZhengYu", "/report 2025-10")
            await h.answer("ZhengYu", mark, lambda s: s.msgtype == "file")

    asyncio.run(scenario())
    sent = wecom.sent_to("ZhengYu")  # (with the month's notices, delivered meanwhile)
    (document,) = [s for s in sent if s.msgtype == "file"]
    assert any("2025-10报告" in (s.content or "") for s in sent if s.msgtype == "text")
    charts = [wecom.media[s.media_id] for s in sent if s.msgtype == "image" and s.media_id
              and wecom.media[s.media_id].filename == "photo.png"]
    assert [Image.open(io.BytesIO(c.data)).size for c in charts] == [(WIDTH_PX, HEIGHT_PX)]
    assert document.media_id is not None
    workbook = wecom.media[document.media_id]
    assert (workbook.type, workbook.filename) == ("file", "youhu-report-2025-10.xlsx")
    assert load_workbook(io.BytesIO(workbook.data))["汇总"]["B2"].value == "白云区"

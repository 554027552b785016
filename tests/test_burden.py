"""The form-burden watch driven through the conversations (the console
channel) on the example district: a department's request to three towns
answered field by field, a second department shown the earlier data and
reusing it, the same request sent anyway and counted as a duplicate and out
of plan, the command centre approving it, a town answering "no change since
last time", gentle reminders from the sweep, and the report's figures, sheet
and chart read back. Plus the plan file, the rules' edges and bad input."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from PIL import Image
from sqlmodel import Session, col, select

from bot.exports.burden import burden_files, chart_png, workbook_bytes
from handlers.i18n import Translator
from models import (
    DataRequest,
    DataRequestStatus,
    DataRequestTown,
    Locale,
    Member,
    OutboxMessage,
    PlanFlag,
    PlanItem,
    Unit,
)
from tests.conftest import PNG
from tests.test_handlers_chat import Chat, inbox, member_id
from workflows import burden
from workflows.context import Context
from workflows.directory import load
from workflows.errors import InvalidInput, NotAllowed
from workflows.orgfile import OrgFileError, read_org
from workflows.planfile import read_plan
from workflows.stats import Period
from workflows.sweep import sweep

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MONDAY = datetime(2025, 10, 13, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
TOWNS = "钟落潭镇、江高镇、云城街"


@pytest.fixture
def district(ctx: Context) -> Context:
    org = read_org(EXAMPLES / "org.yaml")
    load(ctx.engine, org, None, MONDAY)
    burden.load_plan(ctx, read_plan(EXAMPLES / "plan.yaml", org.department_codes()))
    return replace(ctx, burden_exports=burden_files)


def requests(ctx: Context) -> list[DataRequest]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(DataRequest).order_by(col(DataRequest.id))))


def targets(ctx: Context, request_id: int) -> list[DataRequestTown]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(DataRequestTown).where(
            DataRequestTown.request_id == request_id).order_by(col(DataRequestTown.id))))


def templates(ctx: Context, code: str) -> list[str]:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        return [m.template for m in session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == member.id).order_by(col(OutboxMessage.id)))]


def draft(chat: Chat, title: str, fields: list[tuple[str, str, str]], towns: str | None,
          due: str, plan: str) -> None:
    """Compose a request up to the plan question's answer."""
    chat.send("/request")
    chat.send(title)
    for name, kind, choices in fields:
        chat.send(name)
        chat.press(kind)
        if choices:
            chat.send(choices)
    chat.press("完成")
    if towns is None:
        chat.press("全部镇街")
    else:
        chat.send(towns)
    chat.press(due)
    chat.press(plan)


def answer(chat: Chat, notice_text: str, *inputs: str, label: str = "填报") -> None:
    """Press Answer on the latest data request notice and give `inputs`
    (typed, or a button label prefixed with '>')."""
    replies = [r for r in inbox(chat.ctx, chat.sender) if notice_text in r.text]
    chat.press(label, replies[-1:])
    for given in inputs:
        if given.startswith(">"):
            chat.press(given[1:])
        else:
            chat.send(given)


def test_a_request_to_three_towns_reused_duplicated_flagged_and_reported(
        district: Context) -> None:
    ctx = district
    housing = Chat(ctx, "sun-hao", now=MONDAY)
    draft(housing, "2025年农村自建房安全排查统计",
          [("自建房栋数", "数字", ""), ("排查完成日期", "日期", ""),
           ("整改情况", "选项", "已整改，整改中，未整改")], TOWNS, "3", "农村自建房安全排查统计")
    assert "请核对数据报送" in housing.text and "钟落潭镇、江高镇、云城街" in housing.text
    assert requests(ctx) == []
    housing.press("发送数据报送")
    [first] = requests(ctx)
    assert first.plan_flag is PlanFlag.IN_PLAN and first.duplicate_of is None
    assert first.number in housing.text and "已发送至3个镇街" in housing.text
    # Three working days from Monday 13 October: the close of Thursday the 16th.
    assert first.due_at == datetime(2025, 10, 16, 10, 0, tzinfo=UTC)
    assert len(targets(ctx, first.id or 0)) == 3
    assert templates(ctx, "zhang-wei") == ["data_request"]
    assert templates(ctx, "xu-qing") == []  # in the plan: nothing for the supervision office

    # 钟落潭镇 answers field by field, with a bad number and a bad date on the way.
    town = Chat(ctx, "zhang-wei", now=MONDAY + timedelta(hours=1))
    answer(town, first.number, "很多")
    assert "请填写数字" in town.text
    town.send("120")
    town.send("10月10日")
    assert "YYYY-MM-DD" in town.text
    town.send("2025-10-10")
    town.press("已整改")
    assert "请核对" in town.text and "自建房栋数: 120" in town.text
    town.press("提交")
    assert "已报送区住建局" in town.text
    answered = targets(ctx, first.id or 0)[0]
    assert answered.values == {"自建房栋数": 120, "排查完成日期": "2025-10-10",
                               "整改情况": "已整改"}
    assert answered.reused_from is None
    # A second press on the same Answer button is refused; the answer is intact.
    answer(town, first.number)
    assert "已填报" in town.text and "未做任何更改" in town.text
    assert targets(ctx, first.id or 0)[0].values["自建房栋数"] == 120
    assert "data_answered" in templates(ctx, "sun-hao")
    # Traditional Chinese for 云城街's cadre.
    street = Chat(ctx, "chen-xiaohong", now=MONDAY + timedelta(hours=2))
    answer(street, first.number, "80", "2025-10-11", ">整改中", label="填報")
    assert "請核對" in street.text
    street.press("提交")

    # The water department drafts the same data: it is shown with the answers and reused.
    water = Chat(ctx, "he-wenbin", now=MONDAY + timedelta(days=1))
    draft(water, "农村自建房安全排查情况", [("自建房数量", "数字", ""), ("联系人", "文字", "")],
          TOWNS, "2", "不在计划内")
    assert "已上报" in water.text or "已报送" in water.text
    assert first.number in water.text and "区住建局" in water.text
    assert "钟落潭镇" in water.text and "120" in water.text
    water.press(f"沿用 {first.number}")
    assert "未向镇街发送" in water.text and "120" in water.text
    reused = requests(ctx)[-1]
    assert reused.status is DataRequestStatus.REUSED and reused.reuse_of == first.id
    assert targets(ctx, reused.id or 0) == []

    # Sent anyway: a duplicate, out of plan, flagged to the supervision office at once.
    draft(water, "农村自建房安全排查情况", [("自建房数量", "数字", ""), ("联系人", "文字", "")],
          TOWNS, "2", "不在计划内")
    water.press("仍然发送")
    duplicate = requests(ctx)[-1]
    assert duplicate.duplicate_of == first.id and duplicate.plan_flag is PlanFlag.NOT_IN_PLAN
    assert "计划外" in water.text and "重复" in water.text
    assert templates(ctx, "xu-qing") == ["data_request_flagged"]
    flag = inbox(ctx, "zheng-yu")[-1]
    assert "计划外" in flag.text and duplicate.number in flag.text
    dispatcher = Chat(ctx, "zheng-yu", now=MONDAY + timedelta(days=1, hours=1))
    dispatcher.press("同意", [flag])
    assert "已批准" in dispatcher.text
    dispatcher.press("同意", [flag])  # pressed twice: refused, nothing changes
    assert "未做任何更改" in dispatcher.text
    assert "data_request_approved" in templates(ctx, "he-wenbin")
    # The supervisor reads the flag but has no Approve button.
    assert all(not r.buttons for r in inbox(ctx, "xu-qing"))

    # 钟落潭镇: no change since last time — the number copied, only the new field asked.
    town.now = MONDAY + timedelta(days=1, hours=2)
    answer(town, duplicate.number)
    assert "自建房栋数: 120" in town.text or "自建房数量: 120" in town.text
    town.press("与上次相同")
    assert "联系人" in town.text
    town.send("张伟 13800000000")
    assert "沿用" in town.text
    town.press("提交")
    again = targets(ctx, duplicate.id or 0)[0]
    assert again.values == {"自建房数量": 120, "联系人": "张伟 13800000000"}
    assert again.reused_from == answered.id

    # Reminders: only the towns that have not answered, gently, once per step.
    later = MONDAY + timedelta(days=10)
    first_sweep = sweep(ctx, later)
    assert first_sweep.data_reminders == 3  # 江高镇 for both requests, 云城街 for the duplicate
    assert sweep(ctx, later).data_reminders == 0
    assert "data_reminder" in templates(ctx, "liang-zhiqiang")
    assert "data_reminder" not in templates(ctx, "zhang-wei")
    reminder = [r for r in inbox(ctx, "liang-zhiqiang") if "提醒" in r.text][-1]
    assert "逾期" in reminder.text or "截止" in reminder.text
    assert not any(t in ("nudge",) for t in templates(ctx, "liang-zhiqiang"))

    # The report's figures read back.
    period = Period.month(2025, 10, ctx.rules.tz)
    result = burden.burden_report(ctx, period)
    rows = {d.department: d for d in result.departments}
    assert (rows["区住建局"].sent, rows["区住建局"].fields_asked, rows["区住建局"].towns_asked,
            rows["区住建局"].town_minutes) == (1, 3, 3, 90)
    water_row = rows["区水务局"]
    assert (water_row.sent, water_row.requests_reused, water_row.duplicates,
            water_row.out_of_plan, water_row.out_of_plan_approved,
            water_row.answers_reused) == (1, 1, 1, 1, 1, 1)
    assert result.total.sent == 2 and result.total.town_minutes == 90 + 2 * 3 * 10
    towns = {t.town: t for t in result.towns}
    zhongluotan = towns["钟落潭镇"]
    assert (zhongluotan.forms, zhongluotan.answered, zhongluotan.reused) == (2, 2, 1)
    assert (towns["江高镇"].forms, towns["江高镇"].answered) == (2, 0)
    assert burden.burden_deduction(water_row, 2.0, 1.0) == 1.0  # approved: duplicate only

    supervisor = Chat(ctx, "xu-qing", now=later)
    supervisor.send("/burden 2025-10")
    assert "区水务局" in supervisor.text and "重复1件" in supervisor.text
    [chart] = supervisor.replies[0].photos
    assert Image.open(io.BytesIO(ctx.media.read(chart))).format == "PNG"
    [document] = supervisor.replies[0].documents
    assert document.name == "youhu-burden-2025-10.xlsx"
    sheet = load_workbook(io.BytesIO(workbook_bytes(result, Translator(Locale.EN, ctx.rules.tz)
                                                    ))).active
    assert sheet is not None
    table = list(sheet.iter_rows(min_row=2, values_only=True))
    assert table[0][:2] == ("Department", "Requests sent")
    by_name = {row[0]: row for row in table[1:]}
    assert by_name["区水务局"][1:9] == (1, 2, 3, 1, 1, 1, 1, 1)
    assert by_name["Total"][1] == 2


def test_over_count_is_out_of_plan_and_reuse_needs_a_similar_request(district: Context) -> None:
    ctx = district
    liaison = member_id(ctx, "han-xue")  # 区民政局: its data item is approved twice a year
    with Session(ctx.engine) as session:
        item = session.exec(select(PlanItem).where(PlanItem.code == "elderly-care")).one()
        town = session.exec(select(Unit).where(Unit.code == "jianggao")).one()
    fields = [burden.clean_field("特困人员人数", "number")]
    flags = []
    for n in range(3):
        request = burden.send_request(
            ctx, liaison, MONDAY + timedelta(days=n),
            burden.Draft(f"特困人员供养情况统计第{n + 1}期", fields, [town.id or 0], 2,
                         item.id))
        flags.append(request.plan_flag)
    assert flags == [PlanFlag.IN_PLAN, PlanFlag.IN_PLAN, PlanFlag.OVER_COUNT]
    # Only the first of these is not a duplicate.
    assert [r.duplicate_of is None for r in requests(ctx)] == [True, False, False]
    unrelated = burden.Draft("耕地保护和粮食生产情况", [burden.clean_field("耕地面积", "number")])
    with pytest.raises(InvalidInput):
        burden.reuse_request(ctx, liaison, MONDAY + timedelta(days=5), unrelated,
                             requests(ctx)[0].id or 0)
    # Another department's plan item cannot be named.
    water_liaison = member_id(ctx, "he-wenbin")
    with pytest.raises(InvalidInput):
        burden.send_request(ctx, water_liaison, MONDAY, burden.Draft(
            "x", fields, [], 2, item.id))


def test_who_may_do_what(district: Context) -> None:
    ctx = district
    caller = Chat(ctx, "zhang-wei", now=MONDAY)
    caller.send("/request")
    assert "只有部门联络员或负责人" in caller.text
    caller.send("/burden")
    assert "督查室" in caller.text and "各部门" in caller.text
    caller.send("/answer")
    assert "没有待填报" in caller.text
    dispatcher = Chat(ctx, "zheng-yu", now=MONDAY)
    dispatcher.send("/request")
    assert "只有部门联络员或负责人" in dispatcher.text
    # A cadre of a town not asked cannot answer.
    sun = member_id(ctx, "sun-hao")
    with Session(ctx.engine) as session:
        jianggao = session.exec(select(Unit).where(Unit.code == "jianggao")).one()
    request = burden.send_request(ctx, sun, MONDAY, burden.Draft(
        "危房改造情况", [burden.clean_field("户数", "number")], [jianggao.id or 0], 2))
    caller.data(f"d:ans:{request.id}")
    assert "不是发给您所在镇街的。未做任何更改" in caller.text
    with pytest.raises(NotAllowed):
        burden.approve_out_of_plan(ctx, request.id or 0, sun, MONDAY)
    caller.data("d:apr:99999")
    assert "未做任何更改" in caller.text


def test_bad_input_while_composing_keeps_the_draft(district: Context) -> None:
    ctx = district
    chat = Chat(ctx, "sun-hao", now=MONDAY)
    chat.send("/request")
    chat.send("   ")
    assert "标题为空" in chat.text
    chat.send("x" * 201)
    assert "标题太长" in chat.text
    chat.send("危房改造")
    chat.send("户数")
    chat.send("整数")  # typed, and not the label of a button
    assert "请点击按钮作答" in chat.text
    chat.press("选项")
    chat.send("只有一个")
    assert "2至10个选项" in chat.text
    chat.send("是，否")
    chat.send("户数")
    assert "两个字段同名" in chat.text
    chat.photo(PNG)
    assert "请以文字回复" in chat.text
    chat.press("完成")
    chat.send("不存在镇")
    assert "没有名为不存在镇的镇街" in chat.text
    chat.send("江高镇")
    chat.send("99")
    assert "1至30个工作日" in chat.text
    chat.send("2")
    chat.send("/help")  # a command in the middle keeps the draft
    assert "已保留" in chat.text
    chat.press("不在计划内")
    assert "不在本部门计划内" in chat.text
    summary = chat.replies
    chat.press("发送数据报送")
    [request] = requests(ctx)
    assert request.fields == [{"name": "户数", "kind": "choice", "choices": ["是", "否"]}]
    assert request.plan_flag is PlanFlag.NOT_IN_PLAN
    chat.press("发送数据报送", summary)  # the old summary's button again
    assert "已结束" in chat.text or "未做任何更改" in chat.text
    assert len(requests(ctx)) == 1


def test_every_burden_notice_renders_in_every_language(district: Context) -> None:
    ctx = district
    sun = member_id(ctx, "sun-hao")
    request = burden.send_request(ctx, sun, MONDAY, burden.Draft(
        "危房改造情况", [burden.clean_field("户数", "number"), burden.clean_field("照片", "photo")],
        [], 2))
    town = Chat(ctx, "zhang-wei", now=MONDAY)
    town.data(f"d:ans:{request.id}")
    town.send("5")
    town.send("not a photo")
    assert "请发送照片" in town.text
    town.photo(PNG)
    town.press("提交")
    sweep(ctx, MONDAY + timedelta(days=5))
    from workflows.routine import routine

    routine(ctx, datetime(2025, 11, 1, 2, 0, tzinfo=UTC))
    from handlers.notices import render

    with Session(ctx.engine) as session:
        messages = list(session.exec(select(OutboxMessage).where(
            col(OutboxMessage.template).in_(["data_request", "data_reminder",
                                             "data_request_flagged", "data_answered",
                                             "burden_report"]))))
        seen = {m.template for m in messages}
        assert seen == {"data_request", "data_reminder", "data_request_flagged",
                        "data_answered", "burden_report"}
        for message in messages:
            member = session.get(Member, message.member_id)
            assert member is not None
            for locale in Locale:
                member.locale = locale
                replies = render(ctx, member, message.template, message.params, None)
                assert replies and all(r.text for r in replies)
                assert "Notice about" not in replies[0].text
    answer_notice = [r for r in inbox(ctx, "sun-hao") if "户数" in r.text][-1]
    assert len(answer_notice.photos) == 1


def test_the_plan_file_is_checked_completely(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text("year: 2025\ndepartments:\n  housing:\n"
                   "    - {code: a, name: 甲, kind: data_request, count: 2}\n"
                   "    - {code: a, name: 乙, kind: inspection, count: 1}\n"
                   "  nowhere:\n    - {code: b, name: 丙, kind: assessment, count: 1}\n",
                   encoding="utf-8")
    with pytest.raises(OrgFileError) as raised:
        read_plan(bad, {"housing"})
    text = str(raised.value)
    assert "line 5: departments.housing[1].code: duplicate plan item code 'a'" in text
    assert "line 6: departments.nowhere: unknown department 'nowhere'" in text
    bad.write_text("year: 2025\ndepartments:\n  housing:\n"
                   "    - {code: a, name: 甲, kind: survey, count: 0}\n", encoding="utf-8")
    with pytest.raises(OrgFileError) as raised:
        read_plan(bad, {"housing"})
    assert "kind" in str(raised.value) and "count" in str(raised.value)


def test_youhu_init_with_a_plan(tmp_path: Path) -> None:
    env = {**os.environ, "YOUHU_DATABASE__URL": f"sqlite:///{tmp_path / 'youhu.db'}",
           "YOUHU_MEDIA__DIR": str(tmp_path / "media")}
    env.pop("YOUHU_CONFIG", None)

    def youhu(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120, check=False)

    done = youhu("init", "--org", "examples/org.yaml", "--plan", "examples/plan.yaml")
    assert done.returncode == 0, done.stderr
    assert "loaded 10 plan items for 2025" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("year: 2026\ndepartments:\n  nowhere:\n"
                   "    - {code: b, name: 丙, kind: assessment, count: 1}\n", encoding="utf-8")
    done = youhu("init", "--plan", str(bad))
    assert done.returncode == 1 and "unknown department 'nowhere'" in done.stderr
    done = youhu("burden", "--period", "2025-10", "--xlsx", str(tmp_path / "b.xlsx"),
                 "--chart", str(tmp_path / "b.png"), "--locale", "en")
    assert done.returncode == 0, done.stderr
    assert "No data requests in this period." in done.stdout
    assert load_workbook(tmp_path / "b.xlsx").active is not None
    assert Image.open(tmp_path / "b.png").format == "PNG"


def test_chart_and_sheet_in_each_language(district: Context) -> None:
    ctx = district
    burden.send_request(ctx, member_id(ctx, "sun-hao"), MONDAY, burden.Draft(
        "危房改造情况", [burden.clean_field("户数", "number")], [], 2))
    result = burden.burden_report(ctx, Period.month(2025, 10, ctx.rules.tz))
    for locale in Locale:
        t = Translator(locale, ctx.rules.tz)
        assert Image.open(io.BytesIO(chart_png(result, t))).format == "PNG"
        book = load_workbook(io.BytesIO(workbook_bytes(result, t)))
        assert len(book.sheetnames) == 2
        water = next(d.department_id for d in result.departments if d.sent)
        own = load_workbook(io.BytesIO(workbook_bytes(result, t, only_department=water)))
        assert len(own.sheetnames) == 1  # a department's reader: its own line, no towns
        assert own.active is not None and own.active.max_row == 3


def test_a_town_answers_with_the_excel_sheet_of_the_request(district: Context) -> None:
    ctx = district
    sun = member_id(ctx, "sun-hao")
    request = burden.send_request(ctx, sun, MONDAY, burden.Draft(
        "危房改造情况", [burden.clean_field("户数", "number"),
                    burden.clean_field("完成日期", "date"),
                    burden.clean_field("现场照片", "photo")], [], 2))
    notice = [r for r in inbox(ctx, "zhang-wei") if request.number in r.text][-1]
    [document] = notice.documents
    assert document.name == f"{request.number}.xlsx"
    book = load_workbook(io.BytesIO(ctx.media.read(document.sha256)))
    sheet = book.active
    assert sheet is not None
    assert [c.value for c in sheet[2]] == ["户数", "完成日期"]  # photos are asked in chat
    sheet["A3"], sheet["B3"] = 7, "2025-10-12"
    filled = io.BytesIO()
    book.save(filled)

    town = Chat(ctx, "zhang-wei", now=MONDAY + timedelta(hours=1))
    town.press("填报", [notice])
    town.photo(b"PK\x03\x04 not really a workbook")
    assert "不是" in town.text and request.number in town.text
    town.photo(filled.getvalue())
    assert "现场照片" in town.text  # what the sheet cannot hold is asked next
    town.photo(PNG)
    town.press("提交")
    [answer] = [t for t in targets(ctx, request.id or 0) if t.answered_at is not None]
    assert answer.values["户数"] == 7 and answer.values["完成日期"] == "2025-10-12"
    assert len(answer.values["现场照片"]) == 64


def test_out_of_plan_and_duplicate_requests_weigh_on_the_score_when_configured(
        district: Context) -> None:
    """Off by default; with `[burden] deduct_out_of_plan` / `deduct_duplicate`
    set, the department's score in the call report loses those points."""
    from dataclasses import replace

    from workflows.stats import report

    ctx = district
    liaison = member_id(ctx, "han-xue")  # 区民政局: its data item is approved twice a year
    with Session(ctx.engine) as session:
        item = session.exec(select(PlanItem).where(PlanItem.code == "elderly-care")).one()
        town = session.exec(select(Unit).where(Unit.code == "jianggao")).one()
    fields = [burden.clean_field("特困人员人数", "number")]
    for n in range(3):  # the third is over the plan's count; the 2nd and 3rd are duplicates
        burden.send_request(ctx, liaison, MONDAY + timedelta(days=n), burden.Draft(
            f"特困人员供养情况统计第{n + 1}期", fields, [town.id or 0], 2, item.id))
    period = Period.parse("2025-10", ctx.rules.tz)
    now = MONDAY + timedelta(days=5)

    def civil_affairs(c: Context) -> tuple[float, float | None]:
        entry = next(d for d in report(c, period, now).departments
                     if d.department_code == "civil-affairs")
        return entry.deduction, entry.score

    assert civil_affairs(ctx)[0] == 0.0  # off by default
    rules = replace(ctx.rules, burden=replace(ctx.rules.burden, deduct_out_of_plan=3.0,
                                              deduct_duplicate=1.0))
    assert burden.burden_deductions(replace(ctx, rules=rules), period) == {
        "civil-affairs": 3.0 + 2 * 1.0}
    assert civil_affairs(replace(ctx, rules=rules))[0] == 5.0

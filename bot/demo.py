"""`youhu demo`: a month of calls in Baiyun district, played on a temporary
SQLite database with a simulated clock, then the month's report.

The story follows the brief: a blocked drain reported at 16:50 the day before
National Day and fixed after the holiday, a joint call, an extension, a
rejected fix, an emergency at night, a call the dispatcher routes, one that is
withdrawn, one the caller never confirms (auto-closed) — and one that nobody
acknowledges, whose reminders and escalation steps are computed by the ladder.
Around them, ordinary calls across the three domains. No network is used.
"""

from __future__ import annotations

import heapq
import random
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from sqlmodel import Session, select

from bot.app import build_rules
from bot.exports.chart import NoCjkFont, chart_png
from bot.exports.xlsx import workbook_bytes
from bot.report import render_report
from bot.settings import Settings
from handlers.i18n import N_, Translator
from handlers.labels import LIMIT, STEP
from models import (
    Call,
    CatalogItem,
    Domain,
    ItemAssistingDepartment,
    Locale,
    MediaStore,
    Member,
    RatingLevel,
    Role,
    Unit,
    make_engine,
    upgrade_to_head,
)
from workflows import calls, queries
from workflows.context import Context
from workflows.deadlines import after_working_days, limits_of
from workflows.directory import load
from workflows.escalation import due_steps
from workflows.orgfile import read_catalog, read_org
from workflows.photos import Photo
from workflows.stats import Period, report
from workflows.sweep import sweep
from workflows.views import CallView

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The ladder's rungs as the district calls them (the narrative is English; the
# Chinese names are kept beside it, as the seed uses them).
STEP_ZH = {"reminder_halfway": "提醒", "reminder_before": "提醒", "urge": "催办",
           "supervise": "督办", "accountability": "问责"}


def tiny_png(seed: int) -> bytes:
    """A valid 8×8 PNG of one colour, different for each seed (a stand-in photo)."""
    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    raw = b"".join(b"\x00" + colour * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass(order=True)
class _Scheduled:
    at: datetime
    seq: int
    action: Callable[[], object] = field(compare=False)


class Story:
    """A simulated clock: actions run in time order, and may schedule more."""

    def __init__(self, ctx: Context, t: Translator) -> None:
        self.ctx = ctx
        self.t = t  # the narrative's language
        self.queue: list[_Scheduled] = []
        self.seq = 0
        self.now: datetime | None = None
        self.members: dict[str, Member] = {}
        self.units: dict[int, Unit] = {}
        with Session(ctx.engine) as session:
            for member in session.exec(select(Member)):
                self.members[member.code] = member
            for unit in session.exec(select(Unit)):
                self.units[unit.id or 0] = unit
            self.items = {i.code: i for i in session.exec(select(CatalogItem))}
            self.joint = {a.item_id for a in session.exec(select(ItemAssistingDepartment))}
            self.domains = {d.id: d for d in session.exec(select(Domain))}
        self.photo_seed = 0

    def at(self, when: datetime, action: Callable[[], object]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, _Scheduled(when, self.seq, action))

    def run(self) -> None:
        while self.queue:
            step = heapq.heappop(self.queue)
            self.now = step.at
            step.action()

    def local(self, when: datetime) -> str:
        return when.astimezone(self.ctx.rules.tz).strftime("%m-%d %H:%M")

    def say(self, when: datetime, text: str) -> None:
        print(f"  {self.local(when)}  {text}")

    def id(self, code: str) -> int:
        return self.members[code].id or 0

    def name(self, code: str) -> str:
        member = self.members[code]
        return f"{member.name} ({self.units[member.unit_id].name})"

    def photo(self) -> Photo:
        self.photo_seed += 1
        return Photo(tiny_png(self.photo_seed))

    def liaison_of(self, department_id: int) -> str:
        return next(code for code, m in self.members.items()
                    if m.role is Role.LIAISON and m.unit_id == department_id)


def _local(settings: Settings, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=settings.tz)


def _ordinary(story: Story, settings: Settings, rng: random.Random) -> None:
    """Ordinary calls: raised in office hours on working days, mostly handled on time."""
    callers = [c for c, m in story.members.items() if m.role is Role.CALLER]
    items = sorted((i for i in story.items.values() if i.id not in story.joint),
                   key=lambda i: i.code)
    day = _local(settings, "2025-10-09 00:00")
    end = _local(settings, "2025-10-28 00:00")
    while day < end:
        if story.ctx.rules.calendar.is_working_day(day.date()):
            for _ in range(rng.randint(1, 3)):
                raised = day + timedelta(hours=rng.randint(8, 16), minutes=rng.randint(0, 59))
                story.at(raised, partial(_ordinary_call, story, rng, rng.choice(callers),
                                         rng.choice(items), raised))
        day += timedelta(days=1)


def _ordinary_call(
    story: Story, rng: random.Random, caller: str, item: CatalogItem, now: datetime
) -> None:
    """Raise one ordinary call and schedule how its department handles it."""
    ctx = story.ctx
    call = calls.raise_call(ctx, story.id(caller), now, f"{item.name}：请尽快处理",
                            item_code=item.code, photos=[story.photo()])
    assert call.acknowledge_due and call.respond_due and call.resolve_due
    cid, liaison = call.id or 0, story.id(story.liaison_of(item.lead_department_id))
    late = rng.random() < 0.2
    if late:
        ack_at = call.acknowledge_due + timedelta(hours=3)
    else:
        ack_at = now + (call.acknowledge_due - now) * rng.uniform(0.1, 0.8)
    respond_at = max(ack_at, now + (call.respond_due - now) * rng.uniform(0.5, 0.9))
    respond_at += timedelta(seconds=1)
    resolve_at = max(respond_at, now + (call.resolve_due - now) * rng.uniform(0.4, 0.95))
    if rng.random() < 0.12:
        resolve_at = call.resolve_due + timedelta(hours=20)
    resolve_at += timedelta(seconds=1)
    on_time = not late and resolve_at <= call.resolve_due
    level = rng.choices(list(RatingLevel), weights=[7, 2, 1] if on_time else [1, 3, 3])[0]
    confirm_at = resolve_at + timedelta(hours=rng.randint(1, 20))
    story.at(ack_at, lambda: calls.acknowledge(ctx, cid, liaison, ack_at))
    story.at(respond_at, lambda: calls.respond(ctx, cid, liaison, respond_at, "已安排人员处理"))
    story.at(resolve_at, lambda: calls.resolve(ctx, cid, liaison, resolve_at, "已处理完毕",
                                               [story.photo()]))
    story.at(confirm_at, lambda: calls.confirm(ctx, cid, story.id(caller), confirm_at, level))


def _sweeps(story: Story, settings: Settings) -> None:
    """The scheduler's sweep, every hour of the month (it runs every 30 s in
    production; nothing falls due between the hours here): it records the
    ladder's steps as they fall due, so supervision orders and accountability
    referrals are in the event log — and in the report — as they would be."""
    moment = _local(settings, "2025-09-30 00:00")
    end = _local(settings, "2025-11-01 00:00")
    while moment <= end:
        story.at(moment, partial(sweep, story.ctx, moment))
        moment += timedelta(hours=1)


def _special(story: Story, settings: Settings) -> int:
    """The told stories; returns the id of the call nobody acknowledges."""
    ctx = story.ctx

    def t(text: str) -> datetime:
        return _local(settings, text)

    m = story.id

    def told(when: str, text: str, action: Callable[[], object]) -> None:
        at = t(when)

        def run() -> None:
            result = action()
            number = f" {result.number}" if isinstance(result, CallView) else ""
            story.say(at, story.t._(text).replace("{n}", number.strip()))

        story.at(at, run)

    ids: dict[str, int] = {}

    def raised(key: str, call: CallView) -> CallView:
        ids[key] = call.id
        return call

    # 1. The blocked drain before National Day (the brief's story).
    told("2025-09-30 16:50", N_("李明 (良田村) raises {n}: blocked drain, with a photo — "
         "1 working day to acknowledge, due after the holiday"),
         lambda: raised("drain", calls.raise_call(
             ctx, m("li-ming"), t("2025-09-30 16:50"), "村口排水管堵塞，雨后积水严重",
             item_code="drainage-blockage", location_text="良田村村口",
             latitude=23.392, longitude=113.41, photos=[story.photo()])))
    told("2025-10-09 09:12", N_("何文斌 (区水务局) acknowledges {n} on the first working day "
         "— on time"),
         lambda: calls.acknowledge(ctx, ids["drain"], m("he-wenbin"), t("2025-10-09 09:12")))
    told("2025-10-09 10:30", N_("何文斌 responds to {n}: a dredging team is on its way"),
         lambda: calls.respond(ctx, ids["drain"], m("he-wenbin"), t("2025-10-09 10:30"),
                               "已派疏通班组"))
    told("2025-10-10 15:05", N_("何文斌 resolves {n} with an after photo"),
         lambda: calls.resolve(ctx, ids["drain"], m("he-wenbin"), t("2025-10-10 15:05"),
                               "管道已疏通", [story.photo()]))
    told("2025-10-10 17:40", N_("李明 confirms {n} and rates it 满意"),
         lambda: calls.confirm(ctx, ids["drain"], m("li-ming"), t("2025-10-10 17:40"),
                               RatingLevel.SATISFIED, "处理及时"))

    # 2. A joint call: urban management leads, planning assists.
    told("2025-10-13 09:20", N_("黄建国 (蚌湖村) raises {n}: illegal construction — a joint call "
         "to 城管执法局 and 规划和自然资源分局"),
         lambda: raised("joint", calls.raise_call(
             ctx, m("huang-jianguo"), t("2025-10-13 09:20"), "农田上有人违法加建两层砖房",
             item_code="illegal-construction", photos=[story.photo(), story.photo()])))
    told("2025-10-13 11:00", N_("林静 (规划分局) acknowledges {n} as the assisting department"),
         lambda: calls.acknowledge(ctx, ids["joint"], m("lin-jing"), t("2025-10-13 11:00")))
    told("2025-10-13 14:00", N_("刘洋 (城管执法局) acknowledges {n} as the lead"),
         lambda: calls.acknowledge(ctx, ids["joint"], m("liu-yang"), t("2025-10-13 14:00")))
    told("2025-10-14 10:00", N_("刘洋 responds to {n}: stop-work order issued"),
         lambda: calls.respond(ctx, ids["joint"], m("liu-yang"), t("2025-10-14 10:00"),
                               "已下达停工通知"))
    told("2025-10-22 16:00", N_("刘洋 resolves {n}: the extension is demolished"),
         lambda: calls.resolve(ctx, ids["joint"], m("liu-yang"), t("2025-10-22 16:00"),
                               "违建已拆除", [story.photo()]))
    told("2025-10-23 09:00", N_("黄建国 confirms {n}: 满意"),
         lambda: calls.confirm(ctx, ids["joint"], m("huang-jianguo"), t("2025-10-23 09:00"),
                               RatingLevel.SATISFIED))

    # 3. An extension.
    told("2025-10-14 10:10", N_("梁志强 (江高镇) raises {n}: river remediation blocked by silt"),
         lambda: raised("ext", calls.raise_call(
             ctx, m("liang-zhiqiang"), t("2025-10-14 10:10"), "河涌清淤进度滞后，影响排涝",
             item_code="river-remediation", photos=[story.photo()])))
    told("2025-10-14 15:00", N_("何文斌 acknowledges {n}"),
         lambda: calls.acknowledge(ctx, ids["ext"], m("he-wenbin"), t("2025-10-14 15:00")))
    told("2025-10-15 09:00", N_("何文斌 responds to {n}"),
         lambda: calls.respond(ctx, ids["ext"], m("he-wenbin"), t("2025-10-15 09:00"),
                               "已制定清淤方案"))
    extension: dict[str, int] = {}

    def ask() -> CallView:
        request = calls.request_extension(ctx, ids["ext"], m("he-wenbin"),
                                          t("2025-10-27 11:00"), 3, "清淤船检修，需延期3个工作日")
        extension["id"] = request.id
        return request.call

    told("2025-10-27 11:00", N_("何文斌 asks for 3 more working days on {n}"), ask)
    told("2025-10-27 14:00", N_("郑宇 (指挥调度中心) grants the extension on {n}"),
         lambda: calls.decide_request(ctx, extension["id"], m("zheng-yu"),
                                      t("2025-10-27 14:00"), approve=True))
    told("2025-10-31 11:00", N_("何文斌 resolves {n} within the extended deadline"),
         lambda: calls.resolve(ctx, ids["ext"], m("he-wenbin"), t("2025-10-31 11:00"),
                               "清淤完成", [story.photo()]))
    told("2025-10-31 16:00", N_("梁志强 confirms {n}: 基本满意"),
         lambda: calls.confirm(ctx, ids["ext"], m("liang-zhiqiang"), t("2025-10-31 16:00"),
                               RatingLevel.MOSTLY_SATISFIED))

    # 4. A rejected fix.
    told("2025-10-15 08:40", N_("陈晓红 (云城街) raises {n}: stalls blocking the pavement"),
         lambda: raised("reject", calls.raise_call(
             ctx, m("chen-xiaohong"), t("2025-10-15 08:40"), "人行道被摊档占用",
             item_code="street-occupation", photos=[story.photo()])))
    told("2025-10-15 10:00", N_("刘洋 acknowledges {n}"),
         lambda: calls.acknowledge(ctx, ids["reject"], m("liu-yang"), t("2025-10-15 10:00")))
    told("2025-10-15 10:30", N_("刘洋 responds to {n}"),
         lambda: calls.respond(ctx, ids["reject"], m("liu-yang"), t("2025-10-15 10:30"),
                               "已安排巡查"))
    told("2025-10-16 11:00", N_("刘洋 resolves {n}"),
         lambda: calls.resolve(ctx, ids["reject"], m("liu-yang"), t("2025-10-16 11:00"),
                               "已劝离", [story.photo()]))
    told("2025-10-16 18:30", N_("陈晓红 rejects the fix on {n}: the stalls are back; it reopens "
         "with the time that was left"),
         lambda: calls.reject_fix(ctx, ids["reject"], m("chen-xiaohong"),
                                  t("2025-10-16 18:30"), "晚上又摆出来了"))
    told("2025-10-17 20:00", N_("刘洋 resolves {n} again after an evening patrol"),
         lambda: calls.resolve(ctx, ids["reject"], m("liu-yang"), t("2025-10-17 20:00"),
                               "夜间巡查并清理", [story.photo()]))
    told("2025-10-18 09:00", N_("陈晓红 confirms {n}: 基本满意"),
         lambda: calls.confirm(ctx, ids["reject"], m("chen-xiaohong"), t("2025-10-18 09:00"),
                               RatingLevel.MOSTLY_SATISFIED))

    # 5. An emergency at night: minutes, round the clock.
    told("2025-10-20 23:40", N_("张伟 (钟落潭镇) raises {n}: waterlogging after a storm — "
         "15 minutes to acknowledge, at night"),
         lambda: raised("flood", calls.raise_call(
             ctx, m("zhang-wei"), t("2025-10-20 23:40"), "暴雨后镇中心路段积水过膝",
             item_code="flood-waterlogging", photos=[story.photo()])))
    told("2025-10-20 23:48", N_("何文斌 acknowledges {n} in 8 minutes"),
         lambda: calls.acknowledge(ctx, ids["flood"], m("he-wenbin"), t("2025-10-20 23:48")))
    told("2025-10-21 00:20", N_("何文斌 responds to {n}: pumps on site"),
         lambda: calls.respond(ctx, ids["flood"], m("he-wenbin"), t("2025-10-21 00:20"),
                               "抽水泵车已到场"))
    told("2025-10-21 03:10", N_("何文斌 resolves {n}"),
         lambda: calls.resolve(ctx, ids["flood"], m("he-wenbin"), t("2025-10-21 03:10"),
                               "积水已排除", [story.photo()]))
    told("2025-10-21 08:30", N_("张伟 confirms {n}: 满意"),
         lambda: calls.confirm(ctx, ids["flood"], m("zhang-wei"), t("2025-10-21 08:30"),
                               RatingLevel.SATISFIED))

    # 6. Not sure whom to call: the dispatcher routes it.
    told("2025-10-16 09:30", N_("吴丽华 (旺岗社区) raises {n} without choosing an item: "
         "it goes to the command centre"),
         lambda: raised("unsure", calls.raise_call(
             ctx, m("wu-lihua"), t("2025-10-16 09:30"), "小区旁边坡出现裂缝，不知道归哪个部门管",
             photos=[story.photo()])))
    told("2025-10-16 10:00", N_("郑宇 assigns {n} to 规划和自然资源分局"),
         lambda: calls.assign(ctx, ids["unsure"], m("zheng-yu"), t("2025-10-16 10:00"),
                              "planning"))
    told("2025-10-16 14:00", N_("林静 acknowledges {n}"),
         lambda: calls.acknowledge(ctx, ids["unsure"], m("lin-jing"), t("2025-10-16 14:00")))

    # 7. Withdrawn before anyone acknowledged.
    told("2025-10-21 09:00", N_("李明 raises {n}: a fallen tree on the village road"),
         lambda: raised("withdrawn", calls.raise_call(
             ctx, m("li-ming"), t("2025-10-21 09:00"), "村道有倒伏树木",
             item_code="living-environment")))
    told("2025-10-21 09:40", N_("李明 withdraws {n}: the villagers cleared it themselves"),
         lambda: calls.withdraw(ctx, ids["withdrawn"], m("li-ming"), t("2025-10-21 09:40"),
                                "村民已自行清理"))

    # 8. Resolved but never confirmed: closed unrated after N working days.
    told("2025-10-22 10:00", N_("张伟 raises {n}: stalls at the market entrance"),
         lambda: raised("silent", calls.raise_call(
             ctx, m("zhang-wei"), t("2025-10-22 10:00"), "市场入口占道经营",
             item_code="street-occupation")))
    told("2025-10-22 11:00", N_("刘洋 acknowledges {n}"),
         lambda: calls.acknowledge(ctx, ids["silent"], m("liu-yang"), t("2025-10-22 11:00")))
    told("2025-10-22 11:30", N_("刘洋 responds to {n}"),
         lambda: calls.respond(ctx, ids["silent"], m("liu-yang"), t("2025-10-22 11:30"), "处理中"))
    told("2025-10-23 16:00", N_("刘洋 resolves {n}; the caller never answers"),
         lambda: calls.resolve(ctx, ids["silent"], m("liu-yang"), t("2025-10-23 16:00"),
                               "已清理", [story.photo()]))

    def close_when_due() -> None:
        # As the routine would: at the moment the caller's time runs out, not at month end.
        resolved_at = story_call(ctx, ids["silent"]).resolved_at
        assert resolved_at is not None
        rules = ctx.rules
        due = after_working_days(resolved_at, rules.auto_close_after_days, rules.calendar,
                                 rules.policy)

        def close() -> None:
            for call in calls.auto_close_due(ctx, due):
                story.say(due, story.t._(
                    "%(number)s closed unrated: the caller did not answer within %(days)s "
                    "working days", number=call.number, days=rules.auto_close_after_days))

        story.at(due, close)

    story.at(t("2025-10-23 16:00") + timedelta(seconds=1), close_when_due)

    # 9. Nobody acknowledges.
    told("2025-10-24 10:00", N_("吴丽华 raises {n}: a factory discharging into the creek — "
         "and nobody at 生态环境分局 acknowledges it"),
         lambda: raised("ignored", calls.raise_call(
             ctx, m("wu-lihua"), t("2025-10-24 10:00"), "工厂夜间向河涌偷排污水",
             item_code="pollution-discharge", photos=[story.photo()])))
    story.run()
    return ids["ignored"]


def story_call(ctx: Context, call_id: int) -> Call:
    with Session(ctx.engine) as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call


def run_demo(settings: Settings, keep: Path | None = None, seed: int = 2025,
             out_dir: Path | None = None, locale: Locale = Locale.ZH_HANS) -> None:
    """Play the month and print the story, the ladder of the ignored call and
    the report; write the report's workbook and chart (`demo-report.xlsx`,
    `demo-report.png`) to `out_dir` (default: the current directory) and say
    where. Uses a fresh temporary SQLite database unless `keep` is given.
    The narrative is told in `locale` (Simplified Chinese by default, like the
    rest of the product); the names and the callers' words stay as they are."""
    t = Translator(locale, settings.tz)
    with tempfile.TemporaryDirectory(prefix="youhu-demo-") as scratch:
        path = keep or Path(scratch) / "demo.db"
        path.unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        upgrade_to_head(url)
        engine = make_engine(url)
        ctx = Context(engine=engine, media=MediaStore(Path(scratch) / "media"),
                      rules=build_rules(settings))
        org = read_org(EXAMPLES / "org.yaml")
        load(engine, org, read_catalog(EXAMPLES / "catalog.yaml", org),
             _local(settings, "2025-09-01 09:00"))
        story = Story(ctx, t)
        print(t._("youhu demo — 白云区, 2025-09-29 to 2025-10-31 (simulated clock, "
                  "Asia/Shanghai)") + "\n")
        print(t._("The told stories:"))
        _ordinary(story, settings, random.Random(seed))
        _sweeps(story, settings)
        ignored = _special(story, settings)
        month_end = _local(settings, "2025-11-01 00:00")

        call = story_call(ctx, ignored)
        domain = story.domains.get(call.domain_id)
        print("\n" + t._("The ladder for %(number)s, which nobody acknowledged (computed by the "
                         "rules; delivery comes with the scheduler):", number=call.number))
        item = queries.item(ctx, call.item_id) if call.item_id is not None else None
        for step in due_steps(call, month_end, ctx.rules, domain, limits_of(item)):
            who = ", ".join(sorted(step.recipients))
            what = t._(LIMIT.get(str(step.limit), str(step.limit)))
            rung = t._(STEP.get(str(step.step), str(step.step)))
            repeat = (" " + t._("(repeat %(count)s)", count=step.repeat)) if step.repeat else ""
            print(f"  {story.local(step.send_at)}  {what} · {rung}{repeat} → {who}")

        period = Period(start=_local(settings, "2025-09-29 00:00"), end=month_end,
                        label="2025-09-29 – 2025-10-31")
        result = report(ctx, period, month_end)
        print()
        print(render_report(result, t))
        folder = out_dir or Path.cwd()
        folder.mkdir(parents=True, exist_ok=True)
        workbook, picture = folder / "demo-report.xlsx", folder / "demo-report.png"
        workbook.write_bytes(workbook_bytes(result, t))
        try:
            picture.write_bytes(chart_png(result, t))
        except NoCjkFont as error:
            print("\n" + t._("The workbook is in %(path)s; no chart: %(error)s",
                             path=str(workbook.resolve()), error=str(error)))
        else:
            print("\n" + t._("The report as a workbook: %(path)s", path=str(workbook.resolve())))
            print(t._("The report as a chart: %(path)s", path=str(picture.resolve())))
        engine.dispose()

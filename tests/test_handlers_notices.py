"""Every outbox template renders for every member language: the call's
current details, deadlines in Shanghai time, photos and the right buttons."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlmodel import Session, col, select

from handlers.notices import render
from models import Locale, Member, OutboxMessage, RatingLevel
from tests.conftest import JPEG, T0, Org
from tests.test_handlers_chat import set_locale
from tests.test_handlers_liaison import raised
from workflows import calls, queries
from workflows.context import Context
from workflows.photos import Photo
from workflows.sweep import sweep


def every_message(ctx: Context) -> list[tuple[Member, OutboxMessage]]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage, Member)
                            .join(Member, col(Member.id) == col(OutboxMessage.member_id))
                            .order_by(col(OutboxMessage.id)))
        return [(member, message) for message, member in rows]


def a_busy_month(ctx: Context, org: Org) -> None:
    """One of each template: alerts, progress, requests, decisions, resolution,
    rejection, closing, withdrawal, dispatch, nudges and an unreachable member."""
    cid = raised(ctx, org, "illegal-building")
    calls.acknowledge(ctx, cid, org.urban_liaison, T0)
    calls.respond(ctx, cid, org.urban_liaison, T0, "处理中")
    request = calls.request_extension(ctx, cid, org.urban_liaison, T0, 2, "等")
    calls.decide_request(ctx, request.id or 0, org.dispatcher, T0, approve=False, note="不批")
    calls.resolve(ctx, cid, org.urban_liaison, T0, "好了", [Photo(JPEG)])
    calls.reject_fix(ctx, cid, org.caller, T0, "没好")
    calls.resolve(ctx, cid, org.urban_liaison, T0, "这次好了")
    calls.confirm(ctx, cid, org.caller, T0, RatingLevel.DISSATISFIED, "太慢")
    withdrawn = raised(ctx, org)
    calls.withdraw(ctx, withdrawn, org.caller, T0)
    unrouted = calls.raise_call(ctx, org.caller, T0, "不知道").id or 0
    calls.assign(ctx, unrouted, org.dispatcher, T0, "water")
    back = calls.return_call(ctx, unrouted, org.water_liaison, T0, "不是我们")
    calls.decide_request(ctx, back.id or 0, org.dispatcher, T0, approve=True)
    raised(ctx, org)
    sweep(ctx, T0 + timedelta(days=20))


@pytest.mark.parametrize("locale", list(Locale))
def test_every_template_renders_in_every_language(
    ctx: Context, org: Org, locale: Locale
) -> None:
    a_busy_month(ctx, org)
    for code in ("li", "urban-liaison", "water-liaison", "water-head", "dispatcher",
                 "supervisor", "housing-liaison", "admin"):
        set_locale(ctx, code, locale)
    seen: set[str] = set()
    for member, message in every_message(ctx):
        replies = render(ctx, member, message.template, message.params, message.call_id)
        assert replies and all(r.text.strip() for r in replies), message.template
        assert message.params.get("number", "") in replies[0].text
        seen.add(message.template)
    assert {"call_alert", "call_progress", "request_pending", "request_decided",
            "call_resolved", "fix_rejected", "call_closed", "call_withdrawn",
            "call_pending_dispatch", "nudge"} <= seen


def test_nudges_read_as_the_ladder_says(ctx: Context, org: Org) -> None:
    raised(ctx, org)
    for hours in range(0, 20 * 24, 4):  # the scheduler sweeps often; a step is sent once
        sweep(ctx, T0 + timedelta(hours=hours))
    texts = [render(ctx, m, o.template, o.params, o.call_id)[0].text
             for m, o in every_message(ctx) if o.template == "nudge"]
    reminder = "提醒：BY-2025-000001 须在 2025年10月9日 18:00 前完成签收"
    assert any(t.startswith(reminder) for t in texts)
    assert any(t.startswith("催办：BY-2025-000001 已超过签收时限") for t in texts)
    assert any(t.startswith("督办：") for t in texts)
    assert any(t.startswith("问责移交：") for t in texts)


def test_nudge_and_undeliverable_from_params(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    with Session(ctx.engine) as session:
        liaison = session.get(Member, org.water_liaison)
        dispatcher = session.get(Member, org.dispatcher)
    assert liaison is not None and dispatcher is not None
    liaison.locale = Locale.EN
    [reply] = render(ctx, liaison, "nudge", {
        "number": "BY-2025-000001", "limit": "resolve", "step": "urge", "repeat": 2,
        "due": "2025-10-14T10:00:00+00:00"}, cid)
    assert reply.text.startswith(
        "Urge: BY-2025-000001 missed its deadline to resolve (Oct 14, 2025, 6:00\u202fPM). "
        "(repeated 2 times)")
    assert [b.label for b in reply.all_buttons] == ["Acknowledge", "Return"]
    [reply] = render(ctx, dispatcher, "undeliverable",
                     {"member": "李明", "about": "call_alert", "why": "refused",
                      "reason": "Forbidden: bot was blocked by the user"}, cid)
    assert "李明" in reply.text and "blocked by the user" in reply.text
    # In Chinese: the call's number, what the message was and why, no template ids.
    assert "call_alert" not in reply.text and "平台" in reply.text
    assert queries.call_view(ctx, cid).number in reply.text
    [reply] = render(ctx, dispatcher, "undeliverable",
                     {"member": "王芳", "about": "daily_digest", "why": "unreachable"}, None)
    assert "daily_digest" not in reply.text and "reachable" not in reply.text
    assert "王芳" in reply.text and "早间" in reply.text
    [reply] = render(ctx, dispatcher, "something_new", {"number": "X-1"}, None)
    assert "X-1" in reply.text


def test_supervision_order_and_accountability_dossier(ctx: Context, org: Org) -> None:
    raised(ctx, org)
    for hours in range(0, 20 * 24, 4):
        sweep(ctx, T0 + timedelta(hours=hours))
    texts = {(m.id, o.params["step"], o.params["limit"], o.params["repeat"]):
             render(ctx, m, o.template, o.params, o.call_id)[0].text
             for m, o in every_message(ctx) if o.template == "nudge"}
    supervision = texts[(org.dispatcher, "supervise", "acknowledge", 0)]
    assert "督办单：BY-DB-2025-0001" in supervision
    referral = texts[(org.supervisor, "accountability", "acknowledge", 0)]
    # The dossier: the timeline (raised, dispatched, the nudges), then the counts.
    assert "问责材料——呼叫经过：" in referral
    assert "已派单" in referral and "已催办" in referral and "已下发督办单" in referral
    assert "已发提醒、催办、督办：" in referral and "佐证照片：1 张" in referral  # the raise photo


@pytest.mark.parametrize(("locale", "expected"), [
    (Locale.ZH_HANS, ("本部门有 2 件呼叫在办，其中 1 件已超时", "共发起呼叫41件，已响应办结39件",
                      "工作日历未覆盖 2027 年")),
    (Locale.ZH_HANT, ("本部門有 2 件呼叫在辦，其中 1 件已逾時", "共發起呼叫41件，已響應辦結39件",
                      "工作日曆未涵蓋 2027 年")),
    (Locale.EN, ("2 open calls, 1 of them overdue", "41 calls raised, 39 answered and closed",
                 "does not cover 2027")),
])
def test_routine_notices(ctx: Context, org: Org, locale: Locale,
                         expected: tuple[str, str, str]) -> None:
    with Session(ctx.engine) as session:
        head = session.get(Member, org.water_head)
        assert head is not None
    head.locale = locale
    digest = render(ctx, head, "daily_digest", {
        "day": "2025-10-10", "open": ["BY-2025-000001", "BY-2025-000002"], "open_count": 2,
        "overdue": ["BY-2025-000001"], "overdue_count": 1}, None)[0].text
    report = render(ctx, head, "monthly_report",
                    {"period": "2025-10", "raised": 41, "closed": 39}, None)[0].text
    warning = render(ctx, head, "calendar_warning",
                     {"years": [2027], "first_day": "2027-01-01"}, None)[0].text
    assert expected[0] in digest and "BY-2025-000001" in digest
    assert expected[1] in report and "2025-10" in report
    assert expected[2] in warning


ESTIMATE = {Locale.ZH_HANS: "（按周末推算，节假日安排未发布）",
            Locale.ZH_HANT: "（按週末推算，節假日安排未發布）",
            Locale.EN: "(estimated from weekends; the holiday schedule is not yet published)"}


@pytest.mark.parametrize("locale", list(Locale))
def test_a_deadline_the_calendar_does_not_cover_says_it_is_estimated(
    ctx: Context, org: Org, locale: Locale
) -> None:
    """A call raised at the end of 2026 runs into 2027, which the working-day
    calendar does not know yet: the alert's deadlines say they are estimated;
    a call within known years says nothing of the kind."""
    set_locale(ctx, "water-liaison", locale)
    set_locale(ctx, "dispatcher", locale)
    covered = calls.raise_call(ctx, org.caller, T0, "积水", item_code="drain").id or 0
    end_of_2026 = T0.replace(year=2026, month=12, day=30)
    late = calls.raise_call(ctx, org.caller, end_of_2026, "积水", item_code="drain").id or 0
    alerts = {r.call_id: r.text for r in inbox_with_calls(ctx, "water-liaison")}
    assert ESTIMATE[locale] in alerts[late]
    assert ESTIMATE[locale] not in alerts[covered]
    # The one sentence, right after the deadlines it qualifies.
    deadlines = next(line for line in alerts[late].splitlines() if ESTIMATE[locale] in line)
    assert deadlines.endswith(ESTIMATE[locale]) and "2027" in deadlines
    # An emergency runs round the clock: no estimate, even in 2027.
    flood = calls.raise_call(ctx, org.caller, end_of_2026, "内涝", item_code="flood").id or 0
    assert ESTIMATE[locale] not in {r.call_id: r.text for r in
                                    inbox_with_calls(ctx, "water-liaison")}[flood]


def inbox_with_calls(ctx: Context, code: str) -> list[Any]:
    """The member's alerts, each with the call it is about."""
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        messages = list(session.exec(select(OutboxMessage).where(
            OutboxMessage.member_id == member.id, OutboxMessage.template == "call_alert")
            .order_by(col(OutboxMessage.id))))
    found = []
    for message in messages:
        for reply in render(ctx, member, message.template, message.params, message.call_id):
            found.append(SimpleNamespace(call_id=message.call_id, text=reply.text))
    return found

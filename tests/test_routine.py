"""The daily and monthly routine: digests, the monthly report and the
calendar warning, each queued once however often the sweep runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select, update

from models import (
    Event,
    Locale,
    Member,
    Nudge,
    OutboxMessage,
    OutboxStatus,
    RatingLevel,
    Role,
    RoutineRun,
)
from tests.conftest import PNG, T0, Org
from workflows import calls
from workflows.context import Context, ReportFile
from workflows.notifications import enqueue
from workflows.retention import prune_history
from workflows.routine import routine
from workflows.stats import Period, Report, report
from workflows.sweep import sweep

SHANGHAI = ZoneInfo("Asia/Shanghai")


def queued(ctx: Context, template: str) -> list[OutboxMessage]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(OutboxMessage).where(OutboxMessage.template == template)))


def test_digest_each_working_morning_once(ctx: Context, org: Org) -> None:
    calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    before = datetime(2025, 10, 10, 8, 0, tzinfo=SHANGHAI)
    assert routine(ctx, before).digests == 0
    morning = datetime(2025, 10, 10, 8, 30, tzinfo=SHANGHAI)
    assert routine(ctx, morning).digests == 1
    assert routine(ctx, morning + timedelta(minutes=30)).digests == 0
    (digest,) = queued(ctx, "daily_digest")
    assert digest.member_id == org.water_head
    assert digest.params["open_count"] == 1 and digest.params["overdue_count"] == 1
    # 10-12 is a Sunday: no digest.
    assert routine(ctx, datetime(2025, 10, 12, 9, 0, tzinfo=SHANGHAI)).digests == 0


def test_monthly_report_to_the_command_centre_and_the_supervision_office(
    ctx: Context, org: Org
) -> None:
    calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    rendered: list[str] = []

    def exports(result: Report, locale: Locale) -> list[ReportFile]:
        rendered.append(locale.value)
        return [ReportFile("r.png", PNG, as_photo=True),
                ReportFile("r.xlsx", b"workbook " + locale.value.encode())]

    ctx = replace(ctx, exports=exports)
    first = datetime(2025, 10, 1, 9, 0, tzinfo=SHANGHAI)
    assert routine(ctx, first).reports == 3  # the dispatcher, the admin, the supervisor
    assert routine(ctx, first + timedelta(hours=1)).reports == 0
    assert rendered == ["zh_Hans"]  # once per language, not once per reader
    messages = queued(ctx, "monthly_report")
    assert sorted(m.member_id for m in messages) == sorted(
        [org.dispatcher, org.admin, org.supervisor])
    params = messages[0].params
    assert (params["period"], params["raised"], params["closed"], params["overdue"]) == (
        "2025-09", 1, 0, 0)
    png, workbook = params["documents"]
    assert png["photo"] and ctx.media.read(png["sha256"]) == PNG
    assert workbook["name"] == "r.xlsx" and ctx.media.read(workbook["sha256"]) == (
        b"workbook zh_Hans")
    with Session(ctx.engine) as session:
        run = session.get(RoutineRun, ("report", "2025-09"))
    assert run is not None and run.finished_at == first and run.recipients == 3


def test_a_crash_midway_through_the_digests_leaves_the_rest_for_the_next_sweep(
    ctx: Context, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(ctx.engine) as session:
        session.add(Member(code="urban-head", name="urban-head", role=Role.HEAD,
                           unit_id=org.urban, created_at=T0))
        session.commit()
    morning = datetime(2025, 10, 10, 8, 30, tzinfo=SHANGHAI)
    real = enqueue
    sent: list[str] = []

    def crash_after_the_first(session: Session, key: str, *args: object, **params: object
                              ) -> None:
        if sent:
            raise RuntimeError("the process died")
        sent.append(key)
        real(session, key, *args, **params)  # type: ignore[arg-type]

    monkeypatch.setattr("workflows.routine.enqueue", crash_after_the_first)
    with pytest.raises(RuntimeError):
        routine(ctx, morning)
    assert len(queued(ctx, "daily_digest")) == 1
    with Session(ctx.engine) as session:
        run = session.get(RoutineRun, ("digest", "2025-10-10"))
    assert run is not None and run.finished_at is None  # not done: to be finished
    monkeypatch.setattr("workflows.routine.enqueue", real)
    assert routine(ctx, morning + timedelta(seconds=30)).digests == 1  # the other head only
    assert sorted(m.member_id for m in queued(ctx, "daily_digest")) == sorted(
        [org.water_head, _member_id(ctx, "urban-head")])
    assert routine(ctx, morning + timedelta(minutes=1)).digests == 0


def _member_id(ctx: Context, code: str) -> int:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
        return member.id or 0


def test_old_history_is_pruned_and_what_reports_need_is_kept(ctx: Context, org: Org) -> None:
    old = calls.raise_call(ctx, org.caller, T0, "old drain", item_code="drain")
    sweep(ctx, T0 + timedelta(days=12))  # nudges and their outbox rows
    calls.acknowledge(ctx, old.id or 0, org.water_liaison, T0 + timedelta(days=13))
    calls.respond(ctx, old.id or 0, org.water_liaison, T0 + timedelta(days=13), "ok")
    calls.resolve(ctx, old.id or 0, org.water_liaison, T0 + timedelta(days=13), note="done")
    calls.confirm(ctx, old.id or 0, org.caller, T0 + timedelta(days=14), RatingLevel.SATISFIED)
    young = calls.raise_call(ctx, org.caller, T0 + timedelta(days=200), "new drain",
                             item_code="drain")
    sweep(ctx, T0 + timedelta(days=212))
    with Session(ctx.engine) as session:
        session.exec(update(OutboxMessage).values(status=OutboxStatus.DELIVERED))
        session.commit()
        before_events = len(session.exec(select(Event)).all())
        assert session.exec(select(Nudge).where(Nudge.call_id == old.id)).first() is not None
    result = prune_history(ctx, T0 + timedelta(days=213))
    assert result.messages > 0 and result.nudges > 0
    with Session(ctx.engine) as session:
        assert session.exec(select(Nudge).where(Nudge.call_id == old.id)).first() is None
        assert session.exec(select(Nudge).where(Nudge.call_id == young.id)).first() is not None
        assert all(m.created_at >= T0 + timedelta(days=33)
                   for m in session.exec(select(OutboxMessage)))
        assert len(session.exec(select(Event)).all()) == before_events  # the log stays
    # The old call's figures are intact.
    september = Period.month(2025, 9, SHANGHAI)
    assert report(ctx, september, T0 + timedelta(days=213)).total.closed == 1


def test_calendar_warning_to_admins(ctx: Context, org: Org) -> None:
    today = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    assert routine(ctx, today).calendar_warnings == 1
    assert routine(ctx, today + timedelta(hours=2)).calendar_warnings == 0
    (warning,) = queued(ctx, "calendar_warning")
    assert warning.member_id == org.admin
    assert warning.params == {"years": [2027], "first_day": "2027-01-01"}

"""The daily and monthly routine: digests, the monthly report and the
calendar warning, each queued once however often the sweep runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models import OutboxMessage
from tests.conftest import T0, Org
from workflows import calls
from workflows.context import Context
from workflows.routine import routine

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


def test_monthly_report_to_the_command_centre(ctx: Context, org: Org) -> None:
    calls.raise_call(ctx, org.caller, T0, "排水沟堵塞", item_code="drain")
    first = datetime(2025, 10, 1, 9, 0, tzinfo=SHANGHAI)
    assert routine(ctx, first).reports == 2  # the dispatcher and the admin
    assert routine(ctx, first + timedelta(hours=1)).reports == 0
    report = queued(ctx, "monthly_report")[0]
    assert report.params == {"period": "2025-09", "raised": 1, "closed": 0}


def test_calendar_warning_to_admins(ctx: Context, org: Org) -> None:
    today = datetime(2026, 11, 26, 9, 0, tzinfo=SHANGHAI)
    assert routine(ctx, today).calendar_warnings == 1
    assert routine(ctx, today + timedelta(hours=2)).calendar_warnings == 0
    (warning,) = queued(ctx, "calendar_warning")
    assert warning.member_id == org.admin
    assert warning.params == {"years": [2027], "first_day": "2027-01-01"}

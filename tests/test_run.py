"""`youhu run` as a process: it delivers the due escalation of an overdue call
through Telegram on its own, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes.telegram_api import FakeTelegram
from workflows import calls
from workflows.context import Context
from workflows.directory import load
from workflows.orgfile import read_catalog, read_org

ROOT = Path(__file__).resolve().parent.parent
LIAISON = 700000201  # 何文斌 (区水务局)
HEAD_OF_WATER = "zhou-guoqiang"


def test_run_delivers_the_ladder_and_stops_on_sigterm(
    ctx: Context, db_url: str, tmp_path: Path
) -> None:
    org = read_org(ROOT / "examples" / "org.yaml")
    load(ctx.engine, org, read_catalog(ROOT / "examples" / "catalog.yaml", org),
         datetime.now(UTC))
    from sqlmodel import Session, select

    from models import Member

    with Session(ctx.engine) as session:
        caller = session.exec(select(Member).where(Member.code == "li-ming")).one()
    # Raised a week ago and never acknowledged: the urge and more are due now.
    calls.raise_call(ctx, caller.id or 0, datetime.now(UTC) - timedelta(days=7),
                     "排水管堵塞", item_code="drainage-blockage")
    with FakeTelegram() as tg:
        env = {**os.environ, "YOUHU_DATABASE__URL": db_url,
               "YOUHU_TELEGRAM__TOKEN": tg.token, "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
               "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
               "YOUHU_MEDIA__DIR": str(tmp_path / "media"),
               "YOUHU_SCHEDULER__SWEEP_SECONDS": "0.5", "YOUHU_SCHEDULER__DELIVER_SECONDS": "0.5"}
        env.pop("YOUHU_CONFIG", None)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # The alert and the escalation steps reach the liaison's Telegram chat.
            tg.wait_until(lambda: len(tg.messages_to(LIAISON)) >= 2, timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        texts = " ".join((m.text or m.caption or "") for m in tg.messages_to(LIAISON))
    assert process.returncode == 0, output
    assert "youhu is running: telegram" in output and "youhu stopped." in output
    assert "Traceback" not in output, output
    assert "BY-" in texts


def test_sigterm_with_a_backlog_releases_what_was_not_sent(
    ctx: Context, db_url: str, tmp_path: Path
) -> None:
    """1,000 messages queued for four chats (a message a second each: minutes
    of work): SIGTERM stops `youhu run` without draining the backlog, and
    leaves no message claimed, so the next start sends the rest at once."""
    from sqlmodel import Session, col, select

    from models import ChannelAccount, Member, OutboxMessage
    from workflows.notifications import enqueue

    org = read_org(ROOT / "examples" / "org.yaml")
    load(ctx.engine, org, read_catalog(ROOT / "examples" / "catalog.yaml", org),
         datetime.now(UTC))
    now = datetime.now(UTC)
    with Session(ctx.engine) as session:
        members = session.exec(select(Member).join(
            ChannelAccount, col(ChannelAccount.member_id) == Member.id).where(
            ChannelAccount.channel == "telegram")).all()
        for n in range(1000):
            member = members[n % len(members)]
            enqueue(session, f"bulk:{n}", member.id or 0, "monthly_report", now,
                    period="2026-11", raised=n, closed=0)
        session.commit()
    with FakeTelegram() as tg:
        env = {**os.environ, "YOUHU_DATABASE__URL": db_url,
               "YOUHU_TELEGRAM__TOKEN": tg.token, "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
               "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
               "YOUHU_MEDIA__DIR": str(tmp_path / "media"),
               "YOUHU_SCHEDULER__SWEEP_SECONDS": "3600",
               "YOUHU_SCHEDULER__DELIVER_SECONDS": "0.5"}
        env.pop("YOUHU_CONFIG", None)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            tg.wait_until(lambda: len([m for m in tg.sent if m.method == "sendMessage"]) >= 4,
                          timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=60)
        sent = len([m for m in tg.sent if m.method == "sendMessage"])
    assert process.returncode == 0 and "Traceback" not in output, output
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).where(
            col(OutboxMessage.key).startswith("bulk:"))).all()
    delivered = [r for r in rows if r.status.value == "delivered"]
    assert len(delivered) == sent < 1000  # stopped, not drained; each sent one recorded
    assert [r for r in rows if r.claimed_until is not None] == []  # all released

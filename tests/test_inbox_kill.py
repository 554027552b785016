"""`youhu run` killed with SIGKILL while it handles updates: after the
restart every stored update is handled exactly once — those committed before
the kill are not handled again, the one in hand is handled from the start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import Session, select

from models import InboxStatus, InboxUpdate, Invite
from tests.conftest import PNG
from tests.fakes.telegram_api import FakeTelegram
from workflows.context import Context
from workflows.directory import load
from workflows.invites import create_invite
from workflows.orgfile import read_catalog, read_org

ROOT = Path(__file__).resolve().parent.parent
CALLER = 700000101  # 张伟, bound in the example org
NEWCOMERS = {810001: "li-ming", 810002: "liang-zhiqiang", 810003: "wu-lihua"}


def stored(ctx: Context) -> list[InboxUpdate]:
    with Session(ctx.engine) as session:
        return list(session.exec(select(InboxUpdate)))


def test_a_kill_while_handling_loses_and_doubles_nothing(
        ctx: Context, db_url: str, tmp_path: Path) -> None:
    org = read_org(ROOT / "examples" / "org.yaml")
    load(ctx.engine, org, read_catalog(ROOT / "examples" / "catalog.yaml", org),
         datetime.now(UTC))
    codes = {user: create_invite(ctx, member, None, datetime.now(UTC)).code
             for user, member in NEWCOMERS.items()}
    with FakeTelegram() as tg:
        env = {**os.environ, "YOUHU_DATABASE__URL": db_url,
               "YOUHU_TELEGRAM__TOKEN": tg.token, "YOUHU_TELEGRAM__BASE_URL": tg.base_url,
               "YOUHU_TELEGRAM__BASE_FILE_URL": tg.base_file_url,
               "YOUHU_MEDIA__DIR": str(tmp_path / "media"),
               "YOUHU_SCHEDULER__SWEEP_SECONDS": "3600"}
        env.pop("YOUHU_CONFIG", None)

        def start() -> subprocess.Popen[str]:
            return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=ROOT,
                                    env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)

        # The photo's download hangs: its update is in hand, uncommitted, at the kill.
        tg.slow_next("getFile", 120)
        tg.user_sends_photo(CALLER, PNG)
        for user, code in codes.items():
            tg.user_sends_command(user, "/start", code)
        first = start()
        try:
            # The newcomers' updates handled and answered (a kill between a
            # reply's send and its record would send that reply again: the
            # conversation is not run again, its stored replies are resent).
            tg.wait_until(lambda: len(stored(ctx)) == 4 and all(
                r.answered_at for r in stored(ctx) if r.chat != str(CALLER)), timeout=60)
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=60)
        assert [r.status for r in stored(ctx) if r.chat == str(CALLER)] == [
            InboxStatus.PENDING]
        second = start()
        try:
            # Its lease (15 s) runs out; the restarted worker handles it.
            tg.wait_until(lambda: bool(tg.messages_to(CALLER)), timeout=60)
            tg.wait_until(lambda: all(r.answered_at for r in stored(ctx)), timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            output, _ = second.communicate(timeout=60)
        assert second.returncode == 0, output
        replies = {user: [m.text or "" for m in tg.messages_to(user)]
                   for user in [CALLER, *NEWCOMERS]}
    # Each newcomer welcomed once (never "already used"), the photo answered once.
    for user in NEWCOMERS:
        assert len(replies[user]) == 1 and "欢迎" in replies[user][0], replies[user]
    assert len(replies[CALLER]) == 1, replies[CALLER]
    rows = stored(ctx)
    assert len(rows) == 4 and {r.status for r in rows} == {InboxStatus.DONE}
    with Session(ctx.engine) as session:
        assert all(i.used_at is not None for i in session.exec(select(Invite)))

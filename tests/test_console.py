"""The console channel: a scripted `youhu console` session over a pipe on the
example org, playing a call from raising to rating by switching members; and
the console's own input rules."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, col, select

from bot.console import Console
from models import (
    Attachment,
    Call,
    CallStatus,
    CatalogItem,
    Delivery,
    InboxStatus,
    InboxUpdate,
    OutboxMessage,
    OutboxStatus,
    Rating,
    make_engine,
)
from tests.conftest import PNG, T0, Org
from workflows.context import Context

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """\
# 李明 raises a call: what happened, the suggested item, photo, location, send
/call
村口排水管堵塞，污水漫到路面
1
photo {photo}
23.28,113.27
1
:as he-wenbin
1
1
明早派抢修队疏通
1
photo {photo}
1
:as li-ming
1
2
'修得很快
:as zheng-yu
/stats
:quit
"""


def youhu(args: list[str], env: dict[str, str], stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], input=stdin, capture_output=True,
        text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_piped_console_session_plays_a_call_through(tmp_path: Path) -> None:
    env = {**os.environ, "YOUHU_DATABASE__URL": f"sqlite:///{tmp_path / 'youhu.db'}",
           "YOUHU_MEDIA__DIR": str(tmp_path / "media")}
    env.pop("YOUHU_CONFIG", None)
    youhu(["init", "--org", "examples/org.yaml", "--catalog", "examples/catalog.yaml"], env)
    photo = tmp_path / "drain.png"
    photo.write_bytes(PNG)
    out = youhu(["console", "--as", "li-ming"], env, SCRIPT.format(photo=photo))

    assert "— acting as 李明 (li-ming, caller, 良田村)" in out
    assert "[1] 市政排水管网堵塞" in out
    assert "已派单至区水务局" in out
    assert "✉ [call_alert]" in out and "呼叫人：李明，良田村" in out
    assert "[1] 签收   [2] 退回" in out
    assert "✉ [call_resolved]" in out and "处理前：1 张照片 · 处理后：1 张照片" in out
    assert "谢谢！" in out
    assert "发起呼叫 1 件，已响应并办结 1 件" in out

    engine = make_engine(env["YOUHU_DATABASE__URL"])
    try:
        with Session(engine) as session:
            call = session.exec(select(Call)).one()
            rating = session.exec(select(Rating)).one()
            deliveries = session.exec(select(Delivery)).all()
            alert = session.exec(select(OutboxMessage).where(
                OutboxMessage.template == "call_alert")).one()
    finally:
        engine.dispose()
    assert call.status is CallStatus.CLOSED
    assert (rating.score, rating.comment) == (80, "修得很快")
    assert deliveries and {d.channel for d in deliveries} == {"console"}
    # 何文斌 also has Telegram and WeCom: the real deliverer still owes him the alert.
    assert alert.status is OutboxStatus.PENDING


def test_console_input_rules(ctx: Context, org: Org, tmp_path: Path) -> None:
    out = io.StringIO()
    console = Console(ctx, "li", out, lambda: T0)
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("hello")
    console.run([
        "/call", "", "门口有人吵架", "9", "1", "2", "'/not a command", "photo /no/such/file.jpg",
        f"photo {not_a_photo}", "photo", ":as", ":as nobody", "/help", ":as admin", "/cancel",
    ])
    text = out.getvalue()
    assert "(no button 9; the buttons are 1–4)" in text
    assert "排水" in text  # pressed 1: the enforcement domain, then 2: 违建
    assert "(no such file: /no/such/file.jpg)" in text
    assert "不是照片" in text
    assert "usage: photo PATH [caption]" in text
    assert "「/not a command」" not in text and "请发送问题照片" in text  # taken as text
    assert "问题描述为空" in text
    assert "usage: :as <member code>" in text
    assert "nobody: no such member" in text and "仅供已登记的工作人员" in text
    assert "没有可取消的操作" in text
    with Session(ctx.engine) as session:
        assert session.exec(select(Call)).all() == []
        # Every input the conversations saw went through the inbox, handled
        # and answered once, in order; the refused ones (button 9, no file,
        # a bare `photo`, `:as`) were never stored.
        stored = session.exec(select(InboxUpdate).order_by(col(InboxUpdate.id))).all()
    assert [(r.channel, r.status, r.answered_at is not None) for r in stored] == [
        ("console", InboxStatus.DONE, True)] * 9
    assert [r.payload for r in stored][-2:] == [
        {"member": "nobody", "line": "/help"}, {"member": "admin", "line": "/cancel"}]


def test_console_delivers_a_console_only_members_messages_once(
    ctx: Context, org: Org
) -> None:
    from workflows import calls

    calls.raise_call(ctx, org.caller, T0, "积水", item_code="drain")
    out = io.StringIO()
    console = Console(ctx, "water-liaison", out, lambda: datetime(2026, 1, 1, tzinfo=T0.tzinfo))
    console.run([":as li", ":as water-liaison"])
    assert out.getvalue().count("✉ [call_alert]") == 1
    with Session(ctx.engine) as session:
        message = session.exec(select(OutboxMessage)).one()
    assert message.status is OutboxStatus.DELIVERED


def test_youhu_invite_then_start_on_the_console(tmp_path: Path) -> None:
    env = {**os.environ, "YOUHU_DATABASE__URL": f"sqlite:///{tmp_path / 'youhu.db'}",
           "YOUHU_MEDIA__DIR": str(tmp_path / "media")}
    env.pop("YOUHU_CONFIG", None)
    youhu(["init", "--org", "examples/org.yaml"], env)
    out = youhu(["invite", "--member", "wu-lihua", "--hours", "24"], env)
    code = out.split("/start ")[1].split()[0]
    assert out.startswith("invite code for wu-lihua: ") and len(code) == 10
    session = youhu(["console", "--as", "wu-lihua"], env, f"/start {code}\n/start {code}\n")
    assert "吴丽华，欢迎！您已完成注册" in session
    assert "该邀请码已被使用" in session
    done = subprocess.run([sys.executable, "-m", "bot.cli", "invite", "--member", "nobody"],
                          capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    assert done.returncode == 1 and "nobody" in done.stderr


def test_a_call_with_a_photo_and_a_location_takes_six_console_inputs(
        ctx: Context, org: Org, tmp_path: Path) -> None:
    photo = tmp_path / "drain.png"
    photo.write_bytes(PNG)
    out = io.StringIO()
    # /call, what happened, the suggested item ([1] 排水), the photo, the
    # location, send ([1] 发送呼叫).
    lines = ["/call", "排水井盖缺失，有人差点掉下去", "1", f"photo {photo}", "23.28,113.27", "1"]
    Console(ctx, "li", out, lambda: T0).run(lines)
    assert len(lines) <= 6
    assert "[1] 排水" in out.getvalue()
    with Session(ctx.engine) as session:
        [call] = session.exec(select(Call)).all()
        item = session.get(CatalogItem, call.item_id)
        photos = session.exec(select(Attachment).where(Attachment.call_id == call.id)).all()
    assert (call.text, call.latitude, call.longitude, call.status) == (
        "排水井盖缺失，有人差点掉下去", 23.28, 113.27, CallStatus.DISPATCHED)
    assert item is not None and item.code == "drain" and len(photos) == 1
    assert call.number in out.getvalue()

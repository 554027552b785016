"""The liaison's side, through the alert's buttons: acknowledge, respond,
extension, return, resolve — and the presses that must change nothing (a
second press, a call that moved on, someone outside the department)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, select

from models import Attachment, AttachmentStage, Call, CallRequest, CallStatus, RequestKind
from tests.conftest import JPEG, PNG, T0, Org
from tests.test_handlers_chat import Chat, inbox
from workflows import calls
from workflows.context import Context
from workflows.photos import Photo


def raised(ctx: Context, org: Org, item: str = "drain") -> int:
    call = calls.raise_call(ctx, org.caller, T0, "积水", item_code=item, photos=[Photo(PNG)])
    return call.id or 0


def status(ctx: Context, call_id: int) -> CallStatus:
    with Session(ctx.engine) as session:
        call = session.get(Call, call_id)
        assert call is not None
        return call.status


def snapshot(ctx: Context) -> dict[str, Any]:
    """The call-related tables (dialogs and handled updates aside)."""
    with ctx.engine.connect() as connection:
        return {t.name: sorted(map(repr, connection.execute(sa.select(t))))
                for t in SQLModel.metadata.sorted_tables
                if t.name not in ("dialog", "handledupdate")}


def test_the_alert_shows_the_call_with_its_photos_and_buttons(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    [alert] = inbox(ctx, "water-liaison")
    assert "您的部门收到一件新呼叫" in alert.text and "积水" in alert.text
    assert "From: " not in alert.text and "呼叫人：li" in alert.text
    assert "签收时限：2025年10月9日 18:00" in alert.text
    assert len(alert.photos) == 1
    assert [b.label for b in alert.all_buttons] == ["签收", "退回"]
    assert all(len(b.data.encode()) <= 64 for b in alert.all_buttons)
    assert alert.all_buttons[0].data == f"c:ack:{cid}"


def test_acknowledge_twice_and_by_an_outsider(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    alert = inbox(ctx, "water-liaison")
    liaison.press("签收", alert)
    assert "您已签收 BY-2025-000001" in liaison.text
    assert liaison.labels == ["响应", "退回"]
    assert status(ctx, cid) is CallStatus.ACKNOWLEDGED
    before = snapshot(ctx)
    liaison.press("签收", alert)  # the same button again
    assert "已经签收过了" in liaison.text and "未做任何更改" in liaison.text
    outsider = Chat(ctx, "housing-liaison")
    outsider.data(f"c:ack:{cid}")
    assert "无权" in outsider.text
    outsider.data(f"c:res:{cid}")
    assert "无权" in outsider.text
    Chat(ctx, "li").data(f"c:ack:{cid}")
    Chat(ctx, "water-liaison").data("c:ack:99999")
    assert snapshot(ctx) == before


def test_respond_extension_and_resolve_with_photos(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    liaison.data(f"c:ack:{cid}")
    liaison.press("响应")
    assert "请输入响应内容" in liaison.text
    liaison.send("")
    assert "请以文字回复" in liaison.text and status(ctx, cid) is CallStatus.ACKNOWLEDGED
    liaison.send("明早派抢修队")
    assert "响应已发送" in liaison.text and status(ctx, cid) is CallStatus.IN_PROGRESS
    assert liaison.labels == ["办结", "申请延期"]

    liaison.press("申请延期")
    assert liaison.labels[:5] == ["1", "2", "3", "5", "10"]
    liaison.send("99")
    assert "1 至 30 个工作日" in liaison.text
    liaison.press("3")
    assert "延期 3 个工作日" in liaison.text
    liaison.send("需要采购配件")
    with Session(ctx.engine) as session:
        [request] = session.exec(select(CallRequest)).all()
    assert (request.kind, request.days) == (RequestKind.EXTENSION, 3)
    assert request.reason == "需要采购配件"
    assert f"申请编号 {request.id}" in liaison.text
    assert status(ctx, cid) is CallStatus.EXTENSION_REQUESTED

    # A resolve press now is for a call that moved on: refused, no dialog opened.
    liaison.data(f"c:res:{cid}")
    assert "已申请延期" in liaison.text and "不可执行" in liaison.text
    calls.decide_request(ctx, request.id or 0, org.dispatcher, T0, approve=True)

    liaison.data(f"c:res:{cid}")
    assert "办结 BY-2025-000001" in liaison.text
    liaison.press("完成")
    assert "至少附一张佐证照片" in liaison.text
    liaison.photo(b"GIF89a" + b"\0" * 10)
    liaison.photo(b"not an image")
    assert "不是照片" in liaison.text
    liaison.photo(JPEG)
    assert "照片：2 张" in liaison.text
    liaison.press("完成")
    assert "已办结，等待呼叫方确认" in liaison.text
    assert status(ctx, cid) is CallStatus.RESOLVED
    with Session(ctx.engine) as session:
        evidence = session.exec(select(Attachment).where(
            Attachment.stage == AttachmentStage.EVIDENCE)).all()
    assert len(evidence) == 2


def test_resolve_with_a_reason_and_return_with_a_reason(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    liaison.data(f"c:ack:{cid}")
    liaison.data(f"c:rsp:{cid}")
    liaison.send("/help")
    assert "已保留" in liaison.text and "请输入响应内容" in liaison.text
    liaison.send("马上处理")
    liaison.data(f"c:res:{cid}")
    liaison.send("现场已疏通，无需照片")
    assert status(ctx, cid) is CallStatus.RESOLVED

    other = raised(ctx, org)
    liaison.data(f"c:ret:{other}")
    assert "退回理由" in liaison.text
    liaison.send("这是住建局的事")
    assert "已申请退回" in liaison.text
    assert status(ctx, other) is CallStatus.PENDING_DISPATCH
    liaison.data(f"c:ret:{other}")
    assert "不可执行" in liaison.text


def test_an_assisting_department_only_acknowledges(ctx: Context, org: Org) -> None:
    cid = raised(ctx, org, "illegal-building")
    [alert] = inbox(ctx, "housing-liaison")
    assert "协办部门" in alert.text and [b.label for b in alert.all_buttons] == ["签收"]
    housing = Chat(ctx, "housing-liaison")
    housing.press("签收", [alert])
    assert "您已签收" in housing.text
    assert status(ctx, cid) is CallStatus.DISPATCHED  # the lead has not acknowledged yet
    housing.press("签收", [alert])
    assert "已经签收过了" in housing.text


def test_a_second_action_waits_for_the_first(ctx: Context, org: Org) -> None:
    first, second = raised(ctx, org), raised(ctx, org)
    liaison = Chat(ctx, "water-liaison")
    liaison.data(f"c:ret:{first}")
    liaison.data(f"c:ret:{second}")
    assert "请先完成当前操作" in liaison.text and "BY-2025-000001" in liaison.text
    liaison.send("/cancel")
    assert status(ctx, first) is CallStatus.DISPATCHED

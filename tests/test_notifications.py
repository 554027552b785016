"""Each event queues its notices in the outbox, in the same transaction."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models import OutboxMessage, RatingLevel
from tests.conftest import T0, Org
from workflows import calls
from workflows.context import Context


def queued(ctx: Context) -> list[tuple[int, str]]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))
        return [(m.member_id, m.template) for m in rows]


def test_a_call_through_its_life_notifies_the_right_people(ctx: Context, org: Org) -> None:
    call = calls.raise_call(ctx, org.caller, T0, "违建", item_code="illegal-building")
    cid = call.id or 0
    # Lead (urban) and assisting (housing) liaisons are alerted.
    assert queued(ctx) == [(org.urban_liaison, "call_alert"), (org.housing_liaison, "call_alert")]
    calls.acknowledge(ctx, cid, org.urban_liaison, T0)
    calls.respond(ctx, cid, org.urban_liaison, T0, "处理中")
    request = calls.request_extension(ctx, cid, org.urban_liaison, T0, 2, "等")
    calls.decide_request(ctx, request.id or 0, org.dispatcher, T0, approve=True)
    calls.resolve(ctx, cid, org.urban_liaison, T0, "好了")
    calls.confirm(ctx, cid, org.caller, T0, RatingLevel.SATISFIED)
    assert queued(ctx)[2:] == [
        (org.caller, "call_progress"),  # acknowledged
        (org.caller, "call_progress"),  # responded
        (org.dispatcher, "request_pending"),
        (org.caller, "call_progress"),  # extension granted
        (org.urban_liaison, "request_decided"),
        (org.caller, "call_resolved"),
        (org.urban_liaison, "call_closed"),
    ]


def test_unroutable_call_goes_to_dispatchers(ctx: Context, org: Org) -> None:
    calls.raise_call(ctx, org.caller, T0, "不知道找谁")
    assert queued(ctx) == [(org.dispatcher, "call_pending_dispatch")]


def test_keys_are_unique_per_event_and_member(ctx: Context, org: Org) -> None:
    calls.raise_call(ctx, org.caller, T0, "积水", item_code="drain")
    with Session(ctx.engine) as session:
        keys = [m.key for m in session.exec(select(OutboxMessage))]
    assert len(keys) == len(set(keys)) == 1


def test_added_information_goes_to_the_department(ctx: Context, org: Org) -> None:
    cid = calls.raise_call(ctx, org.caller, T0, "积水", item_code="drain").id or 0
    calls.add_info(ctx, cid, org.caller, T0, "水更深了")
    assert queued(ctx)[-1] == (org.water_liaison, "call_info_added")
    unrouted = calls.raise_call(ctx, org.caller, T0, "不知道找谁").id or 0
    calls.add_info(ctx, unrouted, org.caller, T0, "在村委会后面")
    assert queued(ctx)[-1] == (org.dispatcher, "call_info_added")

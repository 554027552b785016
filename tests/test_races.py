"""Use cases are atomic under concurrency, on SQLite as on PostgreSQL: real
threads press the same button at the same moment, and exactly one press
changes the call (one event, one notice); the other is refused."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from sqlmodel import Session, col, func, select

from models import Call, CallRequest, CallStatus, Event, OutboxMessage, RequestStatus
from tests.conftest import T0, Org
from workflows import calls
from workflows.context import Context
from workflows.errors import WorkflowError

ROUNDS = 50


def race(*presses: Callable[[], object]) -> list[object]:
    """Run the presses in threads released at the same instant; each result
    is what the press returned or the WorkflowError it raised."""
    barrier = threading.Barrier(len(presses))
    results: list[object] = [None] * len(presses)

    def run(index: int, press: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[index] = press()
        except WorkflowError as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, p)) for i, p in enumerate(presses)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    for result in results:
        assert result is not None
        if isinstance(result, BaseException) and not isinstance(result, WorkflowError):
            raise result
    return results


def count(ctx: Context, model: type, *where: object) -> int:
    with Session(ctx.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)
                                .where(*where)).one())  # type: ignore[arg-type]


def test_two_liaisons_pressing_acknowledge_at_once(ctx: Context, org: Org) -> None:
    at = T0 + timedelta(minutes=5)
    for round_ in range(ROUNDS):
        call_id = calls.raise_call(ctx, org.caller, T0, f"积水 {round_}", item_code="drain").id
        assert call_id is not None
        results = race(
            partial(calls.acknowledge, ctx, call_id, org.water_liaison, at),
            partial(calls.acknowledge, ctx, call_id, org.water_head, at),
        )
        refused = [r for r in results if isinstance(r, WorkflowError)]
        assert len(refused) == 1 and refused[0].code == "wrong_state", results
        assert count(ctx, Event, Event.call_id == call_id, Event.kind == "CallAcknowledged") == 1
        assert count(ctx, OutboxMessage, OutboxMessage.call_id == call_id,
                     OutboxMessage.template == "call_progress") == 1


def test_one_liaison_pressing_twice_at_once(ctx: Context, org: Org) -> None:
    """The same member on two channels (Telegram and WeCom) at the same moment."""
    at = T0 + timedelta(minutes=5)
    call_id = calls.raise_call(ctx, org.caller, T0, "积水", item_code="drain").id
    assert call_id is not None
    for _ in range(ROUNDS):
        race(partial(calls.acknowledge, ctx, call_id, org.water_liaison, at),
             partial(calls.acknowledge, ctx, call_id, org.water_liaison, at))
    assert count(ctx, Event, Event.call_id == call_id, Event.kind == "CallAcknowledged") == 1
    assert count(ctx, OutboxMessage, OutboxMessage.call_id == call_id,
                 OutboxMessage.template == "call_progress") == 1


def test_withdraw_racing_acknowledge(ctx: Context, org: Org) -> None:
    at = T0 + timedelta(minutes=5)
    outcomes: set[str] = set()
    for round_ in range(ROUNDS):
        call_id = calls.raise_call(ctx, org.caller, T0, f"积水 {round_}", item_code="drain").id
        assert call_id is not None
        withdrawn, acknowledged = race(
            partial(calls.withdraw, ctx, call_id, org.caller, at),
            partial(calls.acknowledge, ctx, call_id, org.water_liaison, at),
        )
        assert isinstance(withdrawn, WorkflowError) != isinstance(acknowledged, WorkflowError)
        with Session(ctx.engine) as session:
            call = session.get(Call, call_id)
            assert call is not None
            kinds = set(session.exec(select(Event.kind).where(Event.call_id == call_id)))
        if isinstance(acknowledged, WorkflowError):
            assert call.status is CallStatus.WITHDRAWN and call.acknowledged_at is None
            assert "CallAcknowledged" not in kinds
            outcomes.add("withdrawn")
        else:
            assert call.status is CallStatus.ACKNOWLEDGED and call.closed_at is None
            assert "CallWithdrawn" not in kinds
            outcomes.add("acknowledged")
    assert outcomes  # which wins is up to the scheduler; never both


def test_no_event_is_left_half_written(ctx: Context, org: Org) -> None:
    """After all the races, every event's call agrees with the log's last status."""
    at = T0 + timedelta(minutes=5)
    for round_ in range(10):
        call_id = calls.raise_call(ctx, org.caller, T0, f"积水 {round_}", item_code="drain").id
        assert call_id is not None
        race(partial(calls.acknowledge, ctx, call_id, org.water_liaison, at),
             partial(calls.withdraw, ctx, call_id, org.caller, at),
             partial(calls.acknowledge, ctx, call_id, org.water_head, at))
    with Session(ctx.engine) as session:
        for call in session.exec(select(Call)):
            last = session.exec(select(Event).where(Event.call_id == call.id)
                                .order_by(col(Event.id).desc())).first()
            assert last is not None and last.to_status is call.status


def test_assign_racing_the_decision_on_a_pending_return(ctx: Context, org: Org) -> None:
    """The dispatcher assigns a returned call while another decides its
    return: the request is closed exactly once — upheld, or superseded by the
    assignment — and neither waits on the other for ever (both lock the call
    first, then the request)."""
    at = T0 + timedelta(minutes=5)
    for round_ in range(ROUNDS // 2):
        call_id = calls.raise_call(ctx, org.caller, T0, f"积水 {round_}", item_code="drain").id
        assert call_id is not None
        request = calls.return_call(ctx, call_id, org.water_liaison, T0, "属住建")
        results = race(
            partial(calls.assign, ctx, call_id, org.dispatcher, at, "housing"),
            partial(calls.decide_return, ctx, request.id or 0, org.admin, at, True, "urban"),
        )
        with Session(ctx.engine) as session:
            status = session.get(CallRequest, request.id).status  # type: ignore[union-attr]
            assigned = session.exec(select(Event).where(
                Event.call_id == call_id, Event.kind == "CallAssigned")).one()
        upheld = count(ctx, Event, Event.call_id == call_id, Event.kind == "ReturnUpheld")
        if status is RequestStatus.APPROVED:  # decided first, then rerouted
            assert upheld == 1 and "superseded_requests" not in assigned.data, results
        else:  # assigned first: the decision finds nothing to decide
            assert status is RequestStatus.SUPERSEDED and upheld == 0, results
            assert assigned.data["superseded_requests"] == [request.id]
            assert isinstance(results[1], WorkflowError) and results[1].code == "wrong_state"

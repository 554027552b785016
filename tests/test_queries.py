"""What the read side costs and what it returns: lists of calls are built in
batch (a bounded number of SQL statements whatever their length, counted on
the engine the way the database sees them), a view built in a batch is the
view built alone, and a number whose digits end several calls is refused,
naming them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from models import Call, RatingLevel
from tests.conftest import JPEG, PNG, T0, Org
from tests.test_handlers_chat import Chat, inbox
from workflows import calls, sources
from workflows.context import Context
from workflows.photos import Photo
from workflows.queries import CallView, call_view, views_of
from workflows.sources import FetchedMedia, SourceReport

LATE = T0 + timedelta(days=60)  # every call raised at T0 is past all its deadlines
#: What a list or a press may cost, whatever the number of calls: a bound on
#: the statements of the whole turn (member, dialog, the use case, the views).
OVERDUE_BOUND = 15
#: 签收 through the chat on SQLite: the member and the dialog (2), the use
#: case's unit of work (BEGIN IMMEDIATE, actor, call, departments, the writes,
#: the notice: 11) and the view it returns (5) — 19 when the handler loaded
#: the view again after the use case.
PRESS_BOUND = 18


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def raise_drains(ctx: Context, org: Org, count: int) -> list[int]:
    """`count` calls to the water department, each with a photo; every third
    a joint item with an assisting department, every fifth acknowledged."""
    ids = []
    for n in range(count):
        item = "illegal-building" if n % 3 == 0 else "drain"
        call = calls.raise_call(ctx, org.caller, T0 + timedelta(seconds=n), f"积水 {n}",
                                item_code=item, photos=[Photo(PNG)])
        if n % 5 == 0 and item == "drain":
            calls.acknowledge(ctx, call.id or 0, org.water_liaison, T0 + timedelta(minutes=1))
        ids.append(call.id or 0)
    return ids


def overdue_cost(ctx: Context, chat: Chat) -> int:
    chat.send("/overdue")  # the first turn of a member may do more (its locale, its dialog)
    with statements(ctx.engine) as sent:
        chat.send("/overdue")
    assert chat.text.startswith("超时的呼叫")
    return len(sent)


def test_overdue_costs_as_much_for_100_calls_as_for_10(ctx: Context, org: Org) -> None:
    raise_drains(ctx, org, 10)
    chat = Chat(ctx, "dispatcher", now=LATE)
    for_ten = overdue_cost(ctx, chat)
    assert len(chat.text.splitlines()) == 1 + 10
    raise_drains(ctx, org, 90)
    for_hundred = overdue_cost(ctx, chat)
    assert len(chat.text.splitlines()) == 1 + 30  # the list shows the 30 oldest
    assert for_hundred == for_ten <= OVERDUE_BOUND


def test_the_department_list_and_the_queue_are_bounded(ctx: Context, org: Org) -> None:
    def cost(chat: Chat, command: str) -> int:
        chat.send(command)
        with statements(ctx.engine) as sent:
            chat.send(command)
        shown[command] = chat.text.count("BY-2025-")
        return len(sent)

    shown: dict[str, int] = {}

    liaison, dispatcher = Chat(ctx, "water-liaison"), Chat(ctx, "dispatcher")
    for n in range(2):
        calls.raise_call(ctx, org.caller, T0, f"不知道找谁 {n}")
    raise_drains(ctx, org, 2)
    few = cost(liaison, "/mine"), cost(dispatcher, "/queue"), cost(dispatcher, "/find 积水")
    assert shown == {"/mine": 1, "/queue": 2 * 2, "/find 积水": 2}  # /queue: number and hint
    for n in range(20):
        calls.raise_call(ctx, org.caller, T0, f"不知道找谁 {n}")
    raise_drains(ctx, org, 20)
    many = cost(liaison, "/mine"), cost(dispatcher, "/queue"), cost(dispatcher, "/find 积水")
    assert shown == {"/mine": 14, "/queue": 20 * 2, "/find 积水": 10}  # /queue, /find: limits
    assert many == few


def press_cost(ctx: Context, org: Org, call_id: int) -> int:
    [alert] = [reply for reply in inbox(ctx, "water-liaison")
               if any(b.data.endswith(f":{call_id}") for b in reply.all_buttons)]
    chat = Chat(ctx, "water-liaison", now=T0 + timedelta(minutes=2))
    chat.send("/help")
    with statements(ctx.engine) as sent:
        chat.press("签收", [alert])
    assert "您已签收" in chat.text and "响应" in chat.labels
    return len(sent)


def test_a_button_press_is_bounded_however_many_calls(ctx: Context, org: Org) -> None:
    first = raise_drains(ctx, org, 2)[1]
    alone = press_cost(ctx, org, first)
    later = raise_drains(ctx, org, 100)[-2]  # a drain (the last is a joint item)
    assert press_cost(ctx, org, later) == alone <= PRESS_BOUND


def varied_calls(ctx: Context, org: Org) -> list[int]:
    """Calls in as many shapes as a view can take."""
    at = T0 + timedelta(minutes=5)
    done = calls.raise_call(ctx, org.caller, T0, "井盖破损", item_code="drain",
                            location_text="大源村口", latitude=23.2, longitude=113.3,
                            photos=[Photo(PNG), Photo(JPEG)]).id or 0
    calls.acknowledge(ctx, done, org.water_liaison, at)
    calls.respond(ctx, done, org.water_liaison, at, "已派人")
    calls.resolve(ctx, done, org.water_liaison, at, "第一次修好", [Photo(JPEG)])
    calls.reject_fix(ctx, done, org.caller, at, "还在漏")
    calls.resolve(ctx, done, org.water_liaison, at, "第二次修好")
    calls.confirm(ctx, done, org.caller, at, RatingLevel.SATISFIED, "好")
    joint = calls.raise_call(ctx, org.other_caller, T0, "违建", item_code="illegal-building",
                             photos=[Photo(PNG)]).id or 0
    calls.acknowledge(ctx, joint, org.housing_liaison, at)
    returned = calls.raise_call(ctx, org.caller, T0, "不归水务", item_code="drain").id or 0
    calls.acknowledge(ctx, returned, org.water_liaison, at)
    back = calls.return_call(ctx, returned, org.water_liaison, at, "不归我们管")
    calls.decide_return(ctx, back.id or 0, org.dispatcher, at, True, "housing")
    extended = calls.raise_call(ctx, org.caller, T0, "要等配件", item_code="drain").id or 0
    calls.acknowledge(ctx, extended, org.water_liaison, at)
    calls.respond(ctx, extended, org.water_liaison, at, "在办")
    asked = calls.request_extension(ctx, extended, org.water_liaison, at, 3, "等配件")
    calls.decide_extension(ctx, asked.id or 0, org.dispatcher, at, True)
    plain = calls.raise_call(ctx, org.caller, T0, "也在等", item_code="drain").id or 0
    unsure = calls.raise_call(ctx, org.caller, T0, "不知道找谁").id or 0
    flood = calls.raise_call(ctx, org.other_caller, T0, "内涝", item_code="flood").id or 0
    withdrawn = calls.raise_call(ctx, org.caller, T0, "搞错了", item_code="drain").id or 0
    calls.withdraw(ctx, withdrawn, org.caller, at)
    key = sources.authenticate(ctx, sources.create_key(ctx, "cams", "taihe", T0).key)
    assert key is not None
    sourced = sources.accept(ctx, key, SourceReport("drain", "摄像头发现积水", address="村口",
                                                    media_url="http://cams.example/x.jpg"),
                             T0, lambda url: FetchedMedia(error="unreachable"))
    with Session(ctx.engine) as session:
        from_system = session.exec(select(Call).where(Call.number == sourced.number)).one()
    return [done, joint, returned, extended, plain, unsure, flood, withdrawn, from_system.id or 0]


def test_views_built_in_batch_equal_views_built_one_by_one(ctx: Context, org: Org) -> None:
    ids = varied_calls(ctx, org)
    with Session(ctx.engine) as session:
        rows = list(session.exec(select(Call).where(col(Call.id).in_(ids))))
        rows.sort(key=lambda call: ids.index(call.id or 0))
        batch = views_of(session, rows)
        alone = [views_of(session, [call])[0] for call in rows]
        backwards = views_of(session, rows[::-1])
        assert views_of(session, []) == []
    for together, single in zip(batch, alone, strict=True):
        for field in CallView.__dataclass_fields__:
            assert getattr(together, field) == getattr(single, field), (single.number, field)
    assert batch == alone and backwards == alone[::-1]
    # The views are not all alike: each shape shows in its own view.
    done, joint, returned, extended, plain, unsure, flood, withdrawn, from_system = batch
    assert len(done.raise_photos) == 2 and len(done.evidence_photos) == 1
    assert done.resolution_note == "第二次修好" and done.rating == "satisfied"
    assert done.location_text == "大源村口" and done.caller_name == "li"
    assert joint.assisting_departments == ("housing",) and joint.caller_name == "wang"
    assert joint.assisting_department_ids == (org.housing,) and joint.lead_department == "urban"
    assert returned.lead_department_id == org.housing and returned.assisting_departments == ()
    assert extended.resolve_due is not None and plain.resolve_due is not None
    assert extended.resolve_due > plain.resolve_due  # three working days more
    assert unsure.item_name is None and unsure.lead_department is None
    assert unsure.acknowledge_due is None
    assert flood.emergency and flood.domain_name == "应急处置" and not done.emergency
    assert withdrawn.status.value == "withdrawn" and withdrawn.raise_photos == ()
    assert from_system.source == "cams" and from_system.source_media_error == "unreachable"
    assert done.source is None and done.source_media_error is None


def test_role_of_names_the_department_part(ctx: Context, org: Org) -> None:
    joint = calls.raise_call(ctx, org.caller, T0, "违建", item_code="illegal-building").id or 0
    view = call_view(ctx, joint)
    assert view.role_of(org.urban).value == "lead"  # type: ignore[union-attr]
    assert view.role_of(org.housing).value == "assisting"  # type: ignore[union-attr]
    assert view.role_of(org.water) is None


def number_twice(ctx: Context, org: Org) -> tuple[int, int]:
    """BY-2025-000012 and BY-2026-000012: twelve calls in each year."""
    made = []
    for year_start in (T0, T0 + timedelta(days=100)):
        for n in range(12):
            made.append(calls.raise_call(ctx, org.caller, year_start, f"不知道找谁 {n}").id or 0)
    return made[11], made[23]


def test_a_number_ending_several_calls_is_refused_naming_them(ctx: Context, org: Org) -> None:
    older, newer = number_twice(ctx, org)
    chat = Chat(ctx, "dispatcher", now=T0 + timedelta(days=101))
    chat.send("/assign 12 water")
    assert chat.text == ("有多件呼叫的编号以12结尾：BY-2025-000012或BY-2026-000012。"
                         "请输入完整编号。未做任何更改。")
    with Session(ctx.engine) as session:
        assert {session.get(Call, i).status.value for i in (older, newer)} == {  # type: ignore[union-attr]
            "pending_dispatch"}
    chat.send("/lang en")
    chat.send("/assign 000012 water")
    assert chat.text == ("Several calls end with 000012: BY-2025-000012 or BY-2026-000012. Please "
                         "give the full number. Nothing was changed.")
    chat.send("/lang zh_Hant")
    chat.send("/assign 12 water")
    assert chat.text.startswith("有多件呼叫的編號以12結尾：BY-2025-000012或BY-2026-000012。")
    chat.send("/assign BY-2025-000012 water")
    assert "BY-2025-000012" in chat.text and "water" in chat.text
    with Session(ctx.engine) as session:
        assert session.get(Call, older).status.value == "dispatched"  # type: ignore[union-attr]
        assert session.get(Call, newer).status.value == "pending_dispatch"  # type: ignore[union-attr]
    chat.send("/assign 7 water")  # one call ends so in each year too
    assert "BY-2025-000007或BY-2026-000007" in chat.text


def test_digits_count_only_the_calls_the_member_may_read(ctx: Context, org: Org) -> None:
    """A liaison typing "签收 12" means the water department's 12, not the one
    still waiting for the command centre (which the liaison may not read)."""
    older, newer = number_twice(ctx, org)
    calls.assign(ctx, newer, org.dispatcher, T0 + timedelta(days=100), "water")
    chat = Chat(ctx, "water-liaison", now=T0 + timedelta(days=101))
    chat.send("签收 12")
    assert "您已签收 BY-2026-000012" in chat.text
    with Session(ctx.engine) as session:
        assert session.get(Call, newer).status.value == "acknowledged"  # type: ignore[union-attr]
        assert session.get(Call, older).status.value == "pending_dispatch"  # type: ignore[union-attr]

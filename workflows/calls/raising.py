"""Raising and routing: the caller raises a call, the catalog routes it or the
dispatcher assigns it (`assign` also reroutes one nobody has acknowledged)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import select

from models import (
    AttachmentStage,
    Call,
    CallStatus,
    CatalogItem,
    Event,
    next_counter,
    unit_of_work,
)
from workflows import access
from workflows.calls._shared import (
    MAX_TEXT,
    check_move,
    clean_text,
    department_by_code,
    load_actor,
    load_call,
    move,
)
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound
from workflows.lifecycle import Action
from workflows.photos import Photo, attach_photos
from workflows.views import CallView, view_of


def call_number(prefix: str, year: int, sequence: int) -> str:
    """The readable number of a call, e.g. BY-2026-000123."""
    return f"{prefix}-{year}-{sequence:06d}"


def raise_call(
    ctx: Context,
    caller_id: int,
    now: datetime,
    text: str,
    item_code: str | None = None,
    location_text: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    photos: Sequence[Photo] = (),
    source: str | None = None,
) -> CallView:
    """A caller (town/street or village cadre) raises a call. It is routed at
    once: to the item's lead department, or to the dispatcher when no item
    was chosen ("not sure"). `source` names the system that raised it for the
    caller (an Open311 key, acting through its own caller member; see
    `workflows.sources`), None from chat."""
    body = clean_text(text, "description", required=True, limit=MAX_TEXT)
    place = clean_text(location_text, "location", required=False, limit=500)
    if (latitude is None) != (longitude is None):
        raise InvalidInput("a location needs both latitude and longitude", reason="bad_location")
    if (
        latitude is not None
        and longitude is not None
        and not (-90 <= latitude <= 90 and -180 <= longitude <= 180)
    ):
        raise InvalidInput("latitude or longitude out of range", reason="bad_location")
    with unit_of_work(ctx.engine) as session:
        caller = load_actor(session, caller_id)
        if not access.may(caller, access.Permission.RAISE_CALL):
            raise NotAllowed(f"member {caller_id} may not raise calls", action="raise")
        item = None
        if item_code is not None:
            item = session.exec(select(CatalogItem).where(CatalogItem.code == item_code)).first()
            if item is None or not item.active:
                raise NotFound(f"no catalog item {item_code!r}", what="item", code=item_code)
        year = now.astimezone(ctx.rules.tz).year
        sequence = next_counter(session, f"call-{year}")
        call = Call(
            number=call_number(ctx.rules.call_prefix, year, sequence),
            caller_id=caller_id,
            unit_id=caller.unit_id,
            item_id=item.id if item else None,
            domain_id=item.domain_id if item else None,
            text=body or "",
            location_text=place,
            latitude=latitude,
            longitude=longitude,
            status=CallStatus.RAISED,
            raised_at=now,
            source=source,
        )
        session.add(call)
        session.flush()
        attachments = attach_photos(
            session,
            ctx.media,
            call.id or 0,
            list(photos),
            AttachmentStage.RAISE,
            caller_id,
            now,
            ctx.rules.max_photo_bytes,
        )
        session.add(
            Event(
                call_id=call.id or 0,
                kind="CallRaised",
                actor_id=caller_id,
                at=now,
                to_status=CallStatus.RAISED,
                note=body,
                data={"attachments": [a.sha256 for a in attachments], "item": item_code,
                      **({"source": source} if source else {})},
            )
        )
        if item is None:
            move(ctx, session, call, Action.SEND_TO_DISPATCHER, CallStatus.PENDING_DISPATCH,
                 None, now)
        else:
            move(ctx, session, call, Action.ROUTE, CallStatus.DISPATCHED, None, now,
                 department_id=item.lead_department_id, department=item.lead_department_id)
        session.commit()
        return view_of(session, call)


def assign(ctx: Context, call_id: int, by: int, now: datetime, department_code: str) -> CallView:
    """A dispatcher (or admin) routes a call the catalog could not route, or
    reroutes one nobody has acknowledged yet. The department's clocks start now.
    A return still pending on the call is closed undecided (`SUPERSEDED`): the
    assignment is the dispatcher's answer to it."""
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, Action.ASSIGN, call)
        department = department_by_code(session, department_code)
        move(ctx, session, call, Action.ASSIGN, target, by, now,
             department_id=department.id, department=department.code)
        session.commit()
        return view_of(session, call)


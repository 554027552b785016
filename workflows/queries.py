"""Read-only questions the conversations ask: who is this, what is this call,
which calls are mine, overdue, or match some words. Nothing here writes.
Calls come back as `CallView`s, built by `workflows.views` (re-exported here),
the module the use cases build the views they return with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import col, or_, select

from models import (
    Call,
    CallRequest,
    CatalogItem,
    Domain,
    Event,
    RequestStatus,
    Unit,
    UnitKind,
    session_scope,
)
from workflows import access
from workflows.context import Context
from workflows.errors import InvalidInput, NotFound
from workflows.facts import late_calls
from workflows.lifecycle import Action
from workflows.views import CallRequestView as CallRequestView
from workflows.views import CallView as CallView
from workflows.views import view_of
from workflows.views import views_of as views_of


def domains(ctx: Context) -> list[Domain]:
    """Domains that have at least one active item, in the order set up."""
    with session_scope(ctx.engine) as session:
        used = select(CatalogItem.domain_id).where(col(CatalogItem.active).is_(True))
        return list(session.exec(
            select(Domain).where(col(Domain.id).in_(used)).order_by(col(Domain.id))
        ))


def domain(ctx: Context, domain_id: int) -> Domain | None:
    with session_scope(ctx.engine) as session:
        return session.get(Domain, domain_id)


def items(ctx: Context, domain_id: int) -> list[CatalogItem]:
    with session_scope(ctx.engine) as session:
        return list(session.exec(
            select(CatalogItem)
            .where(CatalogItem.domain_id == domain_id, col(CatalogItem.active).is_(True))
            .order_by(col(CatalogItem.id))
        ))


def item(ctx: Context, item_id: int) -> CatalogItem | None:
    with session_scope(ctx.engine) as session:
        return session.get(CatalogItem, item_id)


def departments(ctx: Context) -> list[Unit]:
    with session_scope(ctx.engine) as session:
        return list(session.exec(
            select(Unit).where(Unit.kind == UnitKind.DEPARTMENT).order_by(col(Unit.code))
        ))


def call_view(ctx: Context, call_id: int) -> CallView:
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        return view_of(session, call)


def call_by_number(ctx: Context, number: str, reader: access.Actor | None = None) -> CallView:
    """A call by its number. The digits at the end are enough when only one
    call ends so (`/assign 12` finds BY-2026-000012) — counting, for a
    `reader`, only the calls they may read; when several do (BY-2026-000012
    and BY-2027-000012), the number is refused as ambiguous, naming them,
    rather than one of them guessed."""
    text = number.strip().upper()
    with session_scope(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == text)).first()
        if call is None and text.isdigit():
            statement = select(Call).where(col(Call.number).endswith(f"-{int(text):06d}"))
            if reader is not None:
                statement = statement.where(access.readable_calls(reader))
            matches = session.exec(statement.order_by(col(Call.id))).all()
            if len(matches) > 1:
                raise InvalidInput(
                    f"{number!r} matches {len(matches)} calls", reason="ambiguous_number",
                    code=text, candidates=[match.number for match in matches])
            call = matches[0] if matches else None
        if call is None:
            raise NotFound(f"no call {number!r}", what="call", code=number)
        return view_of(session, call)


def calls_of_caller(ctx: Context, member_id: int, limit: int = 10) -> list[CallView]:
    """The member's latest calls, newest first."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(Call).where(Call.caller_id == member_id)
            .order_by(col(Call.id).desc()).limit(limit)
        ).all()
        return views_of(session, rows)


def overdue_calls(ctx: Context, now: datetime, limit: int = 30) -> list[CallView]:
    """Calls late now (`workflows.facts.late_now`: open, a deadline passed
    and its step not done), oldest first."""
    with session_scope(ctx.engine) as session:
        return views_of(session, late_calls(session, now, limit=limit))


def find_calls(ctx: Context, words: str, limit: int = 10) -> list[CallView]:
    """Calls whose number ends with `words`, or whose description or place
    contains every word; newest first."""
    terms = [w for w in words.split() if w]
    if not terms:
        return []
    with session_scope(ctx.engine) as session:
        statement = select(Call)
        if len(terms) == 1 and terms[0].replace("-", "").isalnum() and any(
            c.isdigit() for c in terms[0]
        ):
            digits = terms[0].upper()
            statement = statement.where(or_(
                col(Call.number).endswith(digits),
                col(Call.text).contains(terms[0]),
            ))
        else:
            for term in terms:
                statement = statement.where(or_(
                    col(Call.text).contains(term), col(Call.location_text).contains(term)
                ))
        rows = session.exec(statement.order_by(col(Call.id).desc()).limit(limit)).all()
        return views_of(session, rows)


def pending_request(ctx: Context, request_id: int) -> CallRequest | None:
    """The request `request_id` while it waits for a decision (the board's
    decide form: which call, which kind), else None."""
    with session_scope(ctx.engine) as session:
        request = session.get(CallRequest, request_id)
        return request if request and request.status is RequestStatus.PENDING else None


def check_may(ctx: Context, call_id: int, member_id: int, action: Action) -> CallView:
    """Refuse, as the use case itself would, unless `member_id` may do
    `action` to the call now — asked before a conversation collects a note
    or photos, so nobody types a reason only to be told no. The answer is
    `workflows.access`'s; this only loads what it needs."""
    with session_scope(ctx.engine) as session:
        call = session.get(Call, call_id)
        if call is None:
            raise NotFound(f"no call {call_id}", what="call")
        view = view_of(session, call)
        access.require(access.actor_in(session, member_id), action, view)
        return view


def event_data(ctx: Context, event_id: int) -> dict[str, Any]:
    """The data of one event of the log (e.g. an accountability dossier)."""
    with session_scope(ctx.engine) as session:
        event = session.get(Event, event_id)
        return dict(event.data) if event is not None else {}

"""The caller's actions on a call they raised — confirm and rate (评价), reject
the fix, add information, withdraw — and the system's auto-close of a
resolved call the caller left unanswered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select

from models import (
    AttachmentStage,
    Call,
    CallStatus,
    Rating,
    RatingLevel,
    unit_of_work,
)
from workflows.calls._shared import (
    MAX_REASON,
    MAX_TEXT,
    check_move,
    clean_text,
    load_actor,
    load_call,
    move,
    move_with_note,
)
from workflows.context import Context
from workflows.deadlines import after_working_days
from workflows.errors import InvalidInput
from workflows.lifecycle import Action
from workflows.lifecycle import target as lifecycle_target
from workflows.photos import Photo, attach_photos
from workflows.views import CallView, view_of, views_of


def confirm(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    level: RatingLevel,
    comment: str | None = None,
) -> CallView:
    """The caller confirms the fix and rates the department (评价); the call closes."""
    text = clean_text(comment, "comment", required=False, limit=MAX_REASON)
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, Action.CONFIRM, call)
        session.add(
            Rating(call_id=call_id, by_id=by, level=level, score=level.score, comment=text, at=now)
        )
        move(ctx, session, call, Action.CONFIRM, target, by, now, note=text, rating=level.value)
        session.commit()
        return view_of(session, call)


def reject_fix(ctx: Context, call_id: int, by: int, now: datetime, reason: str) -> CallView:
    """The caller says it is not fixed: the call reopens with the time that was
    left when it was resolved, counted in working time for a working-day limit
    (`deadlines.reopened_due`; none left → due at once, so escalation goes on)."""
    text = clean_text(reason, "reason", required=True, limit=MAX_REASON)
    return move_with_note(ctx, call_id, by, now, Action.REJECT_FIX, text)


def add_info(
    ctx: Context,
    call_id: int,
    by: int,
    now: datetime,
    text: str | None = None,
    photos: Sequence[Photo] = (),
) -> CallView:
    """The caller adds information (补充信息) — words, photos or both — to an
    open call; the department (or the dispatcher, before dispatch) is told."""
    note = clean_text(text, "description", required=False, limit=MAX_TEXT)
    if not note and not photos:
        raise InvalidInput("added information needs words or a photo", reason="empty_text",
                           field="description")
    with unit_of_work(ctx.engine) as session:
        member, call = load_actor(session, by), load_call(session, call_id)
        target = check_move(session, member, Action.ADD_INFO, call)
        attachments = attach_photos(
            session, ctx.media, call_id, list(photos), AttachmentStage.RAISE, by, now,
            ctx.rules.max_photo_bytes,
        )
        move(ctx, session, call, Action.ADD_INFO, target, by, now, note=note,
             attachments=[a.sha256 for a in attachments])
        session.commit()
        return view_of(session, call)


def withdraw(
    ctx: Context, call_id: int, by: int, now: datetime, reason: str | None = None
) -> CallView:
    """The caller withdraws a call nobody has acknowledged yet. A return still
    pending on it is closed undecided (`SUPERSEDED`): nothing is left to decide."""
    text = clean_text(reason, "reason", required=False, limit=MAX_REASON)
    return move_with_note(ctx, call_id, by, now, Action.WITHDRAW, text)


def auto_close_due(ctx: Context, now: datetime) -> list[CallView]:
    """Close, unrated, every resolved call whose caller has not answered within
    `auto_close_after_days` working days of the resolution (system action);
    returns the views of the calls it closed (built in one batch)."""
    rules = ctx.rules
    closed: list[Call] = []
    with unit_of_work(ctx.engine) as session:
        # N working days are at least N calendar days: the database skips the
        # calls resolved too recently to matter, the calendar decides the rest.
        resolved = session.exec(
            select(Call)
            .where(Call.status == CallStatus.RESOLVED,
                   col(Call.resolved_at) <= now - timedelta(days=rules.auto_close_after_days))
            .with_for_update(skip_locked=True)
        ).all()
        for call in resolved:
            assert call.resolved_at is not None
            deadline = after_working_days(
                call.resolved_at, rules.auto_close_after_days, rules.calendar, rules.policy
            )
            if deadline > now:
                continue
            target = lifecycle_target(Action.AUTO_CLOSE, call.status)
            move(ctx, session, call, Action.AUTO_CLOSE, target, None, now,
                 waited_days=rules.auto_close_after_days)
            closed.append(call)
        session.commit()
        return views_of(session, closed)

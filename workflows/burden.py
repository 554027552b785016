"""The form-burden watch (填表报数): departments' data requests to towns,
counted against the annual plan, matched with earlier similar requests so
data already reported is reused, answered once, and reported.

Who may do what is `workflows.access`'s (the permissions SEND_DATA_REQUEST,
ANSWER_DATA_REQUEST, APPROVE_OUT_OF_PLAN, READ_BURDEN_REPORT); which town a
cadre answers for is `town_cadres` / `town_of` here.

Rules decided here (see the README's "The form-burden watch"):

- **Plan** (`plan_standing`): a request names one of its department's plan
  items for the year of sending, or none. None is 计划外 (`not_in_plan`);
  an item whose yearly `count` is already used by requests sent this year is
  `over_count`, also 计划外. Out-of-plan requests still go to the towns at
  once (a town should not wait on paperwork between offices); the
  supervision office is told immediately, and a dispatcher may approve it,
  which keeps the mark in the report but takes it out of the score deduction.
- **Similar** (`similar_requests`): earlier requests of any department in the
  last 12 months, not themselves reused, whose title scores at least
  `TITLE_THRESHOLD` with rapidfuzz's WRatio and which share at least half of
  the draft's fields (a field name matching at `FIELD_THRESHOLD` with
  `fuzz.ratio`). Sending anyway while a similar request exists marks the new
  request a duplicate of the earliest match — the workflow decides this at
  sending, not the chat, so every channel counts the same.
- **Reuse by a department**: choosing an earlier request instead of sending
  records a `reused` request that asks no town.
- **Reuse by a town** ("no change since last time", `previous_answer`): the
  town's latest answer to a similar request; the fields that match are
  copied, the others asked, and the answer is marked reused.
- **Who answers for a town** (`town_cadres`): the cadres (callers) of the town
  itself; a town without any is answered by the cadres of its villages.
- **Reminders** (`remind_due`): the escalation ladder's timing (halfway, an
  hour before the deadline, then once per working day for
  `OVERDUE_REMINDERS` working days), quiet hours respected, sent only to the
  towns that have not answered — and only reminders: no urge, no
  supervision order, no referral for a town.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, utils
from sqlmodel import Session, col, select

from models import (
    DataRequest,
    DataRequestStatus,
    DataRequestTown,
    Locale,
    Member,
    PlanFlag,
    PlanItem,
    PlanKind,
    Role,
    Unit,
    UnitKind,
    next_counter,
    session_scope,
)
from workflows import access
from workflows.access import Permission
from workflows.context import Context
from workflows.deadlines import Limit, LimitUnit, due_at
from workflows.errors import InvalidInput, NotAllowed, NotFound, WrongState
from workflows.escalation import (
    ClockState,
    EscalationPolicy,
    LimitName,
    Step,
    ladder,
)
from workflows.notifications import department_contacts, dispatchers, enqueue
from workflows.planfile import PlanSpec
from workflows.stats import Period, StoredFile, stored

FIELD_KINDS = ("number", "text", "choice", "date", "photo")
MAX_FIELDS = 20
MAX_TITLE = 200
MAX_FIELD_NAME = 60
MAX_CHOICES = 10
MAX_TEXT_ANSWER = 1000
MAX_DUE_DAYS = 30
TITLE_THRESHOLD = 70.0
FIELD_THRESHOLD = 80.0
FIELD_OVERLAP = 0.5
LOOKBACK = timedelta(days=365)
OVERDUE_REMINDERS = 3  # working days of gentle reminders after the deadline
TOWN_KINDS = (UnitKind.TOWN, UnitKind.STREET)
TOWN_CADRE_ROLES = (Role.CALLER,)


# --------------------------------------------------------------------------- the plan


def load_plan(ctx: Context, plan: PlanSpec) -> int:
    """Write a checked plan: an upsert by department, year and code, in one
    transaction. Items missing from the file are kept (requests point at
    them). Returns the number of items in the file."""
    with session_scope(ctx.engine) as session:
        departments = {u.code: u.id or 0 for u in session.exec(
            select(Unit).where(Unit.kind == UnitKind.DEPARTMENT))}
        written = 0
        for code, entries in plan.departments.items():
            department_id = departments.get(code)
            if department_id is None:
                raise NotFound(f"no department {code!r}", what="department")
            for entry in entries:
                row = session.exec(select(PlanItem).where(
                    PlanItem.department_id == department_id, PlanItem.year == plan.year,
                    PlanItem.code == entry.code)).first()
                if row is None:
                    row = PlanItem(department_id=department_id, year=plan.year, code=entry.code,
                                   name=entry.name, kind=PlanKind(entry.kind), count=entry.count)
                else:
                    row.name, row.kind, row.count = entry.name, PlanKind(entry.kind), entry.count
                session.add(row)
                written += 1
        session.commit()
        return written


def plan_items(ctx: Context, department_id: int, year: int) -> list[PlanItem]:
    with session_scope(ctx.engine) as session:
        return list(session.exec(select(PlanItem).where(
            PlanItem.department_id == department_id, PlanItem.year == year)
            .order_by(col(PlanItem.id))))


def _year(ctx: Context, now: datetime) -> int:
    return now.astimezone(ctx.rules.tz).year


def _used(session: Session, plan_item_id: int) -> int:
    """Requests sent against a plan item (those reused instead of sent cost
    the towns nothing, so they use none of the count)."""
    return len(session.exec(select(DataRequest.id).where(
        DataRequest.plan_item_id == plan_item_id,
        DataRequest.status != DataRequestStatus.REUSED)).all())


def plan_standing(session: Session, department_id: int, plan_item_id: int | None,
                  year: int) -> PlanFlag:
    """How a request sent now stands against the plan (module docstring)."""
    if plan_item_id is None:
        return PlanFlag.NOT_IN_PLAN
    item = session.get(PlanItem, plan_item_id)
    if item is None or item.department_id != department_id or item.year != year:
        raise InvalidInput("not a plan item of this department and year", reason="not_plan_item")
    return PlanFlag.OVER_COUNT if _used(session, plan_item_id) >= item.count else PlanFlag.IN_PLAN


# --------------------------------------------------------------------------- drafts


@dataclass
class Draft:
    """A request as the department composed it. `towns` empty means all towns."""

    title: str
    fields: list[dict[str, Any]]
    towns: list[int] = field(default_factory=list)
    due_days: int = 3
    plan_item_id: int | None = None


def clean_title(text: str) -> str:
    title = " ".join(text.split())
    if not title:
        raise InvalidInput("the title is empty", reason="empty_title")
    if len(title) > MAX_TITLE:
        raise InvalidInput("the title is too long", reason="title_too_long", limit=MAX_TITLE)
    return title


def clean_field(name: str, kind: str, choices: Sequence[str] = ()) -> dict[str, Any]:
    """One field as stored: a name, a kind, and for a choice its options."""
    label = " ".join(name.split())
    if not label:
        raise InvalidInput("the field name is empty", reason="empty_field_name")
    if len(label) > MAX_FIELD_NAME:
        raise InvalidInput("name too long", reason="field_name_too_long", limit=MAX_FIELD_NAME)
    if kind not in FIELD_KINDS:
        raise InvalidInput(f"unknown field kind {kind!r}", reason="bad_field_kind")
    options = [c.strip() for c in choices if c.strip()]
    if kind == "choice" and not 2 <= len(options) <= MAX_CHOICES:
        raise InvalidInput("2 to 10 options", reason="bad_choices", limit=MAX_CHOICES)
    return {"name": label, "kind": kind, "choices": options if kind == "choice" else []}


def split_choices(text: str) -> list[str]:
    """Options typed on one line, separated by commas (either width), 、 or ;."""
    return [part.strip() for part in re.split(r"[,，、;；/]", text) if part.strip()]


def _check_draft(session: Session, draft: Draft) -> list[int]:
    """The draft is complete and sane; returns the town ids it asks."""
    clean_title(draft.title)
    if not 1 <= len(draft.fields) <= MAX_FIELDS:
        raise InvalidInput("1 to 20 fields", reason="bad_field_count", limit=MAX_FIELDS)
    names = [f["name"] for f in draft.fields]
    if len(set(names)) != len(names):
        raise InvalidInput("two fields have the same name", reason="same_field_name")
    if not 1 <= draft.due_days <= MAX_DUE_DAYS:
        raise InvalidInput("due in 1 to 30 working days", reason="bad_due", limit=MAX_DUE_DAYS)
    every = [u.id or 0 for u in all_towns(session)]
    if not draft.towns:
        return every
    unknown = set(draft.towns) - set(every)
    if unknown:
        raise InvalidInput("not a town", reason="bad_towns")
    return sorted(set(draft.towns))


def all_towns(session: Session) -> list[Unit]:
    return list(session.exec(select(Unit).where(col(Unit.kind).in_(TOWN_KINDS))
                             .order_by(col(Unit.id))))


def towns(ctx: Context) -> list[Unit]:
    with session_scope(ctx.engine) as session:
        return all_towns(session)


def find_towns(ctx: Context, text: str) -> list[Unit]:
    """Towns named in `text` by code or name, separated by commas, 、 or spaces;
    InvalidInput naming the first word that is no town."""
    found: list[Unit] = []
    every = towns(ctx)
    for word in re.split(r"[,，、;；\s]+", text.strip()):
        if not word:
            continue
        match = next((u for u in every if word in (u.code, u.name)), None)
        if match is None:
            raise InvalidInput(f"no town {word!r}", reason="no_town", word=word)
        if match not in found:
            found.append(match)
    if not found:
        raise InvalidInput("no town named", reason="bad_towns")
    return found


# --------------------------------------------------------------------------- similarity


_PERIOD_WORDS = re.compile(r"\d+\s*(?:年度|年|季度|月份|月|期|st|nd|rd|th)?|\b(?:q[1-4]|h[12])\b")


def _title_key(title: str) -> str:
    """A title without its dates and numbers ("2025年", "第3季度", "Q3"): the
    same form asked again next quarter is the repetition the watch looks for."""
    return " ".join(_PERIOD_WORDS.sub(" ", utils.default_process(title)).split())


def title_score(a: str, b: str) -> float:
    """How alike two titles are, 0–100: rapidfuzz's WRatio (tolerant of one
    title containing the other, of word order and a word added) on the titles
    without their periods. Chinese is compared character by character, which
    for titles this short needs no word segmentation."""
    return float(fuzz.WRatio(_title_key(a), _title_key(b)))


def matching_fields(asked: Sequence[dict[str, Any]], earlier: Sequence[dict[str, Any]]
                    ) -> dict[str, str]:
    """For each field asked, the earlier field it matches by name (best
    `fuzz.ratio` at least `FIELD_THRESHOLD`, and of the same kind)."""
    pairs: dict[str, str] = {}
    taken: set[str] = set()
    for wanted in asked:
        best, best_score = None, FIELD_THRESHOLD
        for old in earlier:
            if old["name"] in taken or old["kind"] != wanted["kind"]:
                continue
            score = fuzz.ratio(wanted["name"], old["name"], processor=utils.default_process)
            if score >= best_score:
                best, best_score = old["name"], score
        if best is not None:
            pairs[wanted["name"]] = best
            taken.add(best)
    return pairs


@dataclass(frozen=True)
class TownAnswer:
    town_id: int
    town: str
    answered_at: datetime
    values: dict[str, Any]
    reused: bool


@dataclass(frozen=True)
class Similar:
    """An earlier request like a draft, with what the towns answered."""

    request_id: int
    number: str
    title: str
    department: str
    created_at: datetime
    score: float
    shared: dict[str, str]  # draft field → earlier field
    answers: list[TownAnswer]


def _similar(session: Session, title: str, fields: Sequence[dict[str, Any]], now: datetime,
             exclude: int | None = None) -> list[Similar]:
    since = now - LOOKBACK
    earlier = session.exec(select(DataRequest).where(
        col(DataRequest.created_at) >= since, col(DataRequest.created_at) <= now,
        DataRequest.status != DataRequestStatus.REUSED).order_by(col(DataRequest.created_at)))
    names = {u.id: u.name for u in session.exec(select(Unit))}
    found: list[Similar] = []
    for request in earlier:
        if request.id == exclude:
            continue
        score = title_score(title, request.title)
        if score < TITLE_THRESHOLD:
            continue
        shared = matching_fields(fields, request.fields)
        if not fields or len(shared) / len(fields) < FIELD_OVERLAP:
            continue
        answers = [
            TownAnswer(t.town_id, names.get(t.town_id, "?"), t.answered_at, dict(t.values),
                       t.reused_from is not None)
            for t in session.exec(select(DataRequestTown).where(
                DataRequestTown.request_id == request.id,
                col(DataRequestTown.answered_at).is_not(None)).order_by(col(DataRequestTown.id)))
            if t.answered_at is not None
        ]
        found.append(Similar(request.id or 0, request.number, request.title,
                             names.get(request.department_id, "?"), request.created_at, score,
                             shared, answers))
    return found


def similar_requests(ctx: Context, title: str, fields: Sequence[dict[str, Any]],
                     now: datetime) -> list[Similar]:
    """Earlier requests (any department, last 12 months) like this draft,
    best first (module docstring)."""
    with session_scope(ctx.engine) as session:
        found = _similar(session, title, fields, now)
    return sorted(found, key=lambda s: (-s.score, -len(s.shared), s.created_at))


# --------------------------------------------------------------------------- sending


def _member(session: Session, member_id: int) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound(f"no member {member_id}", what="member")
    return member


def town_cadres(session: Session, town_id: int) -> list[Member]:
    """Who answers for a town (module docstring), by id."""
    def cadres(unit_ids: list[int]) -> list[Member]:
        if not unit_ids:
            return []
        return list(session.exec(select(Member).where(
            col(Member.unit_id).in_(unit_ids), col(Member.role).in_(TOWN_CADRE_ROLES),
            col(Member.active).is_(True)).order_by(col(Member.id))))

    own = cadres([town_id])
    if own:
        return own
    villages = [u.id or 0 for u in session.exec(select(Unit).where(Unit.parent_id == town_id))]
    return cadres(villages)


def town_of(session: Session, member: Member) -> int | None:
    """The town a cadre answers for, if they answer for one."""
    unit = session.get(Unit, member.unit_id)
    if unit is None or member.role not in TOWN_CADRE_ROLES:
        return None
    if unit.kind in TOWN_KINDS:
        return unit.id
    if unit.kind is UnitKind.VILLAGE and unit.parent_id is not None:
        return unit.parent_id
    return None


def _number(session: Session, ctx: Context, now: datetime) -> str:
    year = _year(ctx, now)
    sequence = next_counter(session, f"datarequest-{year}")
    return f"{ctx.rules.call_prefix}-SJ-{year}-{sequence:04d}"


def _supervisors(session: Session) -> list[Member]:
    return list(session.exec(select(Member).where(
        Member.role == Role.SUPERVISOR, col(Member.active).is_(True)).order_by(col(Member.id))))


def _reminder_plan(ctx: Context, request: DataRequest) -> list[tuple[str, int, datetime]]:
    """(step, repeat, send at) of the gentle ladder for a request."""
    if request.due_at is None:
        return []
    policy = EscalationPolicy(
        supervise_after=Limit(OVERDUE_REMINDERS, LimitUnit.WORKING_DAYS),
        accountability_after=Limit(OVERDUE_REMINDERS + 1, LimitUnit.WORKING_DAYS),
        quiet_hours=ctx.rules.quiet_hours, repeat_every=ctx.rules.repeat_every)
    clock = ClockState(LimitName.RESPOND, request.created_at, request.due_at, None)
    kept = {Step.REMINDER_HALFWAY: "halfway", Step.REMINDER_BEFORE: "before",
            Step.URGE: "overdue"}
    return [(kept[s.step], s.repeat, s.send_at)
            for s in ladder(clock, policy, ctx.rules.calendar, ctx.rules.policy)
            if s.step in kept]


def send_request(ctx: Context, by: int, now: datetime, draft: Draft) -> DataRequest:
    """A department's liaison or head sends a data request to towns. Flags it
    against the plan, marks it a duplicate when a similar request exists,
    and queues the towns' notices (and the supervision office's flag) in the
    same transaction."""
    with session_scope(ctx.engine) as session:
        member = _member(session, by)
        access.require(access.actor_in(session, by), Permission.SEND_DATA_REQUEST)
        town_ids = _check_draft(session, draft)
        title = clean_title(draft.title)
        flag = plan_standing(session, member.unit_id, draft.plan_item_id, _year(ctx, now))
        similar = _similar(session, title, draft.fields, now)
        request = DataRequest(
            number=_number(session, ctx, now), department_id=member.unit_id, created_by=by,
            title=title, fields=list(draft.fields), plan_item_id=draft.plan_item_id,
            plan_flag=flag, duplicate_of=min(s.request_id for s in similar) if similar else None,
            status=DataRequestStatus.OPEN, due_days=draft.due_days, created_at=now,
            due_at=due_at(now, Limit(draft.due_days, LimitUnit.WORKING_DAYS),
                          ctx.rules.calendar, ctx.rules.policy))
        session.add(request)
        session.flush()
        rid = request.id or 0
        for town_id in town_ids:
            session.add(DataRequestTown(request_id=rid, town_id=town_id))
            for cadre in town_cadres(session, town_id):
                enqueue(session, f"datarequest:{rid}:{town_id}:{cadre.id}", cadre.id or 0,
                        "data_request", now, request_id=rid)
        if request.out_of_plan:
            for person in _supervisors(session) + dispatchers(session):
                enqueue(session, f"datarequest-flag:{rid}:{person.id}", person.id or 0,
                        "data_request_flagged", now, request_id=rid, flag=flag.value)
        plan = _reminder_plan(ctx, request)
        request.next_nudge_at = min((at for _s, _r, at in plan), default=None)
        session.add(request)
        session.commit()
        return request


def reuse_request(ctx: Context, by: int, now: datetime, draft: Draft,
                  earlier_id: int) -> DataRequest:
    """The department takes an earlier similar request's answers instead of
    sending: recorded (status `reused`), no town is asked."""
    with session_scope(ctx.engine) as session:
        member = _member(session, by)
        access.require(access.actor_in(session, by), Permission.SEND_DATA_REQUEST)
        _check_draft(session, draft)
        title = clean_title(draft.title)
        earlier = session.get(DataRequest, earlier_id)
        if earlier is None or earlier.status is DataRequestStatus.REUSED:
            raise NotFound(f"no request {earlier_id}", what="request")
        if earlier_id not in {s.request_id for s in _similar(session, title, draft.fields, now)}:
            raise InvalidInput("that request is not similar to this one", reason="not_similar")
        request = DataRequest(
            number=_number(session, ctx, now), department_id=member.unit_id, created_by=by,
            title=title, fields=list(draft.fields), plan_item_id=draft.plan_item_id,
            plan_flag=PlanFlag.IN_PLAN, reuse_of=earlier_id, status=DataRequestStatus.REUSED,
            due_days=draft.due_days, created_at=now)
        session.add(request)
        session.commit()
        return request


def approve_out_of_plan(ctx: Context, request_id: int, by: int, now: datetime) -> DataRequest:
    """A dispatcher approves an out-of-plan request; the department is told.
    A second approval is refused (WrongState) and changes nothing."""
    with session_scope(ctx.engine) as session:
        access.require(access.actor_in(session, by), Permission.APPROVE_OUT_OF_PLAN)
        request = session.get(DataRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        if not request.out_of_plan or request.plan_approved_at is not None:
            raise WrongState("the request is in the plan or already approved",
                             number=request.number, reason="not_to_approve")
        request.plan_approved_by, request.plan_approved_at = by, now
        session.add(request)
        for person in department_contacts(session, request.department_id):
            enqueue(session, f"datarequest-approved:{request_id}:{person.id}", person.id or 0,
                    "data_request_approved", now, request_id=request_id)
        session.commit()
        return request


# --------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class RequestView:
    """A request as a town or a department reads it."""

    id: int
    number: str
    title: str
    department: str
    department_id: int
    fields: list[dict[str, Any]]
    created_at: datetime
    due_at: datetime | None
    plan_flag: PlanFlag
    approved: bool
    duplicate_of: str | None
    reuse_of: str | None
    status: DataRequestStatus
    towns_asked: int
    towns_answered: int


def _view(session: Session, request: DataRequest) -> RequestView:
    department = session.get(Unit, request.department_id)
    targets = session.exec(select(DataRequestTown).where(
        DataRequestTown.request_id == request.id)).all()

    def number_of(request_id: int | None) -> str | None:
        other = session.get(DataRequest, request_id) if request_id else None
        return other.number if other else None

    return RequestView(
        request.id or 0, request.number, request.title, department.name if department else "?",
        request.department_id, list(request.fields), request.created_at, request.due_at,
        request.plan_flag, request.plan_approved_at is not None, number_of(request.duplicate_of),
        number_of(request.reuse_of), request.status, len(targets),
        sum(t.answered_at is not None for t in targets))


def request_view(ctx: Context, request_id: int) -> RequestView:
    with session_scope(ctx.engine) as session:
        request = session.get(DataRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        return _view(session, request)


def open_for(ctx: Context, member_id: int) -> list[RequestView]:
    """The requests the member's town has not answered yet, oldest first."""
    with session_scope(ctx.engine) as session:
        town = town_of(session, _member(session, member_id))
        if town is None:
            return []
        targets = session.exec(select(DataRequestTown).where(
            DataRequestTown.town_id == town, col(DataRequestTown.answered_at).is_(None))
            .order_by(col(DataRequestTown.request_id))).all()
        return [_view(session, r) for t in targets
                if (r := session.get(DataRequest, t.request_id)) is not None]


def _target(session: Session, request_id: int, member: Member) -> DataRequestTown:
    access.require(access.actor_in(session, member.id or 0), Permission.ANSWER_DATA_REQUEST)
    town = town_of(session, member)
    target = session.exec(select(DataRequestTown).where(
        DataRequestTown.request_id == request_id, DataRequestTown.town_id == town)).first()
    if town is None or target is None or member.id not in {
            m.id for m in town_cadres(session, town)}:
        raise NotAllowed("this request is not for your town", reason="not_your_town")
    return target


def check_may_answer(ctx: Context, request_id: int, member_id: int) -> RequestView:
    """The request, if the member may answer it now (their town was asked
    and has not answered); NotAllowed / WrongState otherwise."""
    with session_scope(ctx.engine) as session:
        request = session.get(DataRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        target = _target(session, request_id, _member(session, member_id))
        if target.answered_at is not None:
            raise WrongState("your town has answered this request", number=request.number,
                             reason="answered")
        return _view(session, request)


@dataclass(frozen=True)
class PreviousAnswer:
    """A town's answer to an earlier similar request, mapped to this one."""

    answer_id: int
    number: str
    department: str
    answered_at: datetime
    values: dict[str, Any]  # this request's field names → the earlier values


def previous_answer(ctx: Context, request_id: int, member_id: int) -> PreviousAnswer | None:
    """The member's town's latest answer to a request similar to this one."""
    with session_scope(ctx.engine) as session:
        request = session.get(DataRequest, request_id)
        member = _member(session, member_id)
        town = town_of(session, member)
        if request is None or town is None:
            return None
        best: PreviousAnswer | None = None
        for similar in _similar(session, request.title, request.fields, request.created_at,
                                exclude=request.id):
            answer = session.exec(select(DataRequestTown).where(
                DataRequestTown.request_id == similar.request_id,
                DataRequestTown.town_id == town,
                col(DataRequestTown.answered_at).is_not(None))).first()
            if answer is None or answer.answered_at is None:
                continue
            values = {new: answer.values[old] for new, old in similar.shared.items()
                      if old in answer.values}
            if values and (best is None or answer.answered_at > best.answered_at):
                best = PreviousAnswer(answer.id or 0, similar.number, similar.department,
                                      answer.answered_at, values)
        return best


def clean_value(spec: dict[str, Any], value: Any) -> Any:
    """An answer to one field, checked for its kind (InvalidInput otherwise)."""
    kind = spec["kind"]
    text = str(value).strip() if value is not None else ""
    if not text:
        raise InvalidInput("the answer is empty", reason="empty_answer")
    if kind == "number":
        try:
            number = float(text.replace(",", "").replace("，", ""))
        except ValueError:
            raise InvalidInput("not a number", reason="not_a_number") from None
        return int(number) if number.is_integer() else number
    if kind == "date":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise InvalidInput("not a date (YYYY-MM-DD)", reason="not_a_date") from None
    if kind == "choice":
        if text not in spec["choices"]:
            raise InvalidInput("not one of the choices", reason="not_a_choice")
        return text
    if kind == "photo":
        if not re.fullmatch(r"[0-9a-f]{64}", text):
            raise InvalidInput("not a photo", reason="not_a_photo")
        return text
    if len(text) > MAX_TEXT_ANSWER:
        raise InvalidInput("answer too long", reason="answer_too_long", limit=MAX_TEXT_ANSWER)
    return text


def answer_request(ctx: Context, request_id: int, by: int, now: datetime,
                   values: dict[str, Any], reused_from: int | None = None) -> RequestView:
    """A town's cadre answers a request for their town, once: every field,
    each checked for its kind. `reused_from` marks an answer copied from the
    town's earlier one. The department is told; the request closes when every
    town has answered."""
    with session_scope(ctx.engine) as session:
        request = session.get(DataRequest, request_id)
        if request is None:
            raise NotFound(f"no request {request_id}", what="request")
        member = _member(session, by)
        target = _target(session, request_id, member)
        if target.answered_at is not None:
            raise WrongState("your town has answered this request", number=request.number,
                             reason="answered")
        cleaned = {spec["name"]: clean_value(spec, values.get(spec["name"]))
                   for spec in request.fields}
        if reused_from is not None:
            earlier = session.get(DataRequestTown, reused_from)
            if earlier is None or earlier.town_id != target.town_id:
                raise InvalidInput("not an earlier answer of your town", reason="bad_reuse")
        target.values, target.answered_at, target.answered_by = cleaned, now, by
        target.reused_from = reused_from
        session.add(target)
        session.flush()
        left = session.exec(select(DataRequestTown.id).where(
            DataRequestTown.request_id == request_id,
            col(DataRequestTown.answered_at).is_(None))).all()
        if not left:
            request.status, request.next_nudge_at = DataRequestStatus.CLOSED, None
            session.add(request)
        for person in department_contacts(session, request.department_id):
            enqueue(session, f"datarequest-answer:{target.id}:{person.id}", person.id or 0,
                    "data_answered", now, request_id=request_id, town_id=target.town_id,
                    reused=reused_from is not None)
        session.commit()
        return _view(session, request)


def answers(ctx: Context, request_id: int) -> list[TownAnswer]:
    with session_scope(ctx.engine) as session:
        names = {u.id: u.name for u in session.exec(select(Unit))}
        return [TownAnswer(t.town_id, names.get(t.town_id, "?"), t.answered_at, dict(t.values),
                           t.reused_from is not None)
                for t in session.exec(select(DataRequestTown).where(
                    DataRequestTown.request_id == request_id).order_by(col(DataRequestTown.id)))
                if t.answered_at is not None]


# --------------------------------------------------------------------------- reminders


def remind_due(ctx: Context, now: datetime, batch: int = 200) -> int:
    """Queue the reminders due at `now` to the towns that have not answered;
    each once (outbox keys), claimed with SKIP LOCKED like the call sweep.
    Returns the reminders queued (one per town and step)."""
    queued = 0
    while True:
        with session_scope(ctx.engine) as session:
            due = session.exec(
                select(DataRequest).where(col(DataRequest.next_nudge_at) <= now)
                .order_by(col(DataRequest.next_nudge_at)).limit(batch)
                .with_for_update(skip_locked=True)).all()
            for request in due:
                if request.status is not DataRequestStatus.OPEN:
                    request.next_nudge_at = None
                    session.add(request)
                    continue
                plan = _reminder_plan(ctx, request)
                waiting = session.exec(select(DataRequestTown).where(
                    DataRequestTown.request_id == request.id,
                    col(DataRequestTown.answered_at).is_(None))).all()
                ready = [(s, r, at) for s, r, at in plan if at <= now]
                if ready:
                    # After downtime only the latest due step goes out.
                    step, repeat, _at = max(ready, key=lambda p: p[2])
                    for target in waiting:
                        for cadre in town_cadres(session, target.town_id):
                            key = (f"datarequest-remind:{request.id}:{step}:{repeat}:"
                                   f"{target.town_id}:{cadre.id}")
                            enqueue(session, key, cadre.id or 0, "data_reminder", now,
                                    request_id=request.id, step=step, repeat=repeat)
                        queued += 1
                later = [at for _s, _r, at in plan if at > now]
                request.next_nudge_at = min(later) if later else None
                session.add(request)
            session.commit()
        if len(due) < batch:
            return queued


# --------------------------------------------------------------------------- the report


@dataclass
class DepartmentBurden:
    """One department's requests in a period."""

    department_id: int
    department: str
    sent: int = 0
    fields_asked: int = 0
    towns_asked: int = 0
    answers_reused: int = 0
    requests_reused: int = 0  # not sent: an earlier request's answers taken
    duplicates: int = 0
    out_of_plan: int = 0
    out_of_plan_approved: int = 0
    town_minutes: int = 0

    @property
    def town_hours(self) -> float:
        return self.town_minutes / 60


@dataclass
class TownBurden:
    town_id: int
    town: str
    forms: int = 0
    fields: int = 0
    answered: int = 0
    reused: int = 0


@dataclass(frozen=True)
class BurdenReport:
    period: Period
    minutes_per_field: int
    departments: list[DepartmentBurden]
    towns: list[TownBurden]
    total: DepartmentBurden
    tz: ZoneInfo  # the district's, for the readers' dates


def store_files(ctx: Context, result: BurdenReport, locale: Locale,
                only_department: int | None = None) -> list[StoredFile]:
    """The burden report's files (the chart, the workbook) for a reader of
    `locale`, put in the media store; none when the context has no exporter."""
    if ctx.burden_exports is None:
        return []
    return stored(ctx, ctx.burden_exports(result, locale, only_department))


def burden_report(ctx: Context, period: Period) -> BurdenReport:
    """Per department and per town, the requests created in `period`.
    Estimated town time = fields × towns asked × `minutes_per_field`."""
    minutes = ctx.rules.burden.minutes_per_field
    with session_scope(ctx.engine) as session:
        units = {u.id or 0: u for u in session.exec(select(Unit))}
        requests = session.exec(select(DataRequest).where(
            col(DataRequest.created_at) >= period.start,
            col(DataRequest.created_at) < period.end).order_by(col(DataRequest.id))).all()
        ids = [r.id or 0 for r in requests]
        targets = session.exec(select(DataRequestTown).where(
            col(DataRequestTown.request_id).in_(ids))).all() if ids else []
    by_request: dict[int, list[DataRequestTown]] = {}
    for target in targets:
        by_request.setdefault(target.request_id, []).append(target)
    departments = {u.id or 0: DepartmentBurden(u.id or 0, u.name) for u in units.values()
                   if u.kind is UnitKind.DEPARTMENT}
    town_rows = {u.id or 0: TownBurden(u.id or 0, u.name) for u in units.values()
                 if u.kind in TOWN_KINDS}
    total = DepartmentBurden(0, "")
    for request in requests:
        row = departments.setdefault(request.department_id, DepartmentBurden(
            request.department_id, units[request.department_id].name))
        asked = by_request.get(request.id or 0, [])
        for line in (row, total):
            if request.status is DataRequestStatus.REUSED:
                line.requests_reused += 1
                continue
            line.sent += 1
            line.fields_asked += len(request.fields)
            line.towns_asked += len(asked)
            line.answers_reused += sum(t.reused_from is not None for t in asked)
            line.duplicates += request.duplicate_of is not None
            line.out_of_plan += request.out_of_plan
            line.out_of_plan_approved += request.plan_approved_at is not None
            line.town_minutes += len(request.fields) * len(asked) * minutes
        for target in asked:
            town = town_rows.setdefault(target.town_id, TownBurden(
                target.town_id, units[target.town_id].name))
            town.forms += 1
            town.fields += len(request.fields)
            town.answered += target.answered_at is not None
            town.reused += target.reused_from is not None
    return BurdenReport(
        period, minutes,
        sorted(departments.values(), key=lambda d: (-d.town_minutes, -d.sent, d.department)),
        sorted(town_rows.values(), key=lambda t: (-t.forms, t.town)), total, ctx.rules.tz)


def burden_deductions(ctx: Context, period: Period) -> dict[str, float]:
    """Points off each department's score (by department code) for its
    form burden in `period`, at the configured rates (`[burden]`
    `deduct_out_of_plan`, `deduct_duplicate`); `workflows.stats.report`
    takes them off the call score."""
    rules = ctx.rules.burden
    rows = burden_report(ctx, period).departments
    with session_scope(ctx.engine) as session:
        codes = {u.id or 0: u.code for u in session.exec(
            select(Unit).where(Unit.kind == UnitKind.DEPARTMENT))}
    points = {codes[row.department_id]: burden_deduction(row, rules.deduct_out_of_plan,
                                                         rules.deduct_duplicate)
              for row in rows if row.department_id in codes}
    return {code: value for code, value in points.items() if value}


def burden_deduction(row: DepartmentBurden, per_out_of_plan: float,
                     per_duplicate: float) -> float:
    """Points off a department's score for its burden in a period: per
    out-of-plan request not approved, and per duplicate. Both rates default
    to 0 (off) in the settings."""
    unapproved = row.out_of_plan - row.out_of_plan_approved
    return unapproved * per_out_of_plan + row.duplicates * per_duplicate


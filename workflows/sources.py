"""Calls from other systems — video analytics, enterprise safety sensors,
water-quality monitors — speaking Open311 GeoReport v2 through `bot/open311`.

The rules a machine source is held to live here, and go through the same use
cases as the chat (`workflows.calls.raise_call` / `add_info`):

- **Identity.** Each API key acts through a member of its own: role caller,
  the key's unit, `system=True` (never messaged). So the event log names who
  raised the call and the lifecycle's caller rules hold unchanged; the call
  also records the key's name as its `source`, shown in alerts and reports.
- **Keys** are 32 random bytes (URL-safe base64), shown once, stored as their
  SHA-256. A slow password hash (bcrypt, argon2) is for low-entropy secrets a
  person chose, where an attacker who stole the table could try likely
  guesses; a 256-bit random key cannot be guessed, so a single SHA-256 is as
  strong and lets each request be checked by one indexed lookup.
- **Permissions** (`may`): a key raises calls only for its allowed items (all
  active items when none were given) and reads only the calls it raised.
- **Idempotency.** An `external_id` identifies the event in the source: the
  same `(key, external_id)` again returns the call it made and changes
  nothing (a retried POST). Without `external_id` every POST is a new event.
- **Repeats.** A *new* event from the same key for the same item at the same
  place (the same address text, or within `REPEAT_RADIUS_METRES`) while an
  earlier call from it is still open is added to that call as information
  (补充信息) rather than raising another call — a camera that sees the same
  stall every five minutes makes one call, with its later sightings on it.
- **Bursts.** A key may send `per_minute` new events in any 60 seconds
  (counted from the stored events, so it holds across processes; two
  requests racing at the edge may both pass — a soft limit). Over it, the
  request is refused with the seconds to wait. Replays are not counted.
- **Media.** A `media_url` photo is fetched by `bot/` (this module takes the
  fetcher as a function, so no HTTP client is imported here) after the event
  is claimed; a fetch that fails keeps the call and notes why on it.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from models import (
    CALLER_UNIT_KINDS,
    ApiKey,
    Call,
    CallStatus,
    CatalogItem,
    Domain,
    Event,
    Locale,
    Member,
    Role,
    SourceEvent,
    Unit,
    session_scope,
)
from workflows import access, calls
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound, WorkflowError, WrongState
from workflows.lifecycle import OPEN_FOR_INFO
from workflows.photos import Photo
from workflows.views import CallView

KEY_BYTES = 32
PREFIX_CHARS = 8
MAX_EXTERNAL_ID = 128
EXTERNAL_ID_PATTERN = "^[!-~]{1,128}$"  # visible ASCII: safe in logs, URLs and keys
MAX_ADDRESS = 500
MAX_MEDIA_URL = 2048
# What a system sends fits a call's text (`calls.MAX_TEXT`) with room to
# spare: the description, then up to MAX_ATTRIBUTES lines "name: value".
MAX_DESCRIPTION = 1000
MAX_ATTRIBUTES = 10
MAX_ATTRIBUTE_NAME = 32
MAX_ATTRIBUTE_VALUE = 60
ATTRIBUTE_PATTERN = r"^attribute\[[^\]]{1,32}\]$"
MULTI_ATTRIBUTE_PATTERN = r"^attribute\[([^\]]{1,32})\]\[\]$"  # a multivaluelist's choices
MAX_PAGE = 100_000
# Shared with the OpenAPI document, in the subset of regex syntax Python and
# JSON Schema (ECMA-262) read alike, so "valid by the document" is "accepted".
MEDIA_URL_PATTERN = "^https?://[!-~]+$"
# "Has some text": a character neither Python nor ECMA-262 counts as space.
SOME_TEXT_PATTERN = "[^\\s\\x1c-\\x1f\\x85\\ufeff]"
REPEAT_RADIUS_METRES = 50.0
RATE_WINDOW = timedelta(seconds=60)
# A claimed event whose call was never recorded (the process died between the
# two) may be taken over by a retry after this long.
STALE_CLAIM = timedelta(minutes=2)
MAX_PAGE_SIZE = 200
DEFAULT_READ_WINDOW = timedelta(days=90)

# How GeoReport v2's two statuses read a call: "closed" once the department
# has resolved it (or it was withdrawn); a rejected fix makes it open again.
CLOSED_STATUSES = frozenset({CallStatus.RESOLVED, CallStatus.CLOSED, CallStatus.WITHDRAWN})

# Why a media_url gave no photo (`SourceEvent.media_error`, shown on the card).
MEDIA_TOO_LARGE = "too_large"
MEDIA_NOT_AN_IMAGE = "not_an_image"
MEDIA_UNREACHABLE = "unreachable"
MEDIA_FORBIDDEN_ADDRESS = "forbidden_address"


class RateLimited(WorkflowError):
    """The key sent more events than it may in a minute; try after `retry_after` s."""

    code = "rate_limited"


# --- keys -------------------------------------------------------------------


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class SourceKey:
    """An authenticated key, as the API acts with it."""

    id: int
    name: str
    unit_id: int
    member_id: int
    items: tuple[str, ...] | None
    per_minute: int
    locale: Locale
    actor: access.Actor  # the key's member, as `workflows.access` sees it


@dataclass(frozen=True)
class KeyInfo:
    """A key as `youhu apikey list` shows it (never the key itself)."""

    name: str
    prefix: str
    unit_code: str
    items: tuple[str, ...] | None
    per_minute: int
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class NewKey:
    name: str
    key: str


def _check_name(name: str) -> str:
    cleaned = name.strip()
    if not (1 <= len(cleaned) <= 48) or not all(
        c.isascii() and (c.isalnum() or c in "-_.") for c in cleaned
    ):
        raise InvalidInput(f"{name!r} is not a key name: 1-48 ASCII letters, digits, - _ .",
                           reason="bad_name", field="name")
    return cleaned


def create_key(
    ctx: Context,
    name: str,
    unit_code: str,
    now: datetime,
    items: Sequence[str] | None = None,
    per_minute: int = 60,
    locale: Locale = Locale.ZH_HANS,
) -> NewKey:
    """An admin (on the command line) gives a system a key: it raises calls
    for `unit_code` (a town, street or village), for `items` only when given.
    Returns the key, which is not stored and cannot be shown again."""
    cleaned = _check_name(name)
    if per_minute < 1:
        raise InvalidInput("per_minute must be at least 1", reason="bad_rate", field="per_minute")
    with session_scope(ctx.engine) as session:
        unit = session.exec(select(Unit).where(Unit.code == unit_code)).first()
        if unit is None or unit.kind not in CALLER_UNIT_KINDS:
            raise NotFound(f"no town, street or village {unit_code!r}", what="unit",
                           code=unit_code)
        if session.exec(select(ApiKey).where(ApiKey.name == cleaned)).first() is not None:
            raise InvalidInput(f"a key named {cleaned!r} exists", reason="duplicate",
                               field="name")
        wanted = sorted(set(items)) if items else None
        if wanted:
            known = set(session.exec(
                select(CatalogItem.code).where(col(CatalogItem.code).in_(wanted))
            ).all())
            unknown = [code for code in wanted if code not in known]
            if unknown:
                raise NotFound(f"no catalog item {', '.join(unknown)}", what="item",
                               code=unknown[0])
        member_code = f"system:{cleaned}"
        if session.exec(select(Member).where(Member.code == member_code)).first() is not None:
            raise InvalidInput(f"member {member_code!r} exists", reason="duplicate",
                               field="name")
        member = Member(code=member_code, name=cleaned, role=Role.CALLER, unit_id=unit.id or 0,
                        locale=locale, system=True, created_at=now)
        session.add(member)
        session.flush()
        key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
        session.add(ApiKey(name=cleaned, key_hash=hash_key(key), prefix=key[:PREFIX_CHARS],
                           unit_id=unit.id or 0, member_id=member.id or 0, items=wanted,
                           per_minute=per_minute, created_at=now))
        session.commit()
        return NewKey(cleaned, key)


def list_keys(ctx: Context) -> list[KeyInfo]:
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(ApiKey, Unit).join(Unit, col(Unit.id) == col(ApiKey.unit_id))
            .order_by(col(ApiKey.name))
        ).all()
        return [KeyInfo(key.name, key.prefix, unit.code,
                        tuple(key.items) if key.items is not None else None, key.per_minute,
                        key.created_at, key.revoked_at) for key, unit in rows]


def revoke_key(ctx: Context, name: str, now: datetime) -> KeyInfo:
    """Revoke a key at once; its member is deactivated, its calls stay."""
    with session_scope(ctx.engine) as session:
        key = session.exec(select(ApiKey).where(ApiKey.name == name)).first()
        if key is None:
            raise NotFound(f"no key named {name!r}", what="key", code=name)
        if key.revoked_at is not None:
            raise WrongState(f"the key {name!r} is already revoked", status="revoked")
        key.revoked_at = now
        member = session.get(Member, key.member_id)
        if member is not None:
            member.active = False
            session.add(member)
        session.add(key)
        session.commit()
    return next(info for info in list_keys(ctx) if info.name == name)


def authenticate(ctx: Context, key: str) -> SourceKey | None:
    """The key behind `key`, or None for an unknown or revoked one."""
    if not key or len(key) > 256:
        return None
    with session_scope(ctx.engine) as session:
        row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
        if row is None or row.revoked_at is not None:
            return None
        member = session.get(Member, row.member_id)
        if member is None or not member.active:
            return None
        return SourceKey(row.id or 0, row.name, row.unit_id, row.member_id,
                         tuple(row.items) if row.items is not None else None, row.per_minute,
                         member.locale, access.actor_in(session, row.member_id))


# --- the permission policy ------------------------------------------------------


def may(key: SourceKey, what: Literal["raise", "read"], *, item_code: str | None = None,
        call: access.CallFacts | None = None) -> bool:
    """Whether `key` may raise a call for `item_code` or read `call`. The
    policy (`workflows.access.may`, the same as the chat's) decides for the
    key's member; a key adds one narrowing of its own, its allowed items."""
    if what == "raise":
        return access.may(key.actor, access.Permission.RAISE_CALL) and (
            key.items is None or item_code in key.items)
    return call is not None and access.may(key.actor, access.Permission.READ_CALL, call)


# --- the catalog as services -------------------------------------------------------


@dataclass(frozen=True)
class ServiceAttribute:
    """An attribute a system sends with a call on an item (catalog `attributes`)."""

    code: str
    description: str
    datatype: str  # string, number, datetime, text, singlevaluelist, multivaluelist
    required: bool
    values: tuple[tuple[str, str], ...]  # (key, name) of a list's choices

    @classmethod
    def of(cls, data: dict[str, Any]) -> ServiceAttribute:
        return cls(str(data["code"]), str(data["description"]), str(data["datatype"]),
                   bool(data.get("required")),
                   tuple((str(v["key"]), str(v["name"])) for v in data.get("values") or ()))


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    domain_code: str
    domain_name: str
    emergency: bool
    attributes: tuple[ServiceAttribute, ...] = ()
    keywords: tuple[str, ...] = ()  # the catalog's, for GeoReport's own `keywords`


def services(ctx: Context) -> list[Service]:
    """The active catalog items, by domain."""
    with session_scope(ctx.engine) as session:
        rows = session.exec(
            select(CatalogItem, Domain).join(Domain, col(Domain.id) == col(CatalogItem.domain_id))
            .where(col(CatalogItem.active).is_(True))
            .order_by(col(Domain.id), col(CatalogItem.id))
        ).all()
        return [Service(item.code, item.name, domain.code, domain.name, domain.emergency,
                        tuple(ServiceAttribute.of(a) for a in item.attributes or ()),
                        tuple(item.keywords or ()))
                for item, domain in rows]


def service(ctx: Context, code: str) -> Service:
    found = [s for s in services(ctx) if s.code == code]
    if not found:
        raise NotFound(f"no service {code!r}", what="item", code=code)
    return found[0]


# --- raising from a source -----------------------------------------------------------


@dataclass(frozen=True)
class FetchedMedia:
    """What fetching a media_url gave: a photo, or why not (`MEDIA_*`)."""

    photo: Photo | None = None
    error: str | None = None


@dataclass(frozen=True)
class SourceReport:
    """One event as a system posts it (GeoReport v2's POST requests fields)."""

    service_code: str
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    address: str | None = None
    external_id: str | None = None
    media_url: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Accepted:
    """The answer to a POST: the call's number (None while a concurrent first
    delivery of the same event is still being raised: use the token)."""

    token: str
    number: str | None
    added_to_existing: bool = False
    replayed: bool = False


def _validate(report: SourceReport, key: SourceKey, item: CatalogItem | None) -> None:
    if not report.service_code:
        raise InvalidInput("service_code is required", reason="missing", field="service_code")
    if item is None or not item.active:
        raise InvalidInput(f"no service {report.service_code!r}", reason="unknown",
                           field="service_code")
    if not may(key, "raise", item_code=item.code):
        raise NotAllowed(f"the key {key.name!r} may not raise {item.code!r}",
                         action="raise", field="service_code")
    has_point = report.latitude is not None or report.longitude is not None
    if has_point and (report.latitude is None or report.longitude is None):
        raise InvalidInput("lat and long go together", reason="bad_location", field="lat")
    if report.latitude is not None and report.longitude is not None and not (
        -90 <= report.latitude <= 90 and -180 <= report.longitude <= 180
    ):
        raise InvalidInput("lat or long out of range", reason="bad_location", field="lat")
    if not has_point and not re.search(SOME_TEXT_PATTERN, report.address or ""):
        raise InvalidInput("a location is required: lat and long, or address_string",
                           reason="missing", field="address_string")
    if len((report.address or "").strip()) > MAX_ADDRESS:
        raise InvalidInput(f"address_string is over {MAX_ADDRESS} characters",
                           reason="too_long", field="address_string")
    _check_attributes(report, item)
    if len((report.description or "").strip()) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is over {MAX_DESCRIPTION} characters",
                           reason="too_long", field="description")
    if len(report.attributes) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes", reason="too_many",
                           field="attribute")
    for name, value in report.attributes.items():
        if not 1 <= len(name) <= MAX_ATTRIBUTE_NAME or len(value) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(f"attribute[{name[:MAX_ATTRIBUTE_NAME]}]: a name of 1-"
                               f"{MAX_ATTRIBUTE_NAME} characters and a value of at most "
                               f"{MAX_ATTRIBUTE_VALUE}", reason="too_long", field="attribute")
    if report.external_id is not None and not re.fullmatch(EXTERNAL_ID_PATTERN,
                                                           report.external_id):
        raise InvalidInput(f"external_id must be 1-{MAX_EXTERNAL_ID} visible ASCII characters",
                           reason="bad_value", field="external_id")
    if report.media_url is not None and (
        len(report.media_url) > MAX_MEDIA_URL
        or not re.fullmatch(MEDIA_URL_PATTERN, report.media_url)
    ):
        raise InvalidInput("must be an http:// or https:// address (visible ASCII)",
                           reason="bad_value", field="media_url")


def _check_attribute(attribute: ServiceAttribute, value: str) -> None:
    def refuse(why: str) -> InvalidInput:
        return InvalidInput(f"attribute[{attribute.code}]: {why}", reason="bad_value",
                            field=f"attribute[{attribute.code}]")

    keys = {key for key, _ in attribute.values}
    if attribute.datatype == "number":
        try:
            if not math.isfinite(float(value)):
                raise ValueError(value)
        except ValueError:
            raise refuse("not a number") from None
    elif attribute.datatype == "datetime":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise refuse("not a W3C date-time") from None
    elif attribute.datatype == "singlevaluelist" and value not in keys:
        raise refuse(f"one of {', '.join(sorted(keys))}")
    elif attribute.datatype == "multivaluelist" and not set(value.split(",")) <= keys:
        raise refuse(f"some of {', '.join(sorted(keys))}")


def _check_attributes(report: SourceReport, item: CatalogItem) -> None:
    """An item that declares attributes takes those only, its required ones
    given, each value of its type; an item that declares none takes any."""
    declared = {a.code: a for a in (ServiceAttribute.of(d) for d in item.attributes or ())}
    if not declared:
        return
    for code, attribute in declared.items():
        if attribute.required and not report.attributes.get(code, "").strip():
            raise InvalidInput(f"attribute[{code}]: required for {item.code}",
                               reason="missing", field=f"attribute[{code}]")
    for code, value in report.attributes.items():
        if code not in declared:
            raise InvalidInput(f"attribute[{code}]: not an attribute of {item.code} "
                               f"({', '.join(declared)})", reason="unknown",
                               field=f"attribute[{code}]")
        if value.strip():
            _check_attribute(declared[code], value)


def _description(report: SourceReport, item: CatalogItem) -> str:
    """The call's text: the description (the item's name when the system sent
    none), then the attributes it sent, one per line — by their description
    and, for lists, the names of the chosen values, when the item declares them."""
    text = (report.description or "").strip() or item.name
    declared = {a.code: a for a in (ServiceAttribute.of(d) for d in item.attributes or ())}
    extra = []
    for code, value in sorted(report.attributes.items()):
        attribute = declared.get(code)
        if attribute is None:
            extra.append(f"{code}: {value}")
            continue
        names = dict(attribute.values)
        shown = "、".join(names.get(key, key) for key in value.split(",")) if names else value
        extra.append(f"{attribute.description}: {shown}")
    whole = "\n".join([text, *extra])
    # Long choice names could push a full report past a call's text limit.
    return whole if len(whole) <= calls.MAX_TEXT else whole[: calls.MAX_TEXT - 1] + "…"


def _distance_metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def _same_place(call: Call, report: SourceReport) -> bool:
    address = " ".join((report.address or "").split()).casefold()
    if address and address == " ".join((call.location_text or "").split()).casefold():
        return True
    if None in (report.latitude, report.longitude, call.latitude, call.longitude):
        return False
    here = (float(report.latitude or 0), float(report.longitude or 0))
    there = (float(call.latitude or 0), float(call.longitude or 0))
    return _distance_metres(here, there) <= REPEAT_RADIUS_METRES


def _open_call_to_repeat(session: Session, key: SourceKey, item: CatalogItem,
                         report: SourceReport) -> Call | None:
    # Only the key's own calls: a repeat is added to its call (`add_info`, the caller's).
    candidates = session.exec(
        select(Call).where(col(Call.caller_id) == key.member_id, Call.item_id == item.id,
                           col(Call.status).in_(OPEN_FOR_INFO))
        .order_by(col(Call.id).desc()).limit(100)
    ).all()
    return next((call for call in candidates if _same_place(call, report)), None)


def _replay(session: Session, key: SourceKey, external_id: str | None,
            now: datetime) -> Accepted | None:
    """The answer already given to this event, if it was accepted before.
    A claim left by a process that died mid-way is cleared for a retry."""
    if external_id is None:
        return None
    event = session.exec(select(SourceEvent).where(
        SourceEvent.api_key_id == key.id, SourceEvent.external_id == external_id)).first()
    if event is None:
        return None
    if event.call_id is None:
        if event.received_at > now - STALE_CLAIM:
            return Accepted(event.token, None, replayed=True)
        session.delete(event)
        session.commit()
        return None
    call = session.get(Call, event.call_id)
    return Accepted(event.token, call.number if call else None, event.added_to_existing,
                    replayed=True)


def _check_rate(session: Session, key: SourceKey, now: datetime) -> None:
    since = now - RATE_WINDOW
    recent = session.exec(
        select(SourceEvent.received_at)
        .where(SourceEvent.api_key_id == key.id, col(SourceEvent.received_at) > since)
        .order_by(col(SourceEvent.received_at).desc()).limit(key.per_minute)
    ).all()
    if len(recent) >= key.per_minute:
        oldest = min(recent)
        wait = max(1, math.ceil((oldest + RATE_WINDOW - now).total_seconds()))
        raise RateLimited(f"the key {key.name!r} sent {key.per_minute} events in a minute",
                          retry_after=wait, limit=key.per_minute)


def accept(
    ctx: Context,
    key: SourceKey,
    report: SourceReport,
    now: datetime,
    fetch: Callable[[str], FetchedMedia],
) -> Accepted:
    """A system (through its key) reports an event: the call it raises, or the
    open call it adds to, or — for an event it sent before — the call it made
    then. Refuses (InvalidInput / NotAllowed / RateLimited) storing nothing.
    `fetch` gets the media_url's photo; it is called only for a new event."""
    with session_scope(ctx.engine) as session:
        item = session.exec(
            select(CatalogItem).where(CatalogItem.code == report.service_code)).first()
        _validate(report, key, item)
        assert item is not None
        answered = _replay(session, key, report.external_id, now)
        if answered is not None:
            return answered
        _check_rate(session, key, now)
        claim = SourceEvent(api_key_id=key.id, external_id=report.external_id,
                            token=secrets.token_hex(16), media_url=report.media_url,
                            received_at=now)
        session.add(claim)
        try:
            session.commit()
        except IntegrityError:
            # The same event arrived twice at once: the other request raises it.
            session.rollback()
            answered = _replay(session, key, report.external_id, now)
            if answered is not None:
                return answered
            raise
        repeat = _open_call_to_repeat(session, key, item, report)
        item_code, claim_id = item.code, claim.id
    try:
        media = fetch(report.media_url) if report.media_url else FetchedMedia()
        photos = [media.photo] if media.photo is not None else []
        text = _description(report, item)
        call: CallView | None = None
        if repeat is not None:
            try:
                call = calls.add_info(ctx, repeat.id or 0, key.member_id, now, text, photos)
            except WrongState:
                call = None  # closed in the meantime: the event raises a new call
        if call is None:
            call = calls.raise_call(ctx, key.member_id, now, text, item_code,
                                    location_text=(report.address or "").strip() or None,
                                    latitude=report.latitude, longitude=report.longitude,
                                    photos=photos, source=key.name)
    except BaseException:
        with session_scope(ctx.engine) as session:
            stale = session.get(SourceEvent, claim_id)
            if stale is not None:
                session.delete(stale)
                session.commit()
        raise
    with session_scope(ctx.engine) as session:
        row = session.get(SourceEvent, claim_id)
        assert row is not None
        row.call_id = call.id
        row.added_to_existing = repeat is not None and call.id == repeat.id
        row.media_error = media.error
        session.add(row)
        session.commit()
        return Accepted(row.token, call.number, row.added_to_existing)


# --- reading requests back -----------------------------------------------------------


@dataclass(frozen=True)
class RequestView:
    """A call as GeoReport v2 shows it."""

    number: str
    status: CallStatus
    service_code: str | None
    service_name: str | None
    description: str
    agency: str | None
    address: str | None
    latitude: float | None
    longitude: float | None
    media_url: str | None
    media_error: str | None
    resolution_note: str | None
    requested_at: datetime
    updated_at: datetime
    expected_at: datetime | None


@dataclass(frozen=True)
class RequestFilter:
    numbers: tuple[str, ...] = ()
    service_code: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: tuple[Literal["open", "closed"], ...] = ()
    page: int = 1
    page_size: int = 50


def _views(session: Session, rows: Sequence[Call]) -> list[RequestView]:
    ids = [call.id for call in rows]
    if not ids:
        return []
    updated = dict(session.exec(
        select(Event.call_id, func.max(Event.at)).where(col(Event.call_id).in_(ids))
        .group_by(col(Event.call_id))
    ).all())
    notes = dict(session.exec(
        select(Event.call_id, Event.note).where(col(Event.call_id).in_(ids),
                                                Event.kind == "CallResolved")
        .order_by(col(Event.id))
    ).all())
    firsts: dict[int, SourceEvent] = {}
    for event in session.exec(select(SourceEvent).where(col(SourceEvent.call_id).in_(ids))
                              .order_by(col(SourceEvent.id).desc())):
        firsts[event.call_id or 0] = event  # the first event (lowest id) wins
    items = {item.id: item for item in session.exec(select(CatalogItem).where(
        col(CatalogItem.id).in_([c.item_id for c in rows if c.item_id is not None])))}
    units = {unit.id: unit.name for unit in session.exec(select(Unit).where(
        col(Unit.id).in_([c.lead_department_id for c in rows if c.lead_department_id])))}
    views = []
    for call in rows:
        item = items.get(call.item_id)
        first = firsts.get(call.id or 0)
        views.append(RequestView(
            number=call.number, status=call.status,
            service_code=item.code if item else None, service_name=item.name if item else None,
            description=call.text, agency=units.get(call.lead_department_id),
            address=call.location_text, latitude=call.latitude, longitude=call.longitude,
            media_url=first.media_url if first else None,
            media_error=first.media_error if first else None,
            resolution_note=notes.get(call.id or 0),
            requested_at=call.raised_at, updated_at=updated.get(call.id or 0, call.raised_at),
            expected_at=call.resolve_due))
    return views


def find_requests(ctx: Context, key: SourceKey, wanted: RequestFilter,
                  now: datetime) -> list[RequestView]:
    """The calls `key` may read that match, newest first, one page. Without
    ids or dates, the last 90 days (as GeoReport v2 suggests)."""
    if not 1 <= wanted.page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(f"page_size is 1 to {MAX_PAGE_SIZE}", reason="bad_value",
                           field="page_size")
    if wanted.page < 1:
        raise InvalidInput("page starts at 1", reason="bad_value", field="page")
    conditions: list[Any] = [access.readable_calls(key.actor)]
    if wanted.numbers:
        conditions.append(col(Call.number).in_(wanted.numbers))
    elif wanted.start is None and wanted.end is None:
        conditions.append(col(Call.raised_at) >= now - DEFAULT_READ_WINDOW)
    if wanted.start is not None:
        conditions.append(col(Call.raised_at) >= wanted.start)
    if wanted.end is not None:
        conditions.append(col(Call.raised_at) <= wanted.end)
    if set(wanted.statuses) == {"open"}:
        conditions.append(col(Call.status).not_in(CLOSED_STATUSES))
    elif set(wanted.statuses) == {"closed"}:
        conditions.append(col(Call.status).in_(CLOSED_STATUSES))
    with session_scope(ctx.engine) as session:
        statement = select(Call).where(*conditions)
        if wanted.service_code:
            statement = statement.join(
                CatalogItem, col(CatalogItem.id) == col(Call.item_id)
            ).where(CatalogItem.code == wanted.service_code)
        rows = session.exec(
            statement.order_by(col(Call.raised_at).desc(), col(Call.id).desc())
            .offset((wanted.page - 1) * wanted.page_size).limit(wanted.page_size)
        ).all()
        return _views(session, rows)


def find_request(ctx: Context, key: SourceKey, number: str) -> RequestView:
    """One call `key` may read; any other is "not found" (no hint it exists)."""
    with session_scope(ctx.engine) as session:
        call = session.exec(select(Call).where(Call.number == number)).first()
        if call is None or not may(key, "read", call=access.facts(session, call)):
            raise NotFound(f"no request {number!r}", what="call", code=number)
        return _views(session, [call])[0]


def find_token(ctx: Context, key: SourceKey, token: str) -> Accepted:
    """What a token from POST stands for: the call's number once it exists."""
    with session_scope(ctx.engine) as session:
        event = session.exec(select(SourceEvent).where(
            SourceEvent.token == token, SourceEvent.api_key_id == key.id)).first()
        if event is None:
            raise NotFound(f"no token {token!r}", what="token", code=token)
        call = session.get(Call, event.call_id) if event.call_id is not None else None
        return Accepted(event.token, call.number if call else None, event.added_to_existing)

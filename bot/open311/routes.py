"""The GeoReport v2 endpoints, mounted at `/open311/v2/` by `youhu run`.

| endpoint | key | what |
|---|---|---|
| GET services.{json,xml} | optional | the catalog's active items |
| GET services/{code}.{fmt} | optional | an item's attribute definitions |
| POST requests.{fmt} | required | raise a call (or add to the open one it repeats) |
| GET requests.{fmt} | required | the calls the key raised, filtered, a page at a time |
| GET requests/{id}.{fmt} | required | one of them |
| GET tokens/{token}.{fmt} | required | the call a POST's token stands for |
| GET openapi.json | none | this API as OpenAPI 3.1 |

The key goes in the `api_key` parameter (form field or query string, as the
spec has it) or an `X-Api-Key` header. `jurisdiction_id` is accepted and
ignored: one youhu serves one district. Errors are the spec's list of
`{code, description}`; a 400 names the field first ("lat: …").
"""

from __future__ import annotations

import math
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, cast
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.open311.media import MediaFetcher
from bot.open311.openapi import openapi_document
from bot.open311.render import FORMATS, error, respond
from bot.web import read_body
from handlers import labels
from handlers.i18n import Translator
from workflows import sources
from workflows.context import Context
from workflows.errors import InvalidInput, NotAllowed, NotFound, WorkflowError
from workflows.sources import FetchedMedia, RequestFilter, RequestView, SourceKey, SourceReport

PREFIX = "/open311/v2"
MAX_IDS = 100
ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

Endpoint = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    """A request this layer refuses before any workflow runs."""

    def __init__(self, status_code: int, description: str) -> None:
        super().__init__(description)
        self.status_code = status_code
        self.description = description


def _field_error(failure: WorkflowError) -> str:
    field, text = failure.params.get("field"), str(failure)
    return f"{field}: {text}" if field and not text.startswith(str(field)) else text


class Open311Api:
    """The endpoints, sharing the context, the clock and the media fetcher."""

    def __init__(self, ctx: Context, now: Callable[[], datetime], max_body_bytes: int,
                 fetch: Callable[[str], FetchedMedia]) -> None:
        self.ctx = ctx
        self.now = now
        self.max_body_bytes = max_body_bytes
        self.fetch = fetch

    # --- plumbing ---------------------------------------------------------------

    def endpoint(self, methods: tuple[str, ...],
                 handle: Callable[[Request, str], Awaitable[Response]]) -> Endpoint:
        """Check the format and method, run `handle`, and turn refusals into
        the spec's errors."""

        async def run(request: Request) -> Response:
            fmt = str(request.path_params.get("fmt", "json"))
            if fmt not in FORMATS:
                return error("json", 404, f"format: .{fmt} is not served; use .json or .xml")
            if request.method not in methods and not (request.method == "HEAD"
                                                      and "GET" in methods):
                return error(fmt, 405, f"method: {request.method} is not allowed here",
                             {"Allow": ", ".join(methods)})
            # A NUL character is in no valid field, and PostgreSQL cannot store
            # or compare it: refused with the field named, before any work (the
            # key is only hashed, jurisdiction_id is ignored: both may hold anything).
            for name, value in request.query_params.multi_items():
                if name in ("api_key", "jurisdiction_id"):
                    continue
                if "\x00" in name or "\x00" in value:
                    return error(fmt, 400, f"{name.replace(chr(0), '')}: contains a NUL character")
            try:
                return await handle(request, fmt)
            except BadRequest as refused:
                return error(fmt, refused.status_code, refused.description)
            except sources.RateLimited as limited:
                wait = int(limited.params.get("retry_after", 60))
                return error(fmt, 429, f"{limited}; retry after {wait} s",
                             {"Retry-After": str(wait)})
            except InvalidInput as invalid:
                return error(fmt, 400, _field_error(invalid))
            except NotAllowed as refused:
                return error(fmt, 403, _field_error(refused))
            except NotFound as missing:
                return error(fmt, 404, str(missing))
            except WorkflowError as refused:
                return error(fmt, 400, str(refused))

        return run

    async def key(self, given: str | None, required: bool) -> SourceKey | None:
        if not given:
            if required:
                raise BadRequest(403, "api_key: an API key is required")
            return None
        key = await run_in_threadpool(sources.authenticate, self.ctx, given)
        if key is None:
            raise BadRequest(403, "api_key: the key is unknown or revoked")
        return key

    @staticmethod
    def given_key(request: Request, form: dict[str, str] | None = None) -> str | None:
        return (request.headers.get("x-api-key") or (form or {}).get("api_key")
                or request.query_params.get("api_key"))

    def _datetime(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.ctx.rules.tz).isoformat(timespec="seconds") \
            if moment is not None else None

    def _parse_datetime(self, name: str, text: str | None) -> datetime | None:
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as failure:
            raise BadRequest(400, f"{name}: not a W3C date-time ({failure})") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=self.ctx.rules.tz)

    # --- services --------------------------------------------------------------------

    async def services(self, request: Request, fmt: str) -> Response:
        await self.key(self.given_key(request), required=False)
        rows = await run_in_threadpool(sources.services, self.ctx)
        return respond(fmt, "services", "service", [{
            "service_code": s.code, "service_name": s.name,
            "description": f"{s.domain_name} · {s.name}", "metadata": bool(s.attributes),
            "type": "realtime",
            "keywords": ", ".join([s.domain_code, *s.code.split("-"), *s.keywords]),
            "group": s.domain_name,
        } for s in rows])

    async def service_definition(self, request: Request, fmt: str) -> Response:
        await self.key(self.given_key(request), required=False)
        code = str(request.path_params["code"])
        found = await run_in_threadpool(sources.service, self.ctx, code)
        # An item without attributes (metadata false) takes any attribute[...]
        # and keeps it on the call's text; one with attributes takes those.
        return respond(fmt, "service_definition", "", {
            "service_code": found.code,
            "attributes": [{
                "variable": True, "code": a.code, "datatype": a.datatype,
                "required": a.required, "datatype_description": None, "order": order,
                "description": a.description,
                "values": [{"key": key, "name": name} for key, name in a.values],
            } for order, a in enumerate(found.attributes, start=1)],
        })

    # --- requests ----------------------------------------------------------------------

    async def requests(self, request: Request, fmt: str) -> Response:
        if request.method == "POST":
            return await self.post_request(request, fmt)
        key = await self.key(self.given_key(request), required=True)
        assert key is not None
        query = request.query_params
        ids = [n.strip() for n in (query.get("service_request_id") or "").split(",") if n.strip()]
        if len(ids) > MAX_IDS:
            raise BadRequest(400, f"service_request_id: at most {MAX_IDS} ids")
        statuses = [s.strip() for s in (query.get("status") or "").split(",") if s.strip()]
        if any(s not in ("open", "closed") for s in statuses):
            raise BadRequest(400, "status: open, closed or both (comma-separated)")
        wanted = RequestFilter(
            numbers=tuple(ids), service_code=query.get("service_code") or None,
            start=self._parse_datetime("start_date", query.get("start_date")),
            end=self._parse_datetime("end_date", query.get("end_date")),
            statuses=cast(tuple[Literal["open", "closed"], ...], tuple(statuses)),
            page=self._integer("page", query.get("page"), 1),
            page_size=self._integer("page_size", query.get("page_size"), 50))
        views = await run_in_threadpool(sources.find_requests, self.ctx, key, wanted, self.now())
        return respond(fmt, "service_requests", "request",
                       [self._request(key, view) for view in views])

    @staticmethod
    def _integer(name: str, text: str | None, default: int) -> int:
        if not text:
            return default
        if not text.isdigit() or len(text) > 6 or int(text) > sources.MAX_PAGE:
            raise BadRequest(400, f"{name}: a whole number up to {sources.MAX_PAGE}")
        return int(text)

    def _request(self, key: SourceKey, view: RequestView) -> dict[str, Any]:
        t = Translator(key.locale, self.ctx.rules.tz)
        notes = t._(labels.STATUS[view.status])
        if view.resolution_note:
            notes += " · " + view.resolution_note
        return {
            "service_request_id": view.number,
            "status": "closed" if view.status in sources.CLOSED_STATUSES else "open",
            "status_notes": notes,
            "service_name": view.service_name,
            "service_code": view.service_code,
            "description": view.description,
            "agency_responsible": view.agency,
            "service_notice": None,
            "requested_datetime": self._datetime(view.requested_at),
            "updated_datetime": self._datetime(view.updated_at),
            "expected_datetime": self._datetime(view.expected_at),
            "address": view.address,
            "address_id": None,
            "zipcode": None,
            "lat": view.latitude,
            "long": view.longitude,
            "media_url": view.media_url,
        }

    async def form(self, request: Request) -> dict[str, str]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in ("", "application/x-www-form-urlencoded"):
            raise BadRequest(400, "content-type: send application/x-www-form-urlencoded")
        body = await read_body(request, self.max_body_bytes)
        if body is None:
            raise BadRequest(400, f"body: over {self.max_body_bytes} bytes")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              max_num_fields=sources.MAX_ATTRIBUTES + 30)
        except (UnicodeDecodeError, ValueError) as failure:
            raise BadRequest(400, f"body: not a UTF-8 form ({failure})") from None
        form: dict[str, str] = {}
        for name, value in pairs:
            # NUL shows nothing and PostgreSQL cannot store it: dropped, so a
            # field is read as if it were not there (the rules then judge it).
            name, value = name.replace("\x00", ""), value.replace("\x00", "")
            multi = re.fullmatch(sources.MULTI_ATTRIBUTE_PATTERN, name)
            if multi:  # attribute[code][]=a&attribute[code][]=b: a multivaluelist
                key = f"attribute[{multi.group(1)}]"
                form[key] = f"{form[key]},{value}" if key in form else value
            else:
                form.setdefault(name, value)  # the first of repeated fields counts
        return form

    @staticmethod
    def _coordinate(name: str, text: str | None) -> float | None:
        if text is None or not text.strip():
            return None
        try:
            value = float(text)
        except ValueError:
            raise BadRequest(400, f"{name}: not a number") from None
        if not math.isfinite(value):
            raise BadRequest(400, f"{name}: not a number")
        return value

    async def post_request(self, request: Request, fmt: str) -> Response:
        form = await self.form(request)
        key = await self.key(self.given_key(request, form), required=True)
        assert key is not None
        # attribute[name] fields; other unknown fields are ignored, as the spec allows.
        attributes = {name[len("attribute["):-1]: value for name, value in form.items()
                      if re.fullmatch(sources.ATTRIBUTE_PATTERN, name)}
        report = SourceReport(
            service_code=(form.get("service_code") or "").strip(),
            description=form.get("description"),
            latitude=self._coordinate("lat", form.get("lat")),
            longitude=self._coordinate("long", form.get("long")),
            address=form.get("address_string"),
            external_id=form.get("external_id") or None,
            media_url=(form.get("media_url") or "").strip() or None,
            attributes=attributes)
        accepted = await run_in_threadpool(sources.accept, self.ctx, key, report, self.now(),
                                           self.fetch)
        notice = None
        if accepted.added_to_existing:
            notice = f"added to the open request {accepted.number} it repeats"
        elif accepted.number is None:
            notice = "being raised: ask tokens/{token} for the request id"
        record = {"service_request_id": accepted.number, "token": accepted.token,
                  "service_notice": notice, "account_id": None}
        created = not accepted.replayed and not accepted.added_to_existing
        return respond(fmt, "service_requests", "request", [record],
                       status_code=201 if created else 200)

    async def request(self, request: Request, fmt: str) -> Response:
        key = await self.key(self.given_key(request), required=True)
        assert key is not None
        number = str(request.path_params["number"])
        view = await run_in_threadpool(sources.find_request, self.ctx, key, number)
        return respond(fmt, "service_requests", "request", [self._request(key, view)])

    async def token(self, request: Request, fmt: str) -> Response:
        key = await self.key(self.given_key(request), required=True)
        assert key is not None
        found = await run_in_threadpool(sources.find_token, self.ctx, key,
                                        str(request.path_params["token"]))
        return respond(fmt, "service_requests", "request",
                       [{"service_request_id": found.number, "token": found.token}])

    async def openapi(self, request: Request) -> Response:
        listed = await run_in_threadpool(sources.services, self.ctx)
        return JSONResponse(openapi_document(str(request.base_url).rstrip("/"),
                                             [s.code for s in listed]))


def open311_routes(ctx: Context, now: Callable[[], datetime], max_body_bytes: int = 64 * 1024,
                   media_timeout: float = 10.0, media_private_addresses: bool = False,
                   fetch: Callable[[str], FetchedMedia] | None = None) -> list[BaseRoute]:
    """The API's routes under `PREFIX`, for `bot.web.build_app`."""
    api = Open311Api(ctx, now, max_body_bytes,
                     fetch or MediaFetcher(ctx.rules.max_photo_bytes, media_timeout,
                                           allow_private=media_private_addresses))
    get, both = ("GET",), ("GET", "POST")

    def route(path: str, methods: tuple[str, ...],
              handle: Callable[[Request, str], Awaitable[Response]]) -> Route:
        # Every method reaches the endpoint, which answers a wrong one with
        # the spec's error format rather than Starlette's plain text.
        return Route(path, api.endpoint(methods, handle), methods=ANY_METHOD)

    # Full paths rather than a Mount: a Mount matches its rest with ".*",
    # which stops at a newline, so an id with %0A in it got Starlette's
    # plain-text 404 instead of the spec's error (found by schemathesis).
    return [
        Route(f"{PREFIX}/openapi.json", api.openapi, methods=["GET"]),
        route(f"{PREFIX}/services.{{fmt}}", get, api.services),
        route(f"{PREFIX}/services/{{code}}.{{fmt}}", get, api.service_definition),
        route(f"{PREFIX}/requests.{{fmt}}", both, api.requests),
        route(f"{PREFIX}/requests/{{number}}.{{fmt}}", get, api.request),
        route(f"{PREFIX}/tokens/{{token}}.{{fmt}}", get, api.token),
    ]

"""The dispatch board's web routes, mounted at `/board` in the application
`youhu run` serves (`bot.web.build_app`).

Server-rendered HTML (Jinja2) that reads without JavaScript; with it, htmx
swaps the live parts when the server-sent event stream says a call changed.
Every page asks `workflows.board` who may see or do what; every action calls
the same use case as the chat (`workflows.calls`). The database work runs in
Starlette's thread pool so the event loop the chat channels share is never
blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from handlers import labels
from handlers.errors import describe
from handlers.i18n import N_, Translator
from models import CallStatus, Locale
from workflows import board, board_views, calls, queries
from workflows.board import BoardAction, SignedIn
from workflows.board_views import CallFilter, Sort
from workflows.context import Context
from workflows.errors import NotAllowed, NotFound, WorkflowError
from workflows.lifecycle import OPEN_STATES, Action
from workflows.stats import Period, report

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
COOKIE = "youhu_board"
LOGIN_COOKIE = "youhu_board_login"  # the login form's double-submit CSRF token
MAX_FORM_BYTES = 16 * 1024
HEADERS = {
    # Scripts and styles only from the board itself; no framing; the login
    # token in a link's path never leaks through a Referer header.
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; script-src 'self'; "
                               "style-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_DIGEST = re.compile(r"[0-9a-f]{64}")


class Board:
    """The board's routes over one context; `now` is the clock, `changed`
    is called after an action so the deliverer sends its messages at once,
    and `poll_seconds` is how often the live stream looks for changes."""

    def __init__(self, ctx: Context, now: Callable[[], datetime], secure: bool,
                 changed: Callable[[], None] = lambda: None,
                 poll_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.now = now
        self.secure = secure
        self.changed = changed
        self.poll_seconds = poll_seconds
        self.stopping = asyncio.Event()
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"),
                               autoescape=select_autoescape(["html"]))
        self.env.globals.update(status_names=labels.STATUS, event_names=labels.EVENT,
                                step_names=labels.STEP, limit_names=labels.LIMIT,
                                rating_names=labels.RATING,
                                request_kinds=labels.REQUEST_KIND)

    # --- plumbing -----------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [Mount("/board", routes=[
            Route("/", self.calls_page, methods=["GET"]),
            Route("/login/{token}", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/events", self.events, methods=["GET"]),
            Route("/calls/{call_id:int}", self.call_page, methods=["GET"]),
            Route("/calls/{call_id:int}/assign", self.assign, methods=["POST"]),
            Route("/requests/{request_id:int}/decide", self.decide, methods=["POST"]),
            Route("/photos/{sha256:str}", self.photo, methods=["GET"]),
            Route("/report", self.report_page, methods=["GET"]),
            Route("/report/{kind:str}", self.report_file, methods=["GET"]),
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        ])]

    def _render(self, request: Request, template: str, t: Translator, status: int = 200,
                signed: SignedIn | None = None, **values: Any) -> HTMLResponse:
        page = self.env.get_template(template).render(
            request=request, _=t._, t=t, lang=_html_lang(t.locale), signed=signed,
            csrf=signed.csrf_token if signed else "", may=_may(signed), **values)
        return HTMLResponse(page, status_code=status, headers=HEADERS)

    def _signed(self, request: Request) -> SignedIn | None:
        return board.signed_in(self.ctx, request.cookies.get(COOKIE), self.now())

    def _refuse(self, request: Request, status: int, message: str,
                signed: SignedIn | None = None) -> HTMLResponse:
        t = _translator(self.ctx, signed)
        return self._render(request, "message.html", t, status=status, signed=signed,
                            title=t._(message), message=t._(message))

    def _signed_out(self, request: Request) -> HTMLResponse:
        return self._refuse(request, 401, N_("You are not signed in. Send /board to the bot "
                                             "in a private chat for a link."))

    async def _form(self, request: Request) -> dict[str, str] | None:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
            return None
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    async def _checked_post(self, request: Request
                            ) -> tuple[SignedIn, dict[str, str]] | Response:
        """The signed-in member and the form of a POST whose CSRF token is
        this session's; anything else is refused and nothing is done."""
        signed = await run_in_threadpool(self._signed, request)
        if signed is None:
            return self._signed_out(request)
        form = await self._form(request)
        if form is None:
            return self._refuse(request, 413, N_("That form is too large."), signed)
        if not signed.csrf_matches(form.get("csrf")):
            log.warning("board: a form without this session's CSRF token (member %s)",
                        signed.member.code)
            return self._refuse(request, 403, N_("This form did not come from your board "
                                                 "session. Reload the page and try again."), signed)
        return signed, form

    # --- login ----------------------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        """Opening the link only shows a button: chat apps fetch links to
        preview them, and a preview must not spend a one-time link."""
        t = Translator(Locale.ZH_HANS, self.ctx.rules.tz)
        nonce = secrets.token_urlsafe(16)
        response = self._render(request, "login.html", t, token=request.path_params["token"],
                                login_csrf=nonce, title=t._("Sign in to the dispatch board"))
        response.set_cookie(LOGIN_COOKIE, nonce, max_age=600, path="/board/login",
                            httponly=True, samesite="strict", secure=self.secure)
        return response

    async def login(self, request: Request) -> Response:
        form = await self._form(request)
        if form is None:
            return self._refuse(request, 413, N_("That form is too large."))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        given = form.get("csrf", "")
        if not expected or not secrets.compare_digest(expected, given):
            return self._refuse(request, 403, N_("This form did not come from your board "
                                                 "session. Reload the page and try again."))
        try:
            new = await run_in_threadpool(board.redeem_link, self.ctx, form.get("token", ""),
                                          self.now())
        except WorkflowError as error:
            reason = error.params.get("reason")
            message = {"link_used": N_("This login link was already used. Send /board to the "
                                       "bot for a new one."),
                       "link_expired": N_("This login link has expired. Send /board to the bot "
                                          "for a new one.")}.get(
                str(reason), N_("This login link is not valid. Send /board to the bot for a "
                                "new one."))
            return self._refuse(request, 403, message)
        response = RedirectResponse("/board/", status_code=303, headers=HEADERS)
        response.set_cookie(COOKIE, new.token, max_age=int(board.SESSION_LIFETIME.total_seconds()),
                            path="/board", httponly=True, samesite="lax", secure=self.secure)
        response.delete_cookie(LOGIN_COOKIE, path="/board/login")
        return response

    async def logout(self, request: Request) -> Response:
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        signed, _form = checked
        await run_in_threadpool(board.log_out, self.ctx, signed.session_id, self.now())
        t = _translator(self.ctx, signed)
        response = self._render(request, "message.html", t, title=t._("Signed out"),
                                message=t._("You are signed out of the dispatch board."))
        response.delete_cookie(COOKIE, path="/board")
        return response

    # --- pages ----------------------------------------------------------------

    def calls_page(self, request: Request) -> Response:
        signed = self._signed(request)
        if signed is None:
            return self._signed_out(request)
        t = _translator(self.ctx, signed)
        wanted = _filter(request.query_params)
        scope = board.call_scope(signed.member)
        page = board_views.open_calls(self.ctx, scope, wanted, self.now())
        return self._render(request, "calls.html", t, signed=signed, page=page, wanted=wanted,
                            statuses=[s for s in CallStatus if s in _OPEN_LISTED],
                            sorts=list(Sort), link=_page_link(request),
                            clock=lambda c: _clock_text(t, c),
                            title=t._("Open calls"))

    def call_page(self, request: Request) -> Response:
        signed = self._signed(request)
        if signed is None:
            return self._signed_out(request)
        t = _translator(self.ctx, signed)
        try:
            detail = board_views.call_detail(self.ctx, board.call_scope(signed.member),
                                             request.path_params["call_id"], self.now())
        except NotFound:
            return self._refuse(request, 404, N_("No such call."), signed)
        except NotAllowed:
            return self._refuse(request, 403, N_("This call is another department's: you "
                                                 "may not see it."), signed)
        notice = request.query_params.get("done")
        return self._render(
            request, "call.html", t, signed=signed, call=detail,
            departments=queries.departments(self.ctx),
            assignable=Action.ASSIGN in detail.allowed,
            deciding={Action.GRANT_EXTENSION, Action.UPHOLD_RETURN} & detail.allowed,
            notice=t._("Done: the call was updated and the people concerned are told.")
            if notice else None,
            error=request.query_params.get("error"),
            clock=_clock_text(t, detail.clock) if detail.clock else None,
            map_link=_map_link(detail.latitude, detail.longitude),
            title=t._("Call %(number)s", number=detail.number))

    def _report_request(self, request: Request
                        ) -> Response | tuple[SignedIn, Translator, int | None, Period]:
        """Who reads which report for which month — or the answer refusing it."""
        signed = self._signed(request)
        if signed is None:
            return self._signed_out(request)
        t = _translator(self.ctx, signed)
        try:
            department_id = board.report_scope(signed.member)
        except NotAllowed:
            return self._refuse(request, 403, N_("You may not do this."), signed)
        tz = self.ctx.rules.tz
        try:
            period = Period.asked(request.query_params.get("month"), self.now(), tz)
        except ValueError:
            return self._refuse(request, 400, N_("Usage: /stats [YYYY-MM], e.g. /stats 2025-10"),
                                signed)
        return signed, t, department_id, period

    def report_page(self, request: Request) -> Response:
        asked = self._report_request(request)
        if isinstance(asked, Response):
            return asked
        signed, t, department_id, period = asked
        result = report(self.ctx, period, self.now())
        # A head reads their own department's line, not the district's.
        own = {u.code for u in queries.departments(self.ctx) if u.id == department_id}
        shown = [d for d in result.departments
                 if department_id is None or d.department_code in own]
        files = department_id is None and self.ctx.exports is not None
        return self._render(request, "report.html", t, signed=signed, result=result,
                            departments=shown, district=department_id is None,
                            files=files, month=period.label,
                            title=t._("Figures for %(period)s", period=period.label))

    def report_file(self, request: Request) -> Response:
        """The month's chart (PNG) or workbook (Excel) — the same files `/report`
        sends in the chat, rendered by `bot.exports` in the reader's language.
        For district readers: a head's report is their own line, shown as text."""
        asked = self._report_request(request)
        if isinstance(asked, Response):
            return asked
        signed, t, department_id, period = asked
        if department_id is not None or self.ctx.exports is None:
            return self._refuse(request, 403, N_("You may not do this."), signed)
        suffix = {"chart.png": ".png", "workbook.xlsx": ".xlsx"}.get(request.path_params["kind"])
        if suffix is None:
            return Response(status_code=404)
        result = report(self.ctx, period, self.now())
        chosen = next(f for f in self.ctx.exports(result, t.locale) if f.name.endswith(suffix))
        if suffix == ".png":
            return Response(chosen.data, media_type="image/png")
        return Response(chosen.data, media_type=(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            headers={"Content-Disposition": f'attachment; filename="{chosen.name}"'})

    def photo(self, request: Request) -> Response:
        signed = self._signed(request)
        if signed is None:
            return Response(status_code=401)
        sha256 = request.path_params["sha256"]
        if not _DIGEST.fullmatch(sha256):
            return Response(status_code=404)
        content_type = board_views.photo_of_call(self.ctx, board.call_scope(signed.member),
                                                 sha256)
        if content_type is None:
            return Response(status_code=404)
        try:
            data = self.ctx.media.read(sha256)
        except FileNotFoundError:
            log.error("board: photo %s is in the database but not in the media store", sha256)
            return Response(status_code=404)
        return Response(data, media_type=content_type,
                        headers={"Cache-Control": "private, max-age=3600",
                                 "X-Content-Type-Options": "nosniff"})

    # --- the dispatcher's actions ---------------------------------------------

    async def assign(self, request: Request) -> Response:
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        signed, form = checked
        call_id = request.path_params["call_id"]
        return await self._act(request, signed, call_id, calls.assign, self.ctx, call_id,
                               signed.member.id or 0, self.now(), form.get("department", ""))

    async def decide(self, request: Request) -> Response:
        checked = await self._checked_post(request)
        if isinstance(checked, Response):
            return checked
        signed, form = checked
        request_id = request.path_params["request_id"]
        pending = await run_in_threadpool(queries.pending_request, self.ctx, request_id)
        if pending is None:
            return self._refuse(request, 409, N_("That request was already decided."), signed)
        approve = form.get("decision") == "approve"
        note = form.get("note") or None
        by, now = signed.member.id or 0, self.now()
        if pending.kind.value == "extension":
            return await self._act(request, signed, pending.call_id, calls.decide_extension,
                                   self.ctx, request_id, by, now, approve, note)
        return await self._act(request, signed, pending.call_id, calls.decide_return, self.ctx,
                               request_id, by, now, approve, form.get("department") or None,
                               note)

    async def _act(self, request: Request, signed: SignedIn, call_id: int,
                   use_case: Callable[..., Any], *args: Any) -> Response:
        """Run a dispatcher's use case: the board's own permission first (a
        head or supervisor is refused here), then the use case's checks."""
        if not board.may(signed.member, BoardAction.DISPATCH):
            return self._refuse(request, 403, N_("This is for the command centre."), signed)
        scope = board.call_scope(signed.member)
        try:
            await run_in_threadpool(board_views.call_detail, self.ctx, scope, call_id,
                                    self.now())
            await run_in_threadpool(use_case, *args)
        except WorkflowError as error:
            t = _translator(self.ctx, signed)
            query = urlencode({"error": describe(t, error)})
            return RedirectResponse(f"/board/calls/{call_id}?{query}", status_code=303,
                                    headers=HEADERS)
        self.changed()
        return RedirectResponse(f"/board/calls/{call_id}?done=1", status_code=303,
                                headers=HEADERS)

    # --- live updates ---------------------------------------------------------

    async def events(self, request: Request) -> Response:
        """`changed` whenever a call the member sees gets a new event. It
        polls the event log (one indexed max() a second), so a change made by
        any process — the chat, the sweep, another board — shows up."""
        signed = await run_in_threadpool(self._signed, request)
        if signed is None:
            return Response(status_code=401)
        scope = board.call_scope(signed.member)
        token = request.cookies.get(COOKIE)

        async def stream() -> AsyncIterator[dict[str, str]]:
            seen = await run_in_threadpool(board_views.last_change, self.ctx, scope)
            yield {"event": "ready", "data": str(seen)}
            while not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):  # the poll interval passed
                    await asyncio.wait_for(self.stopping.wait(), self.poll_seconds)
                if self.stopping.is_set() or await request.is_disconnected():
                    return
                if await run_in_threadpool(board.signed_in, self.ctx, token, self.now()) is None:
                    yield {"event": "signed-out", "data": ""}
                    return
                latest = await run_in_threadpool(board_views.last_change, self.ctx, scope)
                if latest != seen:
                    seen = latest
                    yield {"event": "changed", "data": str(latest)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})


# --- helpers ---------------------------------------------------------------------

_OPEN_LISTED = OPEN_STATES  # the table lists open calls; a state filter picks among them


def _translator(ctx: Context, signed: SignedIn | None) -> Translator:
    """Chinese by default; the member's own language once signed in."""
    return Translator(signed.member.locale if signed else Locale.ZH_HANS, ctx.rules.tz)


def _html_lang(locale: Locale) -> str:
    return {Locale.ZH_HANS: "zh-Hans", Locale.ZH_HANT: "zh-Hant", Locale.EN: "en"}[locale]


def _may(signed: SignedIn | None) -> dict[str, bool]:
    """What the page offers (links, forms); each action checks again."""
    allowed = {action.name.lower(): signed is not None and board.may(signed.member, action)
               for action in BoardAction}
    allowed["read_report"] = signed is not None and _may_read_report(signed)
    return allowed


def _may_read_report(signed: SignedIn) -> bool:
    try:
        board.report_scope(signed.member)
    except NotAllowed:
        return False
    return True


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def _filter(params: Any) -> CallFilter:
    """The table's filters from the query string; what does not parse is ignored."""
    status = params.get("status")
    sort = params.get("sort")
    return CallFilter(
        department_id=_int(params.get("department")),
        town_id=_int(params.get("town")),
        domain_id=_int(params.get("domain")),
        status=CallStatus(status) if status in _OPEN_LISTED else None,
        supervised=params.get("supervised") == "1",
        overdue=params.get("overdue") == "1",
        query=(params.get("q") or "").strip()[:board_views.MAX_QUERY],
        sort=Sort(sort) if sort in {s.value for s in Sort} else Sort.DUE,
        descending=params.get("order") == "desc",
        page=_int(params.get("page")) or 1,
    )


def _page_link(request: Request) -> Callable[..., str]:
    """A link to the table with the current filters and `changes` applied."""
    def link(**changes: Any) -> str:
        params = dict(request.query_params)
        for key, value in changes.items():
            if value is None:
                params.pop(key, None)
            else:
                params[key] = str(value)
        return "/board/?" + urlencode(params) if params else "/board/"
    return link


def _clock_text(t: Translator, clock: board_views.Clock | None) -> str:
    if clock is None:
        return "—"
    limit = t._(labels.LIMIT[clock.limit])
    if clock.late:
        return t._("%(limit)s: late by %(span)s", limit=limit, span=t.duration(-clock.left))
    return t._("%(limit)s: %(span)s left", limit=limit, span=t.duration(clock.left))


def _map_link(latitude: float | None, longitude: float | None) -> str | None:
    """A link to the place on OpenStreetMap (WGS-84, as chat apps send it).
    Only a link: the server fetches no map tiles."""
    if latitude is None or longitude is None:
        return None
    return (f"https://www.openstreetmap.org/?mlat={latitude:.6f}&mlon={longitude:.6f}"
            f"#map=17/{latitude:.6f}/{longitude:.6f}")


def board_routes(ctx: Context, now: Callable[[], datetime], changed: Callable[[], None],
                 poll_seconds: float = 1.0) -> tuple[Board, list[BaseRoute]]:
    """The board for `youhu run`: Secure cookies when its URL is https."""
    assert ctx.board_url is not None
    app = Board(ctx, now, ctx.board_url.startswith("https://"), changed, poll_seconds)
    return app, app.routes()


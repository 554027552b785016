"""The `youhu` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handlers.i18n import Translator
    from workflows.stats import Report

from bot.settings import Settings, SettingsError, load_settings


def _now() -> datetime:
    # The only wall clock: everything below bot/ is handed `now`.
    return datetime.now(UTC)


def _init(settings: Settings, args: argparse.Namespace) -> int:
    from models import make_engine, upgrade_to_head
    from workflows.directory import load
    from workflows.orgfile import OrgFileError, read_catalog, read_org
    from workflows.planfile import read_plan

    if args.catalog and not args.org:
        print("youhu init: --catalog needs --org (items name the org's departments)",
              file=sys.stderr)
        return 2
    try:
        org = read_org(args.org) if args.org else None
        catalog = read_catalog(args.catalog, org) if args.catalog and org else None
    except OrgFileError as error:
        print(f"youhu init: nothing loaded.\n{error}", file=sys.stderr)
        return 1
    upgrade_to_head(settings.database.url)
    print(f"database ready: {settings.database.url}")
    engine = make_engine(settings.database.url)
    try:
        plan = None
        if args.plan:
            # Checked completely before anything is written: against the org
            # file given with it, or the departments already loaded.
            try:
                plan = read_plan(args.plan, _department_codes(engine, org))
            except OrgFileError as error:
                print(f"youhu init: nothing loaded.\n{error}", file=sys.stderr)
                return 1
        if org is not None:
            from workflows.errors import WorkflowError

            try:
                summary = load(engine, org, catalog, _now())
            except WorkflowError as error:  # an account the file gives is someone else's
                print(f"youhu init: nothing loaded.\n{error}", file=sys.stderr)
                return 1
            print(f"loaded {summary.units} units, {summary.members} members, "
                  f"{summary.domains} domains, {summary.items} catalog items")
        if plan is not None:
            from bot.app import build_rules
            from models import MediaStore
            from workflows.burden import load_plan
            from workflows.context import Context

            ctx = Context(engine, MediaStore(settings.media.dir), build_rules(settings))
            print(f"loaded {load_plan(ctx, plan)} plan items for {plan.year}")
    finally:
        engine.dispose()
    return 0


def _department_codes(engine: Any, org: Any) -> set[str]:
    from sqlmodel import Session, select

    from models import Unit, UnitKind

    codes = set(org.department_codes()) if org is not None else set()
    with Session(engine) as session:
        codes |= {u.code for u in session.exec(select(Unit).where(
            Unit.kind == UnitKind.DEPARTMENT))}
    return codes


def _burden(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_context
    from bot.exports.burden import chart_png, workbook_bytes
    from handlers.burden_forms import report_text
    from handlers.i18n import Translator
    from models import Locale
    from workflows.burden import burden_report
    from workflows.stats import Period

    try:
        period = Period.parse(args.period, settings.tz)
        locale = Locale(args.locale)
    except ValueError as error:
        print(f"youhu burden: {error}", file=sys.stderr)
        return 2
    ctx = build_context(settings)
    result = burden_report(ctx, period)
    t = Translator(locale, settings.tz)
    print(report_text(t, result))
    if args.xlsx is not None:
        args.xlsx.write_bytes(workbook_bytes(result, t))
    if args.chart is not None:
        args.chart.write_bytes(chart_png(result, t))
    for path in (args.xlsx, args.chart):
        if path is not None:
            print(f"written: {path}")
    return 0


def _period_report(settings: Settings, args: argparse.Namespace, command: str
                   ) -> tuple[Report, Translator] | None:
    """The report asked for on the command line, and a translator for it
    (None, with the error printed, for a bad period or language)."""
    from bot.app import build_context
    from handlers.i18n import Translator, parse_locale
    from workflows.stats import Period, report

    try:
        period = Period.parse(args.period, settings.tz)
    except ValueError as error:
        print(f"youhu {command}: {error}", file=sys.stderr)
        return None
    locale = parse_locale(args.lang)
    if locale is None:
        print(f"youhu {command}: unknown language {args.lang!r} (zh_Hans, zh_Hant or en)",
              file=sys.stderr)
        return None
    ctx = build_context(settings)
    return report(ctx, period, _now()), Translator(locale, settings.tz)


def _stats(settings: Settings, args: argparse.Namespace) -> int:
    from bot.report import render_report

    made = _period_report(settings, args, "stats")
    if made is None:
        return 2
    print(render_report(*made))
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    """The text report, and the workbook, chart and JSON where asked."""
    from bot.exports.chart import NoCjkFont, chart_png
    from bot.exports.json import report_json
    from bot.exports.xlsx import workbook_bytes
    from bot.report import render_report

    made = _period_report(settings, args, "report")
    if made is None:
        return 2
    result, t = made
    print(render_report(result, t))
    outputs: list[tuple[Path | None, Callable[[], bytes]]] = [
        (args.xlsx, lambda: workbook_bytes(result, t)),
        (args.json, lambda: report_json(result)),
        (args.chart, lambda: chart_png(result, t)),
    ]
    for path, render in outputs:
        if path is None:
            continue
        try:
            data = render()
        except NoCjkFont as error:
            print(f"youhu report: {error}", file=sys.stderr)
            return 1
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path}")
    return 0


def _check_calendar(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_rules

    today = args.today or _now().astimezone(settings.tz).date()
    calendar = build_rules(settings).calendar
    warning = calendar.coverage_warning(today, args.days)
    if warning:
        print(warning)
        return 1
    print(f"The working-day calendar covers {today} to {args.days} days ahead.")
    return 0


def _run(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from bot.runner import run

    logging.getLogger().setLevel(logging.INFO)
    for chatty in ("alembic", "httpx", "apscheduler"):  # one line per request or job
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return asyncio.run(run(settings))


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run_demo
    from handlers.i18n import parse_locale

    locale = parse_locale(args.locale)
    if locale is None:
        print(f"youhu demo: unknown locale {args.locale!r}; choose zh_Hans, zh_Hant or en",
              file=sys.stderr)
        return 2
    run_demo(settings, keep=args.keep, out_dir=args.out, locale=locale)
    return 0


def _console(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_context
    from bot.console import Console, read_lines

    ctx = build_context(settings)
    clock = _now
    if args.at:
        # A simulated clock (for a scripted session and its documented output):
        # it starts at the given local time and runs on with the wall clock.
        try:
            start = datetime.fromisoformat(args.at)
        except ValueError:
            print(f"youhu console: --at {args.at!r} is not a date and time "
                  "(e.g. 2026-11-26T10:00)", file=sys.stderr)
            return 2
        if start.tzinfo is None:
            start = start.replace(tzinfo=settings.tz)
        offset = start - _now()

        def clock() -> datetime:
            return _now() + offset

    return Console(ctx, args.member, sys.stdout, clock).run(read_lines(sys.stdin))


def _invite(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_context
    from workflows.errors import WorkflowError
    from workflows.invites import create_invite

    ctx = build_context(settings)
    try:
        invite = create_invite(ctx, args.member, None, _now(), args.hours)
    except WorkflowError as error:
        print(f"youhu invite: {error}", file=sys.stderr)
        return 1
    until = invite.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    print(f"invite code for {args.member}: {invite.code} (valid once, until {until})")
    print(f"they send: /start {invite.code}")
    if settings.telegram.token is None:
        print("(no Telegram token configured: no deep link; WeCom members type the line above)")
        return 0
    from bot.invitelink import bot_username, deep_link, write_qr

    username = bot_username(ctx.media.root, settings.telegram)
    if username is None:
        print("(Telegram could not be asked for the bot's username: no deep link this time)")
        return 0
    link = deep_link(username, invite.code)
    print(f"or open on Telegram: {link}")
    qr = write_qr(link, Path(args.qr or f"invite-{args.member}.png"))
    print(f"QR code of the link (to forward): {qr}")
    return 0


def _board_sessions(settings: Settings, args: argparse.Namespace) -> int:
    """`youhu board-sessions list` and `revoke --member CODE | --all`: the
    operator (an admin at the server) ends board sessions at once."""
    from bot.app import build_context
    from workflows.board import live_sessions, revoke_sessions
    from workflows.errors import WorkflowError

    ctx = build_context(settings)
    if args.action == "list":
        for row in live_sessions(ctx, _now()):
            since = row.created_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
            until = row.expires_at.astimezone(settings.tz).strftime("%H:%M")
            print(f"{row.id}\t{row.member_code}\t{row.role}\t{row.unit_name}\t"
                  f"since {since}, until {until}")
        return 0
    if not args.all and not args.member:
        print("youhu board-sessions revoke: name --member CODE, or --all", file=sys.stderr)
        return 2
    try:
        ended = revoke_sessions(ctx, None if args.all else args.member, None, _now())
    except WorkflowError as error:
        print(f"youhu board-sessions: {error}", file=sys.stderr)
        return 1
    print(f"ended {ended} board session(s); unused login links are void")
    return 0


def _apikey(settings: Settings, args: argparse.Namespace) -> int:
    """`youhu apikey create|list|revoke`: keys of the systems that raise calls
    over Open311 (workflows.sources)."""
    from bot.app import build_context
    from models import Locale
    from workflows import sources
    from workflows.errors import WorkflowError

    ctx = build_context(settings)
    try:
        if args.action == "create":
            items = [code.strip() for code in (args.items or "").split(",") if code.strip()]
            new = sources.create_key(ctx, args.name, args.unit, _now(), items or None,
                                     args.per_minute, Locale(args.locale))
            print(f"API key for {new.name} (shown once; youhu stores only its hash):")
            print(new.key)
            return 0
        if args.action == "revoke":
            info = sources.revoke_key(ctx, args.name, _now())
            print(f"revoked {info.name} ({info.prefix}…); its calls stay.")
            return 0
        for info in sources.list_keys(ctx):
            state = ("revoked " + info.revoked_at.astimezone(settings.tz).strftime("%Y-%m-%d")
                     if info.revoked_at else "active")
            allowed = ",".join(info.items) if info.items else "all items"
            print(f"{info.name}\t{info.prefix}…\t{info.unit_code}\t{allowed}\t"
                  f"{info.per_minute}/min\t{state}")
        return 0
    except WorkflowError as error:
        print(f"youhu apikey: {error}", file=sys.stderr)
        return 1
    finally:
        ctx.engine.dispose()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="youhu", description="有呼必应 — every call gets an answer."
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (or YOUHU_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create or upgrade the database; load org/catalog")
    init.add_argument("--org", type=Path, help="org YAML file (see examples/org.yaml)")
    init.add_argument("--catalog", type=Path, help="catalog YAML file (examples/catalog.yaml)")
    init.add_argument("--plan", type=Path,
                      help="annual plan YAML file (examples/plan.yaml): approved data requests, "
                           "inspections and assessments per department")
    init.set_defaults(handler=_init)

    run = commands.add_parser("run", help="run the configured channels and the scheduler")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="play a month on a temporary database and report")
    demo.add_argument("--keep", type=Path, help="keep the demo's SQLite database at this path")
    demo.add_argument("--out", type=Path, help="where to write demo-report.xlsx and "
                      "demo-report.png (default: the current directory)")
    demo.add_argument("--locale", default="zh_Hans",
                      help="the narrative's language: zh_Hans (default), zh_Hant or en")
    demo.set_defaults(handler=_demo)

    stats = commands.add_parser("stats", help="the report for a month, as text")
    stats.add_argument("--period", required=True, help="YYYY-MM")
    stats.add_argument("--lang", default="en", help="zh_Hans, zh_Hant or en (default en)")
    stats.set_defaults(handler=_stats)

    report = commands.add_parser("report", help="the report for a month: text, and the "
                                 "workbook, chart and JSON where asked")
    report.add_argument("--period", required=True, help="YYYY-MM")
    report.add_argument("--lang", default="en", help="zh_Hans, zh_Hant or en (default en)")
    report.add_argument("--xlsx", type=Path, help="write the Excel workbook here")
    report.add_argument("--chart", type=Path, help="write the chart (PNG) here")
    report.add_argument("--json", type=Path, help="write the JSON export here")
    report.set_defaults(handler=_report)
    burden = commands.add_parser("burden", help="the form-burden report for a month")
    burden.add_argument("--period", required=True, help="YYYY-MM")
    burden.add_argument("--xlsx", type=Path, help="also write the Excel sheet here")
    burden.add_argument("--chart", type=Path, help="also write the chart (PNG) here")
    burden.add_argument("--locale", default="zh_Hans", help="zh_Hans, zh_Hant or en")
    burden.set_defaults(handler=_burden)

    check = commands.add_parser("check-calendar", help="warn if the next days are not covered")
    check.add_argument("--days", type=int, default=60)
    check.add_argument("--today", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    check.set_defaults(handler=_check_calendar)

    console = commands.add_parser("console", help="talk to the bot in this terminal as a member")
    console.add_argument("--as", dest="member", required=True, help="member code, e.g. li-ming")
    console.add_argument("--at", metavar="YYYY-MM-DDTHH:MM",
                         help="start the clock at this local time (default: now)")
    console.set_defaults(handler=_console)

    invite = commands.add_parser("invite", help="a one-time registration code for a member")
    invite.add_argument("--member", required=True, help="member code")
    invite.add_argument("--hours", type=int, default=72, help="valid for this many hours")
    invite.add_argument("--qr", metavar="PATH",
                        help="where to write the link's QR code (default invite-MEMBER.png)")
    invite.set_defaults(handler=_invite)

    sessions = commands.add_parser("board-sessions",
                                   help="list or revoke dispatch board sessions")
    sessions.add_argument("action", choices=["list", "revoke"])
    sessions.add_argument("--member", help="revoke this member's sessions (member code)")
    sessions.add_argument("--all", action="store_true", help="revoke every session")
    sessions.set_defaults(handler=_board_sessions)
    apikey = commands.add_parser("apikey", help="API keys of systems calling over Open311")
    keys = apikey.add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="a new key, printed once")
    create.add_argument("--name", required=True, help="the system, e.g. video-analytics")
    create.add_argument("--unit", required=True, help="town, street or village code it calls for")
    create.add_argument("--items", help="comma-separated catalog item codes (default: all)")
    create.add_argument("--per-minute", type=int, default=60, help="events a minute at most")
    create.add_argument("--locale", default="zh_Hans", choices=["zh_Hans", "zh_Hant", "en"],
                        help="language of status_notes")
    keys.add_parser("list", help="the keys (never the keys themselves)")
    revoke = keys.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("--name", required=True)
    apikey.set_defaults(handler=_apikey)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config)
    except SettingsError as error:
        print(f"youhu: {error}", file=sys.stderr)
        return 2
    return int(args.handler(settings, args))


if __name__ == "__main__":
    sys.exit(main())

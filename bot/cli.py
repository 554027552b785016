"""The `youhu` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

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
    if org is not None:
        engine = make_engine(settings.database.url)
        summary = load(engine, org, catalog, _now())
        engine.dispose()
        print(f"loaded {summary.units} units, {summary.members} members, "
              f"{summary.domains} domains, {summary.items} catalog items")
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

    run_demo(settings, keep=args.keep, out_dir=args.out)
    return 0


def _console(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_context
    from bot.console import Console, read_lines

    ctx = build_context(settings)
    return Console(ctx, args.member, sys.stdout, _now).run(read_lines(sys.stdin))


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
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="youhu", description="有呼必应 — every call gets an answer."
    )
    parser.add_argument("--config", type=Path, help="TOML settings file (or YOUHU_CONFIG)")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create or upgrade the database; load org/catalog")
    init.add_argument("--org", type=Path, help="org YAML file (see examples/org.yaml)")
    init.add_argument("--catalog", type=Path, help="catalog YAML file (examples/catalog.yaml)")
    init.set_defaults(handler=_init)

    run = commands.add_parser("run", help="run the configured channels and the scheduler")
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="play a month on a temporary database and report")
    demo.add_argument("--keep", type=Path, help="keep the demo's SQLite database at this path")
    demo.add_argument("--out", type=Path, help="where to write demo-report.xlsx and "
                      "demo-report.png (default: the current directory)")
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

    check = commands.add_parser("check-calendar", help="warn if the next days are not covered")
    check.add_argument("--days", type=int, default=60)
    check.add_argument("--today", type=date.fromisoformat, help="YYYY-MM-DD (default: today)")
    check.set_defaults(handler=_check_calendar)

    console = commands.add_parser("console", help="talk to the bot in this terminal as a member")
    console.add_argument("--as", dest="member", required=True, help="member code, e.g. li-ming")
    console.set_defaults(handler=_console)

    invite = commands.add_parser("invite", help="a one-time registration code for a member")
    invite.add_argument("--member", required=True, help="member code")
    invite.add_argument("--hours", type=int, default=72, help="valid for this many hours")
    invite.set_defaults(handler=_invite)
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

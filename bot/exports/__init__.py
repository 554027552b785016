"""The report's exporters, one module per format: `xlsx` (the workbook),
`chart` (the PNG), `json` (for other systems). Each renders a
`workflows.stats.Report` — the figures and the per-call facts they add up —
and counts nothing itself, so every format shows the same numbers.

`export_files` is what the composition root plugs into `Context.exports`:
the chart and the workbook a reader gets in the chat.
"""

from __future__ import annotations

from handlers.i18n import Translator
from models import Locale
from workflows.context import ReportFile
from workflows.stats import Report


def file_stem(report: Report) -> str:
    """youhu-report-2025-10 (a period label with spaces or dashes between
    dates is kept readable)."""
    label = "".join(ch if ch.isalnum() or ch == "-" else "_" for ch in report.period.label)
    return f"youhu-report-{label}"


def export_files(report: Report, locale: Locale) -> list[ReportFile]:
    """The chart (sent as a photo) and the workbook (a document), in `locale`.
    matplotlib and openpyxl are imported here, on first use: they take over a
    second to load, which no command that sends no report should pay."""
    from bot.exports.chart import chart_png
    from bot.exports.xlsx import workbook_bytes

    t = Translator(locale, report.tz)
    stem = file_stem(report)
    return [ReportFile(f"{stem}.png", chart_png(report, t), as_photo=True),
            ReportFile(f"{stem}.xlsx", workbook_bytes(report, t))]

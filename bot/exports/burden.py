"""The form-burden report (`workflows.burden.BurdenReport`) as files: an
Excel workbook (departments, and the forms each town received) and a bar
chart of the towns' estimated hours per department. Like the call report's
exporters they count nothing; the chart draws in the same CJK font
(`chart.cjk_family`, which refuses to draw empty boxes).

`burden_files` is what the composition root plugs into
`Context.burden_exports`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
from matplotlib.figure import Figure

from bot.exports.chart import DPI, cjk_family
from handlers.burden_forms import DEPARTMENT_COLUMNS, TOWN_COLUMNS, department_cells, departments
from handlers.i18n import Translator
from models import Locale
from workflows.burden import BurdenReport
from workflows.context import ReportFile

WIDTH_PX = 800
FLAG_COLOUR = "#b03a2e"


def workbook_bytes(report: BurdenReport, t: Translator,
                   only_department: int | None = None) -> bytes:
    """The burden sheet (departments, with the district total for a district
    reader) and, for a district reader, the towns sheet; headers in the
    reader's language."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t._("Form burden")[:31]
    sheet.append([t._("Form burden for %(period)s", period=report.period.label)])
    sheet.append([t._(c) for c in DEPARTMENT_COLUMNS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in departments(report, only_department):
        sheet.append(department_cells(row))
    sheet.column_dimensions["A"].width = 24
    if only_department is None:
        sheet.append([t._("Total"), *department_cells(report.total)[1:]])
        towns = book.create_sheet(t._("Forms by town")[:31])
        towns.append([t._(c) for c in TOWN_COLUMNS])
        for cell in towns[1]:
            cell.font = Font(bold=True)
        for town in report.towns:
            if town.forms:
                towns.append([town.town, town.forms, town.fields, town.answered, town.reused])
        towns.column_dimensions["A"].width = 24
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(report: BurdenReport, t: Translator, only_department: int | None = None) -> bytes:
    """A bar chart: each department's estimated town hours, with how many of
    its requests were flagged (duplicates and out of plan)."""
    family = cjk_family()
    rows = departments(report, only_department)
    names = [d.department for d in rows] or ["—"]
    hours = [d.town_hours for d in rows] or [0.0]
    figure = Figure(figsize=(WIDTH_PX / DPI, 0.5 * len(names) + 1.6), dpi=DPI,
                    layout="constrained")
    with matplotlib.rc_context({"font.family": family, "axes.unicode_minus": False}):
        axes = figure.subplots()
        axes.barh(names, hours, color="#3b7dd8")
        for y, d in enumerate(rows):
            flags = d.duplicates + d.out_of_plan
            if flags:
                axes.text(hours[y], y, " " + t._("%(count)s flagged", count=flags),
                          va="center", fontsize=8, color=FLAG_COLOUR, family=family)
        axes.invert_yaxis()
        axes.set_xlabel(t._("Town hours (est.)"), family=family)
        axes.set_title(t._("Form burden for %(period)s", period=report.period.label),
                       family=family)
        for tick in axes.get_yticklabels():
            tick.set_fontfamily(family)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def file_stem(report: BurdenReport) -> str:
    """youhu-burden-2025-10."""
    label = "".join(ch if ch.isalnum() or ch == "-" else "_" for ch in report.period.label)
    return f"youhu-burden-{label}"


def burden_files(report: BurdenReport, locale: Locale,
                 only_department: int | None = None) -> Sequence[ReportFile]:
    """The chart (sent as a photo) and the workbook (a document), in
    `locale`, for the whole district or one department's line."""
    t = Translator(locale, report.tz)
    stem = file_stem(report)
    return [ReportFile(f"{stem}.png", chart_png(report, t, only_department), as_photo=True),
            ReportFile(f"{stem}.xlsx", workbook_bytes(report, t, only_department))]

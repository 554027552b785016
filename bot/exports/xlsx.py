"""The report as an Excel workbook (openpyxl): a summary of the district, one
sheet each for the departments (with the ranking), the towns/streets and the
domains, and the 台账 — one row per call. Every sheet has a frozen header
row and filters; column names and labels are in the reader's language;
times are local (the district's zone), as Excel has no time zones; rates are
fractions shown as percentages, so a formula over them works."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from handlers import labels as call_labels
from handlers import report_labels as labels
from handlers.i18n import Translator
from workflows.facts import CallFacts
from workflows.stats import Figures, Report

# The figures' columns on every summary sheet, in this order.
FIGURE_COLUMNS = tuple(labels.FIGURES)
RATE_FORMAT = "0.0%"
HOURS_FORMAT = "0.0"
SCORE_FORMAT = "0.00"
TIME_FORMAT = "yyyy-mm-dd hh:mm"
# The summary sheet: a header, district, period, as of, then the figures.
SUMMARY_FIRST_FIGURE_ROW = 5
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def figure_values(figures: Figures) -> list[Any]:
    """The figures in FIGURE_COLUMNS order, as numbers (None stays empty)."""
    return [getattr(figures, column) for column in FIGURE_COLUMNS]


def _number_format(column: str) -> str | None:
    if column.endswith("_rate"):
        return RATE_FORMAT
    if column.startswith("avg_hours"):
        return HOURS_FORMAT
    return None


def _sheet(book: Workbook, title: str, headers: Sequence[str],
           rows: Sequence[Sequence[Any]], formats: Sequence[str | None]) -> Worksheet:
    sheet = book.create_sheet(title[:31])
    sheet.append(list(headers))
    for cell in sheet[1]:
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    for row in rows:
        sheet.append(list(row))
    for index, fmt in enumerate(formats, start=1):
        if fmt is None:
            continue
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            cell.number_format = fmt
    for index, header in enumerate(headers, start=1):
        values = [str(header), *(str(r[index - 1]) for r in rows[:200]
                                 if r[index - 1] is not None)]
        width = max(_display_width(v) for v in values)
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width + 2, 8), 50)
    sheet.freeze_panes = "B2"
    last = get_column_letter(len(headers))
    sheet.auto_filter.ref = f"A1:{last}{max(len(rows) + 1, 1)}"
    return sheet


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _local(t: Translator, moment: datetime | None) -> datetime | None:
    return moment.astimezone(t.tz).replace(tzinfo=None) if moment is not None else None


def _yes(t: Translator, flag: bool) -> str:
    return t._(labels.YES) if flag else t._(labels.NO)


def _ledger_row(t: Translator, report: Report, fact: CallFacts) -> list[Any]:
    names = report.directory
    rating = t._(call_labels.RATING[fact.rating]) if fact.rating is not None else None
    if fact.auto_closed and fact.rating is None:
        rating = t._(labels.AUTO_CLOSED)
    limits: list[Any] = []
    for limit in fact.limits:
        limits += [_local(t, limit.due), _local(t, limit.done_at), _yes(t, limit.late)]
    return [
        fact.number,
        names.items.get(fact.item_code or "", "") if fact.item_code else "",
        (names.domains.get(fact.domain_code, fact.domain_code) if fact.domain_code
         else t._(labels.NO_DOMAIN)),
        names.towns.get(fact.town_code or "", ""),
        names.units.get(fact.unit_code, fact.unit_code),
        (names.departments.get(fact.department_code, fact.department_code)
         if fact.department_code else t._(labels.NO_DEPARTMENT)),
        t._(call_labels.STATUS[fact.status]),
        fact.text,
        _local(t, fact.raised_at),
        _local(t, fact.dispatched_at),
        *limits,
        _local(t, fact.closed_at),
        _yes(t, fact.late_now),
        fact.supervision_number or "",
        _yes(t, fact.referred),
        rating,
        fact.rating_comment or "",
        fact.source or t._(labels.CHAT_SOURCE),
    ]


LEDGER_COLUMNS = ("number", "item", "domain", "town", "unit", "department", "status", "text",
                  "raised_at", "dispatched_at", "acknowledge_due", "acknowledged_at",
                  "acknowledge_late", "respond_due", "responded_at", "respond_late",
                  "resolve_due", "resolved_at", "resolve_late", "closed_at", "late_now",
                  "supervision_number", "referred", "rating", "rating_comment", "source")


def build_workbook(report: Report, t: Translator) -> Workbook:
    """The workbook of `report` for a reader speaking `t`'s language."""
    book = Workbook()
    book.remove(book.worksheets[0])  # the empty default sheet
    figure_headers = [t._(labels.FIGURES[c]) for c in FIGURE_COLUMNS]
    figure_formats = [_number_format(c) for c in FIGURE_COLUMNS]

    summary: list[list[Any]] = [[t._(labels.GROUPS["district"]), report.district_name],
                                [t._(labels.PERIOD), report.period.label],
                                [t._(labels.AS_OF), _local(t, report.as_of)]]
    summary += [[header, value] for header, value in zip(figure_headers,
                                                         figure_values(report.total),
                                                         strict=True)]
    sheet = _sheet(book, t._(labels.SHEETS["summary"]), [t._(labels.FIGURE), t._(labels.VALUE)],
                   summary, [None, None])
    sheet.cell(row=4, column=2).number_format = TIME_FORMAT
    for row, fmt in enumerate(figure_formats, start=SUMMARY_FIRST_FIGURE_ROW):
        if fmt is not None:
            sheet.cell(row=row, column=2).number_format = fmt
    sheet.append([])
    sheet.append([t._(labels.HEADLINE, raised=t.number(report.total.raised),
                      closed=t.number(report.total.closed))])

    score_keys = ("rating", "performance", "deduction", "score")
    _sheet(book, t._(labels.SHEETS["departments"]),
           [t._(labels.SCORE["rank"]), t._(labels.GROUPS["department"]), *figure_headers,
            *(t._(labels.SCORE[k]) for k in score_keys)],
           [[d.rank, d.department_name, *figure_values(d.figures), d.rating_score,
             d.performance_score, d.deduction, d.score] for d in report.departments],
           [None, None, *figure_formats, *([SCORE_FORMAT] * len(score_keys))])
    _sheet(book, t._(labels.SHEETS["towns"]),
           [t._(labels.GROUPS["town"]), *figure_headers],
           [[g.name, *figure_values(g.figures)] for g in report.towns],
           [None, *figure_formats])
    _sheet(book, t._(labels.SHEETS["domains"]),
           [t._(labels.GROUPS["domain"]), *figure_headers],
           [[g.name if g.code is not None else t._(labels.NO_DOMAIN),
             *figure_values(g.figures)] for g in report.domains],
           [None, *figure_formats])
    if report.sources:  # only when some calls came from other systems (Open311)
        _sheet(book, t._(labels.SHEETS["sources"]),
               [t._(labels.GROUPS["source"]), *figure_headers],
               [[g.name if g.code is not None else t._(labels.CHAT_SOURCE),
                 *figure_values(g.figures)] for g in report.sources],
               [None, *figure_formats])
    ledger_formats = [TIME_FORMAT if c.endswith(("_at", "_due")) else None
                      for c in LEDGER_COLUMNS]
    _sheet(book, t._(labels.SHEETS["ledger"]), [t._(labels.LEDGER[c]) for c in LEDGER_COLUMNS],
           [_ledger_row(t, report, fact) for fact in report.facts], ledger_formats)
    return book


def workbook_bytes(report: Report, t: Translator) -> bytes:
    """The workbook as the bytes of an .xlsx file."""
    buffer = io.BytesIO()
    build_workbook(report, t).save(buffer)
    return buffer.getvalue()

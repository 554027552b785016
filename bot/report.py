"""The period report as plain text for a terminal (`youhu stats`, `youhu
report`, `youhu demo`), in the reader's language.

A renderer of `workflows.stats.Report` like the Excel, chart and JSON
exporters (`bot/exports/`): it counts nothing itself. Columns are padded by
display width, so Chinese names (two columns each) line up.
"""

from __future__ import annotations

import unicodedata

from handlers import report_labels as labels
from handlers.i18n import Translator
from workflows.stats import Figures, Report

# The text table's figure columns (a subset of labels.FIGURES, in this order).
TEXT_COLUMNS = ("raised", "acknowledged", "closed", "late", "overdue", "supervised", "referred",
                "response_rate", "resolution_rate", "satisfaction_rate")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(_pad(c, w, i > 0) for i, (c, w) in enumerate(zip(cells, widths,
                                                                          strict=True)))

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def figure_cells(t: Translator, figures: Figures) -> list[str]:
    """The text columns of one group's figures, formatted for the reader."""
    cells = []
    for column in TEXT_COLUMNS:
        value = getattr(figures, column)
        cells.append(t.percent(value) if column.endswith("_rate") else t.number(value))
    return cells


def _score(t: Translator, value: float | None) -> str:
    return "—" if value is None else t.number(value, "#,##0.0")


def render_report(report: Report, t: Translator) -> str:
    """The report: departments ranked by score, towns, domains, the sources
    (when any system raised calls over Open311), the district."""
    headers = [t._(labels.FIGURES[c]) for c in TEXT_COLUMNS]
    out = [t._(labels.TITLE, period=report.period.label, as_of=t.datetime(report.as_of)), ""]
    rows = [[str(d.rank or "—"), d.department_name, *figure_cells(t, d.figures),
             _score(t, d.rating_score), _score(t, d.performance_score),
             _score(t, -d.deduction if d.deduction else 0.0), _score(t, d.score)]
            for d in report.departments if d.figures.raised]
    weights_note = {"supervision": t.number(report.weights.supervision_deduction),
                    "referral": t.number(report.weights.accountability_deduction)}
    out.append(t._(labels.DEPARTMENTS_HEADING, **weights_note))
    out += _table([t._(labels.SCORE["rank"]), t._(labels.GROUPS["department"]), *headers,
                   *(t._(labels.SCORE[k]) for k in ("rating", "performance", "deduction",
                                                     "score"))], rows)
    quiet = [d.department_name for d in report.departments if d.figures.raised == 0]
    if quiet:
        out.append(t._(labels.QUIET_DEPARTMENTS, names="、".join(quiet)))
    out += ["", t._(labels.TOWNS_HEADING)]
    out += _table([t._(labels.GROUPS["town"]), *headers],
                  [[g.name, *figure_cells(t, g.figures)] for g in report.towns
                   if g.figures.raised])
    out += ["", t._(labels.DOMAINS_HEADING)]
    out += _table([t._(labels.GROUPS["domain"]), *headers],
                  [[g.name if g.code is not None else t._(labels.NO_DOMAIN),
                    *figure_cells(t, g.figures)] for g in report.domains])
    if report.sources:  # only when some system raised calls over Open311
        out += ["", t._(labels.SOURCES_HEADING)]
        out += _table([t._(labels.GROUPS["source"]), *headers],
                      [[g.name if g.code is not None else t._(labels.CHAT_SOURCE),
                        *figure_cells(t, g.figures)] for g in report.sources])
    out += ["", t._(labels.TOTAL_HEADING)]
    out += _table([t._(labels.GROUPS["district"]), *headers],
                  [[report.district_name, *figure_cells(t, report.total)]])
    out += ["", t._(labels.HEADLINE, raised=t.number(report.total.raised),
                    closed=t.number(report.total.closed))]
    return "\n".join(out)

"""The period report as plain text for a terminal (`youhu stats`, `youhu demo`).

Columns are padded by display width, so Chinese names (two columns each) line up.
"""

from __future__ import annotations

import unicodedata

from workflows.stats import Figures, Report


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool = False) -> str:
    gap = " " * max(0, width - _width(text))
    return gap + text if right else text + gap


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(_pad(h, w, i > 0) for i, (h, w) in enumerate(zip(headers, widths,
                                                                          strict=True)))]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_pad(c, w, i > 0) for i, (c, w) in enumerate(zip(row, widths,
                                                                                strict=True))))
    return lines


def _figures(name: str, f: Figures) -> list[str]:
    return [name, str(f.raised), str(f.acknowledged), str(f.closed), str(f.overdue),
            _rate(f.response_rate), _rate(f.resolution_rate), _rate(f.satisfaction_rate)]


FIGURE_HEADERS = ["", "raised", "ack'd", "closed", "overdue", "响应率", "解决率", "满意率"]


def render_report(report: Report) -> str:
    """The report: departments ranked by the 50/50 score, towns, domains, total."""
    out = [f"Report for {report.period.label}", ""]
    rows = []
    for d in report.departments:
        if d.figures.raised == 0:
            continue
        rows.append([str(d.rank or "—"), *_figures(d.department_name, d.figures),
                     _score(d.rating_score), _score(d.performance_score), _score(d.score)])
    quiet = [d.department_name for d in report.departments if d.figures.raised == 0]
    out.append("Departments (score = 50% towns' ratings + 50% performance):")
    out += _table(["rank", *FIGURE_HEADERS[:1], *FIGURE_HEADERS[1:], "rating", "perf.", "score"],
                  rows)
    if quiet:
        out.append(f"No calls: {', '.join(quiet)}")
    out += ["", "Towns/streets (villages included):"]
    out += _table(FIGURE_HEADERS, [_figures(n, f) for n, f in report.towns.items() if f.raised])
    out += ["", "Domains:"]
    out += _table(FIGURE_HEADERS, [_figures(n, f) for n, f in report.domains.items()])
    if report.sources:
        out += ["", "Sources (chat, and the systems that raised calls over Open311):"]
        out += _table(FIGURE_HEADERS, [_figures(n, f) for n, f in report.sources.items()])
    out += ["", "District total:"]
    out += _table(FIGURE_HEADERS, [_figures("白云区", report.total)])
    out += ["", report.headline() + "."]
    return "\n".join(out)

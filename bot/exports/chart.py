"""The report as a chart (matplotlib, Agg, PNG): the departments' scores as
ranking bars, and the period's calls raised and closed per day.

Chinese names need a CJK font. We use Noto Sans CJK from Debian's
`fonts-noto-cjk` (installed by `.ci/run` when missing), found through
matplotlib's font manager or at Debian's path; without one, `chart_png`
raises `NoCjkFont` naming the package, rather than drawing empty boxes.
`YOUHU_CJK_FONT` names another font file to use instead.
"""

from __future__ import annotations

import functools
import io
import os
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import matplotlib
from matplotlib import font_manager
from matplotlib.figure import Figure  # not pyplot: no global state, no display needed

from handlers import report_labels as labels
from handlers.i18n import Translator
from workflows.stats import Report

WIDTH_PX, HEIGHT_PX, DPI = 1200, 900, 100
DEBIAN_FONTS = (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
                Path("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc"))
_FONT_NAMES = ("Noto Sans CJK", "Noto Serif CJK", "Source Han Sans", "WenQuanYi")


class NoCjkFont(RuntimeError):
    """No font with Chinese glyphs could be found for the chart."""


@functools.cache
def cjk_font() -> Path:
    """The file of a font that has Chinese glyphs (see the module docstring)."""
    named = os.environ.get("YOUHU_CJK_FONT")
    if named:
        if not Path(named).is_file():
            raise NoCjkFont(f"YOUHU_CJK_FONT names {named!r}, which is not a file")
        return Path(named)
    for path in DEBIAN_FONTS:
        if path.is_file():
            return path
    for entry in font_manager.fontManager.ttflist:
        if any(entry.name.startswith(name) for name in _FONT_NAMES):
            return Path(entry.fname)
    raise NoCjkFont("no CJK font found for the report's chart: install Debian's "
                    "fonts-noto-cjk (apt-get install fonts-noto-cjk) or set YOUHU_CJK_FONT "
                    "to a font file with Chinese glyphs")


def cjk_family() -> str:
    """The family name of `cjk_font()`, registered with matplotlib's font
    manager: what every chart of ours draws its text in."""
    return _registered_family(cjk_font())


@functools.cache
def _registered_family(path: Path) -> str:
    font_manager.fontManager.addfont(str(path))
    return str(font_manager.FontProperties(fname=str(path)).get_name())


def _days(report: Report, t: Translator) -> list[date]:
    first = report.period.start.astimezone(t.tz).date()
    last = (report.period.end - timedelta(microseconds=1)).astimezone(t.tz).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def build_figure(report: Report, t: Translator) -> Figure:
    """The chart's figure: ranking bars above, raised and closed per day below."""
    family = cjk_family()
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    with matplotlib.rc_context({"font.family": family, "axes.unicode_minus": False}):
        ranking, daily = figure.subplots(2, 1, height_ratios=(3, 2))
        ranked = [d for d in report.departments if d.score is not None]
        ranking.set_title(t._(labels.CHART_RANKING, period=report.period.label), family=family)
        if ranked:
            names = [f"{d.rank}. {d.department_name}" for d in ranked][::-1]
            scores = [d.score or 0.0 for d in ranked][::-1]
            bars = ranking.barh(names, scores, color="#2f6fb0")
            ranking.bar_label(bars, labels=[t.number(s, "0.0") for s in scores], padding=3,
                              family=family)
            ranking.set_xlim(0, 110)
            ranking.set_xlabel(t._(labels.SCORE["score"]), family=family)
            for tick in ranking.get_yticklabels():
                tick.set_fontfamily(family)
        else:
            ranking.text(0.5, 0.5, t._(labels.CHART_NO_DATA), ha="center", va="center",
                         transform=ranking.transAxes, family=family)
            ranking.set_axis_off()
        days = _days(report, t)
        raised = Counter(f.raised_at.astimezone(t.tz).date() for f in report.facts)
        closed = Counter(f.closed_at.astimezone(t.tz).date() for f in report.facts
                         if f.closed and f.closed_at is not None)
        positions = range(len(days))
        width = 0.4
        daily.bar([p - width / 2 for p in positions], [raised[d] for d in days], width,
                  label=t._(labels.CHART_RAISED), color="#e08a1e")
        daily.bar([p + width / 2 for p in positions], [closed[d] for d in days], width,
                  label=t._(labels.CHART_CLOSED), color="#3a9a5b")
        daily.set_title(t._(labels.CHART_DAILY, period=report.period.label), family=family)
        step = max(1, len(days) // 16)
        daily.set_xticks(list(positions)[::step], [d.strftime("%m-%d") for d in days][::step])
        daily.yaxis.get_major_locator().set_params(integer=True)
        daily.legend(prop={"family": family})
    return figure


def chart_png(report: Report, t: Translator) -> bytes:
    """The chart as PNG bytes, WIDTH_PX × HEIGHT_PX."""
    buffer = io.BytesIO()
    build_figure(report, t).savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()

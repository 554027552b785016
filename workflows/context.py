"""What every use case needs besides its arguments: the database, the media
store and the rules in force. Built once by the composition root (`bot/`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from models import MediaStore
from workflows.calendar import WorkingDayCalendar
from workflows.deadlines import Limit, WorkdayPolicy

if TYPE_CHECKING:
    from models import Locale
    from workflows.burden import BurdenReport
    from workflows.stats import Report


@dataclass(frozen=True)
class EvaluationWeights:
    """How a department's score is made: `rating_share` of it from the towns'
    ratings, the rest from performance, weighted as below (normalised), less
    points for each call that reached 督办 and (more) 问责."""

    rating_share: float = 0.5
    on_time_acknowledge: float = 0.25
    on_time_respond: float = 0.25
    on_time_resolve: float = 0.25
    closure: float = 0.25
    supervision_deduction: float = 5.0
    accountability_deduction: float = 10.0


@dataclass(frozen=True)
class BurdenRules:
    """The form-burden watch's settings: the estimated minutes a town spends
    on one field of one request (for "town hours"), and the points a
    department's score loses per unapproved out-of-plan request and per
    duplicate request — 0, off, unless configured."""

    minutes_per_field: int = 10
    deduct_out_of_plan: float = 0.0
    deduct_duplicate: float = 0.0


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which non-emergency nudges wait (may wrap midnight)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str | None) -> QuietHours | None:
        """'22:00-07:00' → QuietHours; 'none', '' or None → None."""
        if not text or text.strip().lower() == "none":
            return None
        begin, _, finish = text.partition("-")
        return cls(time.fromisoformat(begin.strip()), time.fromisoformat(finish.strip()))

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class Rules:
    """The rules in force, from settings."""

    calendar: WorkingDayCalendar = field(default_factory=WorkingDayCalendar)
    policy: WorkdayPolicy = field(default_factory=WorkdayPolicy)
    call_prefix: str = "BY"
    max_photo_bytes: int = 10 * 1024 * 1024
    auto_close_after_days: int = 3
    repeat_every: Limit = field(default_factory=lambda: Limit.parse("1wd"))
    quiet_hours: QuietHours | None = field(
        default_factory=lambda: QuietHours.parse("22:00-07:00")
    )
    weights: EvaluationWeights = field(default_factory=EvaluationWeights)
    burden: BurdenRules = field(default_factory=BurdenRules)

    @property
    def tz(self) -> ZoneInfo:
        return self.policy.tz


@dataclass(frozen=True)
class ReportFile:
    """A report rendered as a file: the chart goes as a photo, the workbook
    as a document."""

    name: str
    data: bytes
    as_photo: bool = False


class ReportExporter(Protocol):
    """Renders a report as files for a reader's locale (the chart, the
    workbook). The composition root plugs in `bot.exports.export_files`,
    since matplotlib and openpyxl live under `bot/`."""

    def __call__(self, report: Report, locale: Locale, /) -> Sequence[ReportFile]: ...


class BurdenExporter(Protocol):
    """Renders the form-burden report as files (the chart, the workbook)
    for a reader's locale, the whole district or one department's line
    (`only_department`). The composition root plugs in
    `bot.exports.burden.burden_files`."""

    def __call__(self, report: BurdenReport, locale: Locale,
                 only_department: int | None = None, /) -> Sequence[ReportFile]: ...


@dataclass(frozen=True)
class Context:
    """The database engine, the media store, the rules, how reports become
    files (None: text only, e.g. in tests that do not need them), and where
    the dispatch board is reached (None: no board is served)."""

    engine: Engine
    media: MediaStore
    rules: Rules = field(default_factory=Rules)
    exports: ReportExporter | None = None
    burden_exports: BurdenExporter | None = None
    board_url: str | None = None

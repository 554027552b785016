"""The composition root: settings in, a ready `Context` out."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.exports import export_files
from bot.exports.burden import burden_files
from bot.settings import Settings
from models import MediaStore, make_engine
from workflows.calendar import WorkingDayCalendar, load_override
from workflows.context import BurdenRules, Context, EvaluationWeights, QuietHours, Rules
from workflows.deadlines import Limit, WorkdayPolicy


def build_rules(settings: Settings) -> Rules:
    """The rules in force, from settings (the calendar override file is read here)."""
    evaluation = settings.evaluation
    return Rules(
        calendar=WorkingDayCalendar(load_override(settings.calendar.override_file)),
        policy=WorkdayPolicy(tz=settings.tz, workday_end=settings.workday.end,
                             workday_start=settings.workday.start),
        call_prefix=settings.call_prefix,
        max_photo_bytes=settings.media.max_bytes,
        auto_close_after_days=settings.escalation.auto_close_after_days,
        repeat_every=Limit.parse(settings.escalation.repeat_every),
        quiet_hours=QuietHours.parse(settings.escalation.quiet_hours),
        weights=EvaluationWeights(
            rating_share=evaluation.rating_share,
            on_time_acknowledge=evaluation.on_time_acknowledge,
            on_time_respond=evaluation.on_time_respond,
            on_time_resolve=evaluation.on_time_resolve,
            closure=evaluation.closure,
            supervision_deduction=evaluation.supervision_deduction,
            accountability_deduction=evaluation.accountability_deduction,
        ),
        burden=BurdenRules(
            minutes_per_field=settings.burden.minutes_per_field,
            deduct_out_of_plan=settings.burden.deduct_out_of_plan,
            deduct_duplicate=settings.burden.deduct_duplicate,
        ),
    )


def build_context(settings: Settings, engine: Engine | None = None) -> Context:
    return Context(
        engine=engine or make_engine(settings.database.url),
        media=MediaStore(settings.media.dir),
        rules=build_rules(settings),
        exports=export_files,
        burden_exports=burden_files,
        board_url=settings.board.url,
    )

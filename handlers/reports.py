"""`/report [YYYY-MM]`: the month's report in the chat — for the command
centre, the supervision office and admins the district's, as a one-paragraph
summary with the chart (a photo) and the workbook (a document); for a
department's head (and liaisons), their own department's figures and rank.

Who may read which report is the policy's (`workflows.access`):
`report_scope` only asks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handlers.i18n import Translator
from handlers.messages import Document, Reply
from handlers.turn import Turn
from models import Unit, session_scope
from workflows import access
from workflows.stats import DepartmentScore, Period, StoredFile, report, store_files


@dataclass(frozen=True)
class ReportScope:
    """What a member may read: the whole district, or one department (by code)."""

    department_code: str | None = None

    @property
    def district(self) -> bool:
        return self.department_code is None


def report_scope(turn: Turn) -> ReportScope | None:
    """What the member may read, as the policy (`workflows.access`) says:
    the district's report, else their own department's, else none."""
    if access.may(turn.actor, access.Permission.READ_DISTRICT_REPORT):
        return ReportScope()
    if turn.member.role in access.DEPARTMENT_ROLES and access.may(
            turn.actor, access.Permission.READ_DEPARTMENT_REPORT,
            department_id=turn.member.unit_id):
        with session_scope(turn.ctx.engine) as session:
            unit = session.get(Unit, turn.member.unit_id)
        return ReportScope(unit.code) if unit is not None else None
    return None


def district_summary(t: Translator, params: Mapping[str, Any]) -> str:
    """The one-paragraph summary of a district report, from its headline
    figures (the monthly notice's parameters, or a fresh report's)."""
    return t._("The report for %(period)s: %(raised)s calls raised, %(closed)s answered and "
               "closed. Response rate %(response)s, resolution rate %(resolution)s, "
               "satisfaction rate %(satisfaction)s. Overdue now: %(overdue)s; supervision "
               "orders: %(supervised)s; accountability referrals: %(referred)s.",
               period=params.get("period", "?"), raised=t.number(params.get("raised", 0)),
               closed=t.number(params.get("closed", 0)),
               response=t.percent(params.get("response_rate")),
               resolution=t.percent(params.get("resolution_rate")),
               satisfaction=t.percent(params.get("satisfaction_rate")),
               overdue=t.number(params.get("overdue", 0)),
               supervised=t.number(params.get("supervised", 0)),
               referred=t.number(params.get("referred", 0)))


def with_files(text: str, files: list[Mapping[str, Any]]) -> Reply:
    """The summary with the chart as its photo and the workbook as a document."""
    photos = tuple(str(f["sha256"]) for f in files if f.get("photo"))
    documents = tuple(Document(name=str(f["name"]), sha256=str(f["sha256"])) for f in files
                      if not f.get("photo"))
    return Reply(text, photos=photos, documents=documents)


def _department_text(t: Translator, period: Period, entry: DepartmentScore,
                     ranked: int) -> str:
    f = entry.figures
    if entry.rank is None:
        return t._("%(department)s had no calls in %(period)s.",
                   department=entry.department_name, period=period.label)
    return t._("%(department)s in %(period)s: rank %(rank)s of %(ranked)s, score %(score)s "
               "(towns' rating %(rating)s, performance %(performance)s, deduction "
               "%(deduction)s). %(raised)s calls raised, %(closed)s answered and closed; "
               "response rate %(response)s, resolution rate %(resolution)s, satisfaction rate "
               "%(satisfaction)s. Overdue now: %(overdue)s; supervision orders: %(supervised)s; "
               "accountability referrals: %(referred)s.",
               department=entry.department_name, period=period.label, rank=entry.rank,
               ranked=ranked, score=t.number(entry.score or 0.0, "#,##0.0"),
               rating=("—" if entry.rating_score is None
                       else t.number(entry.rating_score, "#,##0.0")),
               performance=t.number(entry.performance_score or 0.0, "#,##0.0"),
               deduction=t.number(entry.deduction, "#,##0.#"), raised=t.number(f.raised),
               closed=t.number(f.closed), response=t.percent(f.response_rate),
               resolution=t.percent(f.resolution_rate),
               satisfaction=t.percent(f.satisfaction_rate), overdue=t.number(f.overdue),
               supervised=t.number(f.supervised), referred=t.number(f.referred))


def report_command(turn: Turn) -> list[Reply]:
    """`/report [YYYY-MM]`: this month so far by default, as `/stats`."""
    scope = report_scope(turn)
    if scope is None:
        return turn.say(turn._("The report is for the command centre, the supervision office "
                               "and departments."))
    t, tz = turn.t, turn.ctx.rules.tz
    try:
        period = Period.asked(turn.msg.args[0] if turn.msg.args else None, turn.now, tz)
    except ValueError:
        return turn.say(t._("Usage: /report [YYYY-MM], e.g. /report 2025-10"))
    result = report(turn.ctx, period, turn.now)
    if not scope.district:
        entry = result.department(scope.department_code or "")
        ranked = sum(1 for d in result.departments if d.rank is not None)
        return turn.say(_department_text(t, period, entry, ranked))
    total = result.total
    text = district_summary(t, {
        "period": period.label, "raised": total.raised, "closed": total.closed,
        "response_rate": total.response_rate, "resolution_rate": total.resolution_rate,
        "satisfaction_rate": total.satisfaction_rate, "overdue": total.overdue,
        "supervised": total.supervised, "referred": total.referred})
    files: list[StoredFile] = store_files(turn.ctx, result, turn.member.locale)
    return [with_files(text, [f.as_params() for f in files])]

"""Outbox messages rendered for the member who gets them.

The outbox holds a template name and its parameters (see
`workflows.notifications`); here each becomes text in the member's language,
with the call's current details (loaded now, not when queued), its photos and
the buttons the member can press. Templates:

| template | params | shows |
|---|---|---|
| call_alert | number, role | the call card and photos; the department's buttons |
| call_pending_dispatch | number | the card; how to /assign, department codes |
| call_progress | number, event, note | what happened to the caller's call |
| call_resolved | number, note | before and after photos in one album; confirm / not fixed |
| fix_rejected | number, note | the caller's reason; resolve again |
| request_pending | number, request_id, kind, days, note | approve / refuse |
| request_decided | number, request_id, kind, approved, note | the decision |
| call_closed | number, rating, auto | the rating |
| call_withdrawn | number, note | that it was withdrawn |
| call_info_added | number, note, photos | what the caller added, with its photos |
| nudge | number, limit, step, repeat, due, supervision_number | the ladder's step |
| undeliverable | member, about (the template), why, number, reason | (dispatchers) given up |
| daily_digest | day, open, open_count, overdue, overdue_count | (heads) the morning digest |
| monthly_report | period, raised, closed, overdue, supervised, referred, | (command centre, |
| | response_rate, resolution_rate, satisfaction_rate, documents | supervision office) |
| | | last month, chart, workbook |
| calendar_warning | years, first_day | (admins) the calendar runs out |
| data_request | request_id | (town cadres) a data request, with Answer |
| data_reminder | request_id, step, repeat | (town cadres) a gentle reminder, with Answer |
| data_request_flagged | request_id, flag | (supervisors, dispatchers) out of plan; Approve |
| data_request_approved | request_id | (the department) approved out of plan |
| data_answered | request_id, town_id, reused | (the department) a town's answer |
| burden_report | period | (supervisors) the month's form burden, with its chart |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers import burden, cards, labels, reports
from handlers.buttons import data_button, request_button
from handlers.i18n import Translator
from handlers.messages import Button, Document, Reply
from models import Member, ParticipantRole, Role
from workflows import burden as burden_rules
from workflows import queries
from workflows.context import Context
from workflows.errors import NotFound
from workflows.queries import CallView
from workflows.stats import Period

MAX_DEPARTMENT_LIST = 30


@dataclass(frozen=True)
class Notice:
    """One outbox message about to be rendered for its member."""

    ctx: Context
    member: Member
    t: Translator
    params: Mapping[str, Any]
    view: CallView | None  # the call as it is now (None: no call, or gone)

    @property
    def number(self) -> str:
        return str(self.params.get("number") or (self.view.number if self.view else "?"))

    def with_note(self, text: str) -> str:
        note = self.params.get("note")
        return text + ("\n" + self.t._("Note: %(note)s", note=note) if note else "")

    def reply(self, text: str, buttons: list[list[Button]] | None = None,
              photos: tuple[str, ...] = ()) -> list[Reply]:
        rows = tuple(tuple(row) for row in (buttons or []) if row)
        return [Reply(text, rows, photos)]

    def department_buttons(self, role: ParticipantRole = ParticipantRole.LEAD
                           ) -> list[list[Button]]:
        """Action buttons, for the department's own people only."""
        if self.view is None or self.member.role not in (Role.LIAISON, Role.HEAD):
            return []
        return cards.department_buttons(self.t, self.view, role)


def render(
    ctx: Context, member: Member, template: str, params: Mapping[str, Any], call_id: int | None
) -> list[Reply]:
    """The replies that deliver one outbox message to `member`."""
    view = None
    if call_id is not None:
        try:
            view = queries.call_view(ctx, call_id)
        except NotFound:
            view = None
    notice = Notice(ctx, member, Translator(member.locale, ctx.rules.tz), params, view)
    renderer = _TEMPLATES.get(template)
    if renderer is None or (template in _NEEDS_CALL and view is None):
        return notice.reply(notice.t._("Notice about %(number)s.", number=notice.number))
    return renderer(notice)


def _call_alert(n: Notice) -> list[Reply]:
    assert n.view is not None
    role = ParticipantRole(n.params.get("role", "lead"))
    head = (n.t._("New call for your department:") if role is ParticipantRole.LEAD
            else n.t._("New joint call; your department assists:"))
    return n.reply(head + "\n" + cards.card(n.t, n.ctx.rules, n.view), n.department_buttons(role),
                   n.view.raise_photos)


def _call_pending_dispatch(n: Notice) -> list[Reply]:
    assert n.view is not None
    departments = queries.departments(n.ctx)[:MAX_DEPARTMENT_LIST]
    text = "\n".join([
        n.t._("A call waits for the command centre to dispatch it:"),
        cards.card(n.t, n.ctx.rules, n.view),
        n.t._("Dispatch it with /assign %(number)s <department code>:", number=n.number),
        *(f"{d.code} · {d.name}" for d in departments)])
    return n.reply(text, photos=n.view.raise_photos)


def _call_progress(n: Notice) -> list[Reply]:
    event = str(n.params.get("event", ""))
    what = n.t._(labels.PROGRESS[event]) if event in labels.PROGRESS else event
    return n.reply(n.with_note(n.t._("Your call %(number)s: %(what)s.", number=n.number,
                                     what=what)))


def _call_resolved(n: Notice) -> list[Reply]:
    """Before and after photos in one album, side by side, with confirm / not fixed."""
    text = n.t._("Your call %(number)s is resolved. Please check the before and after photos, "
                 "then confirm the fix or say it is not fixed.", number=n.number)
    if n.view is None:
        return n.reply(n.with_note(text))
    text += "\n" + n.t._("Before: %(before)s photos · after: %(after)s photos",
                         before=len(n.view.raise_photos), after=len(n.view.evidence_photos))
    return n.reply(n.with_note(text), cards.caller_buttons(n.t, n.view),
                   n.view.raise_photos + n.view.evidence_photos)


def _fix_rejected(n: Notice) -> list[Reply]:
    text = n.t._("The caller says %(number)s is not fixed; it is open again.", number=n.number)
    return n.reply(n.with_note(text), n.department_buttons())


def _request_pending(n: Notice) -> list[Reply]:
    t, request_id = n.t, int(n.params.get("request_id") or 0)
    if n.params.get("kind") == "extension":
        text = t._("Request %(request)s: the department asks for %(days)s more working days "
                   "for %(number)s.", request=request_id, days=n.params.get("days"),
                   number=n.number)
    else:
        text = t._("Request %(request)s: the department returns %(number)s as misrouted.",
                   request=request_id, number=n.number)
    if n.view is not None:
        text += "\n" + cards.card(t, n.ctx.rules, n.view)
    buttons = [[request_button(t._("Approve"), "apr", request_id),
                request_button(t._("Refuse"), "ref", request_id)]]
    return n.reply(n.with_note(text), buttons)


def _request_decided(n: Notice) -> list[Reply]:
    t = n.t
    kind = t._(labels.REQUEST_KIND.get(str(n.params.get("kind")), "extension"))
    if n.params.get("approved"):
        text = t._("Your %(kind)s request for %(number)s is approved.", kind=kind,
                   number=n.number)
    else:
        text = t._("Your %(kind)s request for %(number)s is refused.", kind=kind,
                   number=n.number)
    # An upheld return takes the call away: nothing left for this department to press.
    gone = n.params.get("approved") and n.params.get("kind") == "return"
    return n.reply(n.with_note(text), [] if gone else n.department_buttons())


def _call_closed(n: Notice) -> list[Reply]:
    t = n.t
    if n.params.get("auto"):
        return n.reply(t._("%(number)s is closed automatically; the caller did not answer in "
                           "time.", number=n.number))
    level = str(n.params.get("rating"))
    return n.reply(t._("%(number)s is closed. The caller rated it: %(rating)s.", number=n.number,
                       rating=t._(labels.RATING[level]) if level in labels.RATING else "—"))


def _call_info_added(n: Notice) -> list[Reply]:
    """To the department (or the command centre): the caller added to the call."""
    text = n.t._("The caller added information to %(number)s.", number=n.number)
    photos = tuple(str(sha) for sha in n.params.get("photos") or [])
    return n.reply(n.with_note(text), n.department_buttons(), photos)


def _call_withdrawn(n: Notice) -> list[Reply]:
    return n.reply(n.with_note(n.t._("%(number)s was withdrawn by the caller.",
                                     number=n.number)))


def _nudge(n: Notice) -> list[Reply]:
    """A rung of the escalation ladder: reminder, urge, supervision, referral."""
    t, step, limit = n.t, str(n.params.get("step", "")), str(n.params.get("limit", ""))
    due_text = str(n.params.get("due") or "")
    try:
        due = t.datetime(datetime.fromisoformat(due_text)) if due_text else "—"
    except ValueError:
        due = due_text
    headline = t._(labels.STEP.get(step, "Reminder"))
    what = t._(labels.LIMIT.get(limit, "resolve"))
    if step.startswith("reminder"):
        text = t._("%(headline)s: %(number)s must be done (%(what)s) by %(due)s.",
                   headline=headline, number=n.number, what=what, due=due)
    else:
        text = t._("%(headline)s: %(number)s missed its deadline to %(what)s (%(due)s).",
                   headline=headline, number=n.number, what=what, due=due)
    repeat = int(n.params.get("repeat") or 0)
    if repeat:
        text = t.join(text, t._("(repeated %(count)s times)", count=repeat))
    if n.params.get("supervision_number") and n.view is None:  # else the card shows it
        text += "\n" + t._("Supervision order: %(order)s", order=n.params["supervision_number"])
    if step == "accountability" and n.params.get("event_id") and repeat == 0:
        text += "\n" + _dossier(n, queries.event_data(n.ctx, int(n.params["event_id"])))
    if n.view is None:
        return n.reply(text)
    photos = n.view.raise_photos
    if step == "accountability":
        photos += n.view.evidence_photos  # the dossier's evidence
    return n.reply(text + "\n" + cards.card(t, n.ctx.rules, n.view), n.department_buttons(), photos)


def _dossier(n: Notice, data: Mapping[str, Any]) -> str:
    """An accountability referral's dossier: the timeline, the nudges sent,
    the evidence."""
    t = n.t
    dossier = data.get("dossier") or {}
    lines = [t._("Dossier — the call's timeline:")]
    for entry in dossier.get("timeline", []):
        when = t.datetime(datetime.fromisoformat(entry["at"]))
        what = t._(labels.EVENT[entry["event"]]) if entry["event"] in labels.EVENT else (
            entry["event"])
        who = f" · {entry['by']}" if entry.get("by") else ""
        lines.append(f"• {when} {what}{who}")
    lines.append(t._("Reminders and escalations sent: %(count)s",
                     count=len(dossier.get("nudges", []))))
    lines.append(t._("Evidence photos: %(count)s", count=len(dossier.get("evidence", []))))
    return "\n".join(lines)


def _daily_digest(n: Notice) -> list[Reply]:
    """To a department head each working morning: open and overdue calls."""
    t = n.t
    text = t._("Good morning. Your department has %(open)s open calls, %(overdue)s of them "
               "overdue.", open=n.params.get("open_count", 0),
               overdue=n.params.get("overdue_count", 0))
    overdue = n.params.get("overdue") or []
    if overdue:
        text += "\n" + t._("Overdue: %(numbers)s", numbers=", ".join(overdue))
    return n.reply(text)


def _monthly_report(n: Notice) -> list[Reply]:
    """To the command centre and the supervision office on the 1st: last
    month's summary, with the chart and the workbook rendered for the month."""
    text = reports.district_summary(n.t, n.params)
    return [reports.with_files(text, list(n.params.get("documents") or []))]


def _calendar_warning(n: Notice) -> list[Reply]:
    """To admins: the working-day calendar runs out within 60 days."""
    years = ", ".join(str(y) for y in n.params.get("years", []))
    text = n.t._("The working-day calendar does not cover %(years)s (from %(first)s): "
                 "deadlines in those days count weekends only. Add the State Council's "
                 "holiday schedule to the calendar override file.",
                 years=years, first=n.params.get("first_day", "?"))
    return n.reply(text)


def _undeliverable(n: Notice) -> list[Reply]:
    """To dispatchers: a message the deliverer gave up, which call it was
    about, and why, in the reader's language (the platform's own words, if
    any, follow as a detail)."""
    t, params = n.t, n.params
    template = str(params.get("about") or params.get("template") or "")
    what = t._(labels.TEMPLATE[template]) if template in labels.TEMPLATE else template or "?"
    number = params.get("number") or (n.view.number if n.view else None)
    member = params.get("member", "?")
    if number:
        text = t._("A message about %(number)s (%(what)s) could not be delivered to "
                   "%(member)s.", number=number, what=what, member=member)
    else:
        text = t._("A message (%(what)s) could not be delivered to %(member)s.", what=what,
                   member=member)
    why = str(params.get("why") or "")
    if why in labels.UNDELIVERABLE:
        text += " " + t._(labels.UNDELIVERABLE[why])
    text += " " + t._("Please reach them another way.")
    if params.get("reason"):
        text += "\n" + t._("Detail: %(reason)s", reason=params["reason"])
    return n.reply(text)


def _data_request_view(n: Notice) -> burden_rules.RequestView | None:
    try:
        return burden_rules.request_view(n.ctx, int(n.params.get("request_id") or 0))
    except NotFound:
        return None


def _answer_button(n: Notice, view: burden_rules.RequestView) -> list[list[Button]]:
    return [[data_button(n.t._("Answer"), "ans", view.id)]]


def _data_request(n: Notice) -> list[Reply]:
    """To a town's cadres: a department asks for data."""
    view = _data_request_view(n)
    if view is None:
        return n.reply(n.t._("A data request was withdrawn."))
    from handlers.burden_forms import answer_sheet

    text = "\n".join([n.t._("Your town is asked for data."),
                      burden.describe_request(n.t, view),
                      n.t._("Answer with the button, field by field, or fill in the attached "
                            "Excel sheet and send it back here.")])
    sheet = Document(f"{view.number}.xlsx", n.ctx.media.put(answer_sheet(n.t, view)))
    rows = tuple(tuple(row) for row in _answer_button(n, view))
    return [Reply(text, rows, documents=(sheet,))]


def _data_reminder(n: Notice) -> list[Reply]:
    """To a town's cadres who have not answered: a reminder, never more."""
    view = _data_request_view(n)
    if view is None or view.status.value != "open":
        return n.reply(n.t._("A data request no longer needs an answer."))
    due = n.t.datetime(view.due_at) if view.due_at else "—"
    if n.params.get("step") == "overdue":
        text = n.t._("Reminder: %(number)s 「%(title)s」 from %(department)s was due %(due)s. "
                     "Please answer when you can.", number=view.number, title=view.title,
                     department=view.department, due=due)
    else:
        text = n.t._("Reminder: %(number)s 「%(title)s」 from %(department)s is due by "
                     "%(due)s.", number=view.number, title=view.title,
                     department=view.department, due=due)
    return n.reply(text, _answer_button(n, view))


def _data_request_flagged(n: Notice) -> list[Reply]:
    """To the supervision office and the command centre: out of plan."""
    view = _data_request_view(n)
    if view is None:
        return n.reply(n.t._("A data request was withdrawn."))
    text = "\n".join([n.t._("Out-of-plan data request (计划外) sent to %(count)s towns:",
                             count=view.towns_asked), burden.describe_request(n.t, view)])
    buttons: list[list[Button]] = []
    if n.member.role in (Role.DISPATCHER, Role.ADMIN) and not view.approved:
        buttons = [[data_button(n.t._("Approve"), "apr", view.id)]]
    return n.reply(text, buttons)


def _data_request_approved(n: Notice) -> list[Reply]:
    view = _data_request_view(n)
    number = view.number if view else "?"
    return n.reply(n.t._("The command centre approved %(number)s although it is out of plan.",
                         number=number))


def _data_answered(n: Notice) -> list[Reply]:
    """To the department: a town answered, with the values."""
    view = _data_request_view(n)
    if view is None:
        return n.reply(n.t._("A data request was withdrawn."))
    town_id = int(n.params.get("town_id") or 0)
    found = [a for a in burden_rules.answers(n.ctx, view.id) if a.town_id == town_id]
    text = n.t._("%(town)s answered %(number)s (%(answered)s of %(count)s towns).",
                 town=found[0].town if found else "?", number=view.number,
                 answered=view.towns_answered, count=view.towns_asked)
    photos: tuple[str, ...] = ()
    if found:
        if found[0].reused:
            text += " " + n.t._("No change since last time: the earlier answer was reused.")
        text += "\n" + burden.values_text(n.t, view.fields, found[0].values)
        photos = tuple(str(found[0].values[f["name"]]) for f in view.fields
                       if f["kind"] == "photo" and f["name"] in found[0].values)
    return n.reply(text, photos=photos)


def _burden_report(n: Notice) -> list[Reply]:
    """To the supervision office on the 1st: last month's form burden."""
    from handlers.burden_forms import report_text

    try:
        period = Period.parse(str(n.params.get("period", "")), n.ctx.rules.tz)
    except ValueError:
        return n.reply(n.t._("The form burden report could not be made."))
    result = burden_rules.burden_report(n.ctx, period)
    files = burden_rules.store_files(n.ctx, result, n.t.locale)
    text = report_text(n.t, result) + "\n" + n.t._(
        "Send /burden %(period)s to see it again.", period=period.label)
    return [reports.with_files(text, [f.as_params() for f in files])]


_TEMPLATES: dict[str, Callable[[Notice], list[Reply]]] = {
    "call_alert": _call_alert,
    "call_pending_dispatch": _call_pending_dispatch,
    "call_progress": _call_progress,
    "call_resolved": _call_resolved,
    "fix_rejected": _fix_rejected,
    "request_pending": _request_pending,
    "request_decided": _request_decided,
    "call_closed": _call_closed,
    "call_withdrawn": _call_withdrawn,
    "call_info_added": _call_info_added,
    "nudge": _nudge,
    "undeliverable": _undeliverable,
    "daily_digest": _daily_digest,
    "monthly_report": _monthly_report,
    "calendar_warning": _calendar_warning,
    "data_request": _data_request,
    "data_reminder": _data_reminder,
    "data_request_flagged": _data_request_flagged,
    "data_request_approved": _data_request_approved,
    "data_answered": _data_answered,
    "burden_report": _burden_report,
}
_NEEDS_CALL = frozenset({"call_alert", "call_pending_dispatch"})

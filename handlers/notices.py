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
| nudge | number, limit, step, repeat, due, supervision_number | the ladder's step |
| undeliverable | member, about (the template), reason | (dispatchers) unreachable |
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from handlers import cards, labels
from handlers.buttons import request_button
from handlers.i18n import Translator
from handlers.messages import Button, Reply
from models import Member, ParticipantRole, Role
from workflows import queries
from workflows.context import Context
from workflows.errors import NotFound

MAX_DEPARTMENT_LIST = 30


def render(
    ctx: Context, member: Member, template: str, params: Mapping[str, Any], call_id: int | None
) -> list[Reply]:
    """The replies that deliver one outbox message to `member`."""
    t = Translator(member.locale, ctx.rules.tz)
    view = None
    if call_id is not None:
        try:
            view = queries.call_view(ctx, call_id)
        except NotFound:
            view = None
    number = params.get("number") or (view.number if view else "?")
    note = params.get("note")

    def with_note(text: str) -> str:
        return text + ("\n" + t._("Note: %(note)s", note=note) if note else "")

    def rows(buttons: list[list[Button]]) -> tuple[tuple[Button, ...], ...]:
        return tuple(tuple(row) for row in buttons if row)

    if template == "call_alert" and view is not None:
        role = ParticipantRole(params.get("role", "lead"))
        head = (t._("New call for your department:") if role is ParticipantRole.LEAD
                else t._("New joint call; your department assists:"))
        buttons = []
        if member.role in (Role.LIAISON, Role.HEAD):
            buttons = cards.department_buttons(t, view, role)
        return [Reply(head + "\n" + cards.card(t, view), rows(buttons), view.raise_photos)]
    if template == "call_pending_dispatch" and view is not None:
        departments = queries.departments(ctx)[:MAX_DEPARTMENT_LIST]
        codes = "\n".join(f"{d.code} · {d.name}" for d in departments)
        text = "\n".join([
            t._("A call waits for the command centre to dispatch it:"), cards.card(t, view),
            t._("Dispatch it with /assign %(number)s <department code>:", number=number), codes])
        return [Reply(text, (), view.raise_photos)]
    if template == "call_progress":
        event = str(params.get("event", ""))
        what = t._(labels.PROGRESS[event]) if event in labels.PROGRESS else event
        text = t._("Your call %(number)s: %(what)s.", number=number, what=what)
        return [Reply(with_note(text))]
    if template == "call_resolved":
        text = t._("Your call %(number)s is resolved. Please check the before and after photos, "
                   "then confirm the fix or say it is not fixed.", number=number)
        photos: tuple[str, ...] = ()
        buttons = []
        if view is not None:
            text += "\n" + t._("Before: %(before)s photos · after: %(after)s photos",
                               before=len(view.raise_photos), after=len(view.evidence_photos))
            photos = view.raise_photos + view.evidence_photos
            buttons = cards.caller_buttons(t, view)
        return [Reply(with_note(text), rows(buttons), photos)]
    if template == "fix_rejected":
        text = t._("The caller says %(number)s is not fixed; it is open again.", number=number)
        buttons = cards.department_buttons(t, view) if view is not None else []
        return [Reply(with_note(text), rows(buttons))]
    if template == "request_pending":
        request_id = int(params.get("request_id") or 0)
        if params.get("kind") == "extension":
            text = t._("Request %(request)s: the department asks for %(days)s more working days "
                       "for %(number)s.", request=request_id, days=params.get("days"),
                       number=number)
        else:
            text = t._("Request %(request)s: the department returns %(number)s as misrouted.",
                       request=request_id, number=number)
        buttons = [[request_button(t._("Approve"), "apr", request_id),
                    request_button(t._("Refuse"), "ref", request_id)]]
        if view is not None:
            text += "\n" + cards.card(t, view)
        return [Reply(with_note(text), rows(buttons))]
    if template == "request_decided":
        kind = t._(labels.REQUEST_KIND.get(str(params.get("kind")), "extension"))
        if params.get("approved"):
            text = t._("Your %(kind)s request for %(number)s is approved.", kind=kind,
                       number=number)
        else:
            text = t._("Your %(kind)s request for %(number)s is refused.", kind=kind,
                       number=number)
        buttons = (cards.department_buttons(t, view)
                   if (view is not None and not params.get("approved"))
                   or (view is not None and params.get("kind") == "extension") else [])
        return [Reply(with_note(text), rows(buttons))]
    if template == "call_closed":
        if params.get("auto"):
            text = t._("%(number)s is closed automatically; the caller did not answer in time.",
                       number=number)
        else:
            level = str(params.get("rating"))
            text = t._("%(number)s is closed. The caller rated it: %(rating)s.", number=number,
                       rating=t._(labels.RATING[level]) if level in labels.RATING else "—")
        return [Reply(text)]
    if template == "call_withdrawn":
        return [Reply(with_note(t._("%(number)s was withdrawn by the caller.", number=number)))]
    if template == "nudge":
        return [_nudge(t, member, params, view, number)]
    if template == "undeliverable":
        text = t._("A message (%(template)s) could not be delivered to %(member)s. Please "
                   "reach them another way.",
                   template=params.get("about") or params.get("template") or "?",
                   member=params.get("member", "?"))
        if params.get("reason"):
            text += "\n" + t._("Detail: %(reason)s", reason=params["reason"])
        return [Reply(text)]
    return [Reply(t._("Notice about %(number)s.", number=number))]


def _nudge(t: Translator, member: Member, params: Mapping[str, Any],
           view: queries.CallView | None, number: str) -> Reply:
    step = str(params.get("step", ""))
    limit = str(params.get("limit", ""))
    due_text = str(params.get("due") or "")
    try:
        due = t.datetime(datetime.fromisoformat(due_text)) if due_text else "—"
    except ValueError:
        due = due_text
    headline = t._(labels.STEP.get(step, "Reminder"))
    what = t._(labels.LIMIT.get(limit, "resolve"))
    if step.startswith("reminder"):
        text = t._("%(headline)s: %(number)s must be done (%(what)s) by %(due)s.",
                   headline=headline, number=number, what=what, due=due)
    else:
        text = t._("%(headline)s: %(number)s missed its deadline to %(what)s (%(due)s).",
                   headline=headline, number=number, what=what, due=due)
    repeat = int(params.get("repeat") or 0)
    if repeat:
        text += " " + t._("(repeated %(count)s times)", count=repeat)
    buttons: list[list[Button]] = []
    if view is not None:
        text += "\n" + cards.card(t, view)
        if member.role in (Role.LIAISON, Role.HEAD):
            buttons = cards.department_buttons(t, view)
    return Reply(text, tuple(tuple(row) for row in buttons if row),
                 view.raise_photos if view is not None else ())

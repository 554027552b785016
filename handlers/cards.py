"""How a call is shown: the card (who, what, where, deadlines), one-line
listings, and the buttons each party gets for the call's current state."""

from __future__ import annotations

from datetime import datetime

from handlers import labels
from handlers.buttons import call_button
from handlers.i18n import Translator
from handlers.messages import Button
from models import CallStatus, ParticipantRole
from workflows.context import Rules
from workflows.deadlines import is_estimate
from workflows.lifecycle import OPEN_FOR_INFO
from workflows.queries import CallView

S = CallStatus
MAX_SHOWN_TEXT = 500


def _when(t: Translator, moment: datetime | None) -> str:
    return t.datetime(moment) if moment is not None else "—"


def place(t: Translator, view: CallView) -> str | None:
    parts = []
    if view.location_text:
        parts.append(view.location_text)
    if view.latitude is not None and view.longitude is not None:
        parts.append(f"{view.latitude:.5f}, {view.longitude:.5f}")
    return " · ".join(parts) if parts else None


def dated(t: Translator, rules: Rules, view: CallView, text: str,
          *dues: datetime | None) -> str:
    """`text`, which shows the call's deadlines `dues`, with the reader told
    when one of them is only an estimate (`deadlines.is_estimate`: counted
    from the weekends, the year's holiday schedule not yet published). Every
    text that shows a deadline to a member goes through here."""
    if any(due is not None and is_estimate(view.raised_at, due, view.emergency, rules.calendar,
                                           rules.policy) for due in dues):
        return t.join(text, t._("(estimated from weekends; the holiday schedule is not yet "
                                "published)"))
    return text


def deadlines(t: Translator, rules: Rules, view: CallView) -> str:
    """The three limits in the member's language and local time."""
    if view.acknowledge_due is None:
        return t._("Deadlines start once the command centre dispatches it.")
    text = t._(
        "Acknowledge by %(ack)s; respond by %(respond)s; resolve by %(resolve)s.",
        ack=_when(t, view.acknowledge_due),
        respond=_when(t, view.respond_due),
        resolve=_when(t, view.resolve_due),
    )
    return dated(t, rules, view, text, view.acknowledge_due, view.respond_due, view.resolve_due)


def time_left(t: Translator, rules: Rules, view: CallView, limit: str, due: datetime,
              now: datetime) -> str:
    """How long is left to meet the deadline `due` of `limit` (or how late it is)."""
    what = t._(labels.LIMIT.get(str(limit), "resolve"))
    if due >= now:
        text = t._("%(left)s left to %(what)s (by %(due)s)", left=t.duration(due - now),
                   what=what, due=_when(t, due))
    else:
        text = t._("%(late)s late to %(what)s (was due %(due)s)", late=t.duration(now - due),
                   what=what, due=_when(t, due))
    return dated(t, rules, view, text, due)


def card(t: Translator, rules: Rules, view: CallView) -> str:
    """The call in full, as an alert or a notice shows it."""
    item = view.item_name or t._("not sure (the command centre routes it)")
    lines = [
        t._("Call %(number)s", number=view.number)
        + (" ⚠" + t._("emergency") if view.emergency else ""),
        t._("Item: %(item)s", item=item)
        + (f" ({view.domain_name})" if view.domain_name else ""),
        t._("From: %(caller)s, %(unit)s", caller=view.caller_name, unit=view.unit_name),
        t._("Raised: %(when)s", when=t.datetime(view.raised_at)),
        "「" + clip(view.text) + "」",
    ]
    if view.source:
        lines.insert(3, t._("Raised by the system %(source)s (Open311)", source=view.source))
    if view.source_media_error:
        reason = labels.MEDIA_ERROR.get(view.source_media_error, view.source_media_error)
        lines.append(t._("The system's photo could not be fetched: %(reason)s",
                         reason=t._(reason)))
    where = place(t, view)
    if where:
        lines.append(t._("Place: %(place)s", place=where))
    if view.lead_department:
        lines.append(t._("Department: %(department)s", department=view.lead_department))
    if view.assisting_departments:
        lines.append(t._("Assisting: %(departments)s",
                         departments="、".join(view.assisting_departments)))
    if view.supervision_number:
        lines.append(t._("Supervision order: %(number)s", number=view.supervision_number))
    lines.append(t._("Status: %(status)s", status=t._(labels.STATUS[view.status])))
    if view.status not in (S.CLOSED, S.WITHDRAWN, S.RESOLVED):
        lines.append(deadlines(t, rules, view))
    if view.raise_photos:
        lines.append(t._("Photos: %(count)s", count=len(view.raise_photos)))
    return "\n".join(lines)


def clip(text: str) -> str:
    """`text`, cut to what a card shows."""
    return text if len(text) <= MAX_SHOWN_TEXT else text[:MAX_SHOWN_TEXT] + "…"


def line(t: Translator, view: CallView) -> str:
    """The call in one line, for lists (/mine, /find, /overdue)."""
    item = view.item_name or t._("not sure")
    department = view.lead_department or t._("command centre")
    summary = view.text if len(view.text) <= 30 else view.text[:30] + "…"
    return (f"{view.number} · {t._(labels.STATUS[view.status])} · {item} · {department}"
            f" · {summary}")


def department_buttons(
    t: Translator, view: CallView, role: ParticipantRole | None = ParticipantRole.LEAD
) -> list[list[Button]]:
    """What a liaison of the lead (or an assisting) department can do now."""
    cid = view.id
    if role is ParticipantRole.ASSISTING:
        if view.status in (S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.EXTENSION_REQUESTED):
            return [[call_button(t._("Acknowledge"), "ack", cid)]]
        return []
    if view.status is S.DISPATCHED:
        return [[call_button(t._("Acknowledge"), "ack", cid),
                 call_button(t._("Return"), "ret", cid)]]
    if view.status is S.ACKNOWLEDGED:
        return [[call_button(t._("Respond"), "rsp", cid),
                 call_button(t._("Return"), "ret", cid)]]
    if view.status is S.IN_PROGRESS:
        return [[call_button(t._("Resolve"), "res", cid),
                 call_button(t._("Ask for an extension"), "ext", cid)]]
    return []


def caller_buttons(t: Translator, view: CallView) -> list[list[Button]]:
    """What the caller can do now."""
    if view.status is S.RESOLVED:
        return [[call_button(t._("Confirm the fix"), "cfm", view.id),
                 call_button(t._("Not fixed"), "rej", view.id)]]
    rows: list[list[Button]] = []
    if view.status in OPEN_FOR_INFO:
        rows.append([call_button(t._("Add information"), "add", view.id)])
    if view.status in (S.RAISED, S.PENDING_DISPATCH, S.DISPATCHED):
        rows.append([call_button(t._("Withdraw %(number)s", number=view.number), "wd", view.id)])
    return rows

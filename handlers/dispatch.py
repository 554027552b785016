"""The command centre's commands (dispatchers and admins decide; supervisors
may read): /stats, /overdue, /find, /assign, /approve, /refuse. Each is
refused to other roles."""

from __future__ import annotations

from handlers import audience, cards
from handlers.buttons import Press, request_button
from handlers.errors import describe
from handlers.i18n import Translator
from handlers.messages import Reply
from handlers.turn import Turn
from models import RequestKind
from workflows import access, calls, queries, queues
from workflows.access import Command
from workflows.errors import WorkflowError
from workflows.stats import Period, report

TOP = 10


def _refuse(turn: Turn) -> list[Reply]:
    return turn.say(turn._("This command is for the command centre."))


def stats(turn: Turn) -> list[Reply]:
    """`/stats [YYYY-MM]`: this month by default."""
    if not access.may(turn.actor, Command.STATS):
        return _refuse(turn)
    t, tz = turn.t, turn.ctx.rules.tz
    try:
        period = Period.asked(turn.msg.args[0] if turn.msg.args else None, turn.now, tz)
    except ValueError:
        return turn.say(t._("Usage: /stats [YYYY-MM], e.g. /stats 2025-10"))
    result = report(turn.ctx, period, turn.now)
    total = result.total
    lines = [
        t._("Figures for %(period)s", period=period.label),
        t._("Calls raised: %(raised)s; answered and closed: %(closed)s.",
            raised=t.number(total.raised), closed=t.number(total.closed)),
        t._("Acknowledged: %(ack)s · responded: %(responded)s · overdue: %(overdue)s",
            ack=t.number(total.acknowledged), responded=t.number(total.responded),
            overdue=t.number(total.overdue)),
        t._("Response rate %(response)s · resolution rate %(resolution)s · satisfaction rate "
            "%(satisfaction)s", response=t.percent(total.response_rate),
            resolution=t.percent(total.resolution_rate),
            satisfaction=t.percent(total.satisfaction_rate)),
    ]
    if total.avg_hours_to_acknowledge is not None or total.avg_hours_to_resolve is not None:
        lines.append(t._("Average working hours to acknowledge: %(ack)s · to resolve: "
                         "%(resolve)s", ack=_hours(t, total.avg_hours_to_acknowledge),
                         resolve=_hours(t, total.avg_hours_to_resolve)))
    ranked = [d for d in result.departments if d.rank is not None][:TOP]
    if ranked:
        lines.append(t._("Ranking (half the towns' ratings, half performance):"))
        for entry in ranked:
            lines.append(t._("%(rank)s. %(department)s: score %(score)s (%(raised)s raised, "
                             "%(closed)s closed)", rank=entry.rank,
                             department=entry.department_name,
                             score=t.number(entry.score or 0.0, "#,##0.0"),
                             raised=t.number(entry.figures.raised),
                             closed=t.number(entry.figures.closed)))
    systems = [g for g in result.sources if g.code is not None]  # not the chat's own
    if systems:
        lines.append(t._("Raised by other systems (Open311):"))
        for group in systems:
            lines.append(t._("%(source)s: %(raised)s raised, %(closed)s closed", source=group.name,
                             raised=t.number(group.figures.raised),
                             closed=t.number(group.figures.closed)))
    return turn.say("\n".join(lines))


def _hours(t: Translator, hours: float | None) -> str:
    return "—" if hours is None else t.number(hours, "#,##0.0")


def overdue(turn: Turn) -> list[Reply]:
    if not access.may(turn.actor, Command.OVERDUE):
        return _refuse(turn)
    views = queries.overdue_calls(turn.ctx, turn.now)
    if not views:
        return turn.say(turn._("No call is overdue."))
    return turn.say("\n".join([turn._("Overdue calls:")] + [cards.line(turn.t, v) for v in views]))


def find(turn: Turn) -> list[Reply]:
    if not access.may(turn.actor, Command.FIND):
        return _refuse(turn)
    if not turn.msg.args:
        return turn.say(turn._("Usage: /find <number or words>"))
    views = queries.find_calls(turn.ctx, turn.msg.command_text)
    if not views:
        return turn.say(turn._("No call matches."))
    if len(views) == 1:
        return turn.say(cards.card(turn.t, turn.ctx.rules, views[0]), photos=views[0].raise_photos)
    return turn.say("\n".join([turn._("Matching calls:")] + [cards.line(turn.t, v) for v in views]))


def queue(turn: Turn) -> list[Reply]:
    """`/queue`: calls to dispatch and requests to decide, the longest waiting first."""
    if not audience.sees_dispatch_queue(turn.member):
        return _refuse(turn)
    waiting = queues.dispatch_queue(turn.ctx)
    if not waiting:
        return turn.say(turn._("Nothing waits for the command centre."))
    t = turn.t
    replies = [Reply(t._("Waiting for the command centre, the longest waiting first:"))]
    for item in waiting:
        request = item.request
        if request is None:
            text = "\n".join([cards.line(t, item.view),
                              t._("Dispatch it with /assign %(number)s <department code>.",
                                  number=item.view.number)])
            replies.append(Reply(text))
            continue
        if request.kind is RequestKind.EXTENSION:
            head = t._("Request %(request)s: the department asks for %(days)s more working "
                       "days for %(number)s.", request=request.id, days=request.days,
                       number=item.view.number)
        else:
            head = t._("Request %(request)s: the department returns %(number)s as misrouted.",
                       request=request.id, number=item.view.number)
        text = "\n".join([head, cards.line(t, item.view), t._("Note: %(note)s",
                                                              note=request.reason)])
        buttons = ((request_button(t._("Approve"), "apr", request.id or 0),
                    request_button(t._("Refuse"), "ref", request.id or 0)),)
        replies.append(Reply(text, buttons))
    return replies


def assign(turn: Turn) -> list[Reply]:
    """`/assign <number> <department code>`."""
    if not access.may(turn.actor, Command.ASSIGN):
        return _refuse(turn)
    if len(turn.msg.args) != 2:
        return turn.say(turn._("Usage: /assign <number> <department code>"))
    number, department = turn.msg.args
    try:
        view = queries.call_by_number(turn.ctx, number, turn.actor)
        view = calls.assign(turn.ctx, view.id, turn.member_id, turn.now, department)
    except WorkflowError as error:
        return turn.say(describe(turn.t, error))
    return turn.say(turn._("%(number)s is dispatched to %(department)s.", number=view.number,
                           department=view.lead_department or department))


def decide(turn: Turn, approve: bool) -> list[Reply]:
    """`/approve <request> [department code]` and `/refuse <request> [note]`."""
    if not access.may(turn.actor, Command.APPROVE if approve else Command.REFUSE):
        return _refuse(turn)
    args = turn.msg.args
    if not args or not args[0].isdigit():
        return turn.say(turn._("Usage: /approve <request> [department code] or /refuse "
                               "<request> [note]"))
    department = args[1] if approve and len(args) > 1 else None
    note = " ".join(args[1:]) if not approve and len(args) > 1 else None
    return _decide(turn, int(args[0]), approve, department, note)


def press(turn: Turn, pressed: Press) -> list[Reply]:
    """The Approve / Refuse buttons of a request notice."""
    if not access.may(turn.actor, Command.APPROVE if pressed.action == "apr"
                      else Command.REFUSE):
        return _refuse(turn)
    return _decide(turn, pressed.target, pressed.action == "apr", None, None)


def _decide(turn: Turn, request_id: int, approve: bool, department: str | None,
            note: str | None) -> list[Reply]:
    try:
        view = calls.decide_request(turn.ctx, request_id, turn.member_id, turn.now, approve,
                                    department_code=department, note=note)
    except WorkflowError as error:
        return turn.say(describe(turn.t, error))
    if approve:
        text = turn._("Request %(request)s for %(number)s is approved.", request=request_id,
                      number=view.number)
    else:
        text = turn._("Request %(request)s for %(number)s is refused.", request=request_id,
                      number=view.number)
    if view.lead_department_id is None:
        text += "\n" + turn._("Dispatch it with /assign %(number)s <department code>.",
                              number=view.number)
    return turn.say(text)

"""The form-burden watch in chat, for every channel.

- `/request` (a department's liaison or head): title → fields (name, kind,
  choices; up to 20) → towns (all, or named) → due in working days → plan
  item → earlier similar requests, with their answers, to reuse instead of
  sending → send.
- `/answer` or the Answer button (a town's cadre): "no change since last
  time" when the town answered a similar request before, then each field
  still open, a summary, submit.
- The Approve button of an out-of-plan flag (the command centre).
- `/burden [YYYY-MM]`: the burden report, with its chart.

The rules — who may, the plan, similarity, duplicates — are in
`workflows.burden`; here we only ask and tell.
"""

from __future__ import annotations

from typing import Any

from handlers import dialogs
from handlers.buttons import Press, data_button
from handlers.dialogs import DialogState
from handlers.errors import describe
from handlers.i18n import N_, Translator
from handlers.messages import Button, Reply
from handlers.reports import with_files
from handlers.turn import Turn
from models import Locale
from workflows import access, burden
from workflows.access import Command, Permission
from workflows.burden import RequestView
from workflows.errors import WorkflowError
from workflows.photos import check_photo
from workflows.stats import Period

COMPOSE = "datarequest"
ANSWER = "dataanswer"
DUE_CHOICES = (1, 2, 3, 5, 10)
MAX_SIMILAR = 3
MAX_PLAN_BUTTONS = 12

KIND: dict[str, str] = {
    "number": N_("number"),
    "text": N_("text"),
    "choice": N_("choice"),
    "date": N_("date"),
    "photo": N_("photo"),
}

FLAG: dict[str, str] = {
    "in_plan": N_("in the plan"),
    "not_in_plan": N_("out of plan (计划外): not in the department's plan"),
    "over_count": N_("out of plan (计划外): over the plan item's yearly count"),
}

_PROBLEMS: dict[str, str] = {
    "empty_title": N_("The title is empty. Please type it."),
    "title_too_long": N_("The title is too long: at most %(limit)s characters."),
    "empty_field_name": N_("The field name is empty. Please type it."),
    "field_name_too_long": N_("The field name is too long: at most %(limit)s characters."),
    "bad_field_kind": N_("Please choose the kind of the field with the buttons."),
    "bad_choices": N_("A choice needs 2 to %(limit)s options, separated by commas."),
    "bad_field_count": N_("A request asks 1 to %(limit)s fields."),
    "same_field_name": N_("Two fields have the same name."),
    "bad_due": N_("The due date is 1 to %(limit)s working days away."),
    "bad_towns": N_("Please name at least one town or street."),
    "no_town": N_("There is no town or street %(word)s."),
    "not_similar": N_("That earlier request is not similar to this one."),
    "not_plan_item": N_("That plan item is not your department's for this year."),
    "empty_answer": N_("The answer is empty. Please type it."),
    "not_a_number": N_("Please answer with a number."),
    "not_a_date": N_("Please answer with a date written YYYY-MM-DD, e.g. 2025-10-31."),
    "not_a_choice": N_("Please answer with one of the buttons."),
    "not_a_photo": N_("Please send a photo."),
    "answer_too_long": N_("The answer is too long: at most %(limit)s characters."),
    "bad_reuse": N_("That earlier answer is not your town's."),
}


_REFUSALS: dict[str, str] = {
    "not_your_town": N_("This data request is not for your town."),
    "answered": N_("Your town has already answered %(number)s."),
    "not_to_approve": N_("%(number)s is in the plan or already approved."),
}


def problem(t: Translator, error: WorkflowError) -> str:
    """A refused step of the burden watch in the member's words."""
    reason = str(error.params.get("reason", ""))
    params = {k: v for k, v in error.params.items() if k in ("limit", "word", "number")}
    if error.code == "invalid_input" and reason in _PROBLEMS:
        return t._(_PROBLEMS[reason], **params)
    if reason in _REFUSALS:
        # Chinese sentences are joined without a space.
        gap = " " if t.locale is Locale.EN else ""
        return t._(_REFUSALS[reason], **params) + gap + t._("Nothing was changed.")
    return describe(t, error)


def _when(t: Translator, view: RequestView) -> str:
    return t.datetime(view.due_at) if view.due_at else "—"


def describe_request(t: Translator, view: RequestView) -> str:
    """A request's card: number, department, title, fields, due, plan mark."""
    lines = [t._("Data request %(number)s from %(department)s:", number=view.number,
                 department=view.department),
             "「" + view.title + "」"]
    for i, spec in enumerate(view.fields, 1):
        kind = t._(KIND.get(spec["kind"], "text"))
        extra = (" (" + " / ".join(spec["choices"]) + ")") if spec.get("choices") else ""
        lines.append(f"{i}. {spec['name']} · {kind}{extra}")
    if view.due_at:
        lines.append(t._("Due by %(due)s.", due=_when(t, view)))
    if view.plan_flag.value != "in_plan":
        mark = t._(FLAG[view.plan_flag.value])
        if view.approved:
            mark += " · " + t._("approved by the command centre")
        lines.append(mark)
    if view.duplicate_of:
        lines.append(t._("Counted as a duplicate of %(number)s.", number=view.duplicate_of))
    return "\n".join(lines)


def values_text(t: Translator, fields: list[dict[str, Any]], values: dict[str, Any]) -> str:
    lines = []
    for spec in fields:
        if spec["name"] not in values:
            continue
        value = values[spec["name"]]
        shown = t._("(photo)") if spec["kind"] == "photo" else str(value)
        lines.append(f"· {spec['name']}: {shown}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- composing


def start(turn: Turn) -> list[Reply]:
    """`/request`: a department's liaison or head drafts a data request."""
    if not access.may(turn.actor, Command.REQUEST):
        return turn.say(turn._("Only a department's liaison or head sends data requests."))
    if turn.dialog is not None and turn.dialog.flow == COMPOSE:
        return [Reply(turn._("You are already drafting a data request.")),
                COMPOSER.prompt(turn, turn.dialog)]
    state = turn.begin(COMPOSE, "title", fields=[], towns=[])
    return [COMPOSER.prompt(turn, state)]


def _draft(data: dict[str, Any]) -> burden.Draft:
    return burden.Draft(str(data.get("title", "")), list(data.get("fields", [])),
                        [int(t) for t in data.get("towns", [])], int(data.get("due", 3)),
                        data.get("plan"))


class ComposeFlow:
    """The questions of a data request, one per step."""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        t, step, data = turn.t, state.step, state.data
        cancel = turn.cancel_button(state)
        if step == "title":
            return Reply(t._("New data request. Type its title, e.g. %(example)s.",
                             example="2025年农村自建房安全排查统计"), ((cancel,),))
        if step == "field_name":
            count = len(data["fields"])
            text = t._("Field %(n)s of at most %(limit)s: type its name.", n=count + 1,
                       limit=burden.MAX_FIELDS)
            if count:
                text = "\n".join([t._("Fields so far:")]
                                 + [f"{i}. {f['name']} · {t._(KIND[f['kind']])}"
                                    for i, f in enumerate(data["fields"], 1)]
                                 + [t.join(text, t._("Or press Done."))])
                return Reply(text, ((turn.choice(state, t._("Done"), "done"), cancel),))
            return Reply(text, ((cancel,),))
        if step == "field_kind":
            row = tuple(turn.choice(state, t._(label), f"k{kind}") for kind, label in KIND.items())
            return Reply(t._("What kind of answer is %(field)s?", field=data["pending"]),
                         (row, (cancel,)))
        if step == "choices":
            return Reply(t._("Type the options of %(field)s, separated by commas.",
                             field=data["pending"]), ((cancel,),))
        if step == "towns":
            return Reply(t._("Which towns and streets? Press All, or type their names or "
                             "codes separated by commas."),
                         ((turn.choice(state, t._("All towns and streets"), "all"), cancel),))
        if step == "due":
            row = tuple(turn.choice(state, str(days), f"d{days}") for days in DUE_CHOICES)
            return Reply(t._("Due in how many working days? Press or type a number."),
                         (row, (cancel,)))
        if step == "plan":
            year = turn.now.astimezone(turn.ctx.rules.tz).year
            items = burden.plan_items(turn.ctx, turn.member.unit_id, year)[:MAX_PLAN_BUTTONS]
            rows: list[tuple[Button, ...]] = [
                (turn.choice(state, t._("%(name)s (%(count)s a year)", name=item.name,
                                        count=item.count), f"p{item.id}"),)
                for item in items]
            rows.append((turn.choice(state, t._("Not in the plan"), "none"), cancel))
            return Reply(t._("Which item of your department's %(year)s plan is this request "
                             "for?", year=year), tuple(rows))
        if step == "similar":
            return self._similar_prompt(turn, state)
        return Reply(self._summary(turn, state),
                     ((turn.choice(state, t._("Send the request"), "ok"), cancel),))

    def _summary(self, turn: Turn, state: DialogState) -> str:
        t, data = turn.t, state.data
        towns = burden.towns(turn.ctx)
        chosen = [u.name for u in towns if u.id in set(data["towns"])] or [
            t._("all %(count)s towns and streets", count=len(towns))]
        lines = [t._("Please check your data request:"), "「" + str(data["title"]) + "」"]
        lines += [f"{i}. {f['name']} · {t._(KIND[f['kind']])}"
                  for i, f in enumerate(data["fields"], 1)]
        lines.append(t._("To: %(towns)s", towns="、".join(chosen)))
        lines.append(t._("Due in %(days)s working days.", days=data["due"]))
        if data.get("plan") is None:
            lines.append(t._("This request is not in your plan: it will be marked out of plan "
                             "(计划外) and the supervision office told."))
        return "\n".join(lines)

    def _similar_prompt(self, turn: Turn, state: DialogState) -> Reply:
        t = turn.t
        found = burden.similar_requests(turn.ctx, state.data["title"], state.data["fields"],
                                        turn.now)[:MAX_SIMILAR]
        lines = [t._("This data may already have been reported:")]
        rows: list[tuple[Button, ...]] = []
        for similar in found:
            lines.append(t._("%(number)s 「%(title)s」 was reported to %(department)s on "
                             "%(date)s by %(count)s towns.", number=similar.number,
                             title=similar.title, department=similar.department,
                             date=t.datetime(similar.created_at), count=len(similar.answers)))
            for answer in similar.answers[:5]:
                shared = {old: answer.values[old] for old in similar.shared.values()
                          if old in answer.values}
                shown = "; ".join(f"{k}: {v}" for k, v in shared.items())
                lines.append(f"  · {answer.town}: {shown}")
            rows.append((turn.choice(state, t._("Reuse %(number)s", number=similar.number),
                                     f"u{similar.request_id}"),))
        lines.append(t._("Reuse it instead of asking the towns again, or send anyway (it will "
                         "be counted as a duplicate)."))
        rows.append((turn.choice(state, t._("Send anyway"), "send"), turn.cancel_button(state)))
        return Reply("\n".join(lines), tuple(rows))

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        t, step, data = turn.t, state.step, state.data
        text = (turn.msg.text or "").strip()
        if turn.msg.photo is not None or turn.msg.location is not None:
            return [Reply(t._("Please type your answer as text.")), self.prompt(turn, state)]
        try:
            if step == "title":
                data["title"] = burden.clean_title(text)
                state.step = "field_name"
            elif step == "field_name":
                burden.clean_field(text, "text")
                if text in {f["name"] for f in data["fields"]}:
                    return [Reply(t._(_PROBLEMS["same_field_name"])), self.prompt(turn, state)]
                data["pending"] = " ".join(text.split())
                state.step = "field_kind"
            elif step == "choices":
                data["fields"].append(burden.clean_field(data.pop("pending"), "choice",
                                                         burden.split_choices(text)))
                state.step = self._after_field(data)
            elif step == "towns":
                data["towns"] = [u.id for u in burden.find_towns(turn.ctx, text)]
                state.step = "due"
            elif step == "due":
                return self._due(turn, state, text)
            else:
                return [Reply(t._("Please answer with the buttons.")), self.prompt(turn, state)]
        except WorkflowError as error:
            if step == "choices":
                data["pending"] = data.get("pending") or ""
            return [Reply(problem(t, error)), self.prompt(turn, state)]
        turn.keep(state)
        return [self.prompt(turn, state)]

    def _after_field(self, data: dict[str, Any]) -> str:
        return "towns" if len(data["fields"]) >= burden.MAX_FIELDS else "field_name"

    def _due(self, turn: Turn, state: DialogState, text: str) -> list[Reply]:
        if not text.isdigit() or not 1 <= int(text) <= burden.MAX_DUE_DAYS:
            return [Reply(turn._(_PROBLEMS["bad_due"], limit=burden.MAX_DUE_DAYS)),
                    self.prompt(turn, state)]
        state.data["due"] = int(text)
        state.step = "plan"
        turn.keep(state)
        return [self.prompt(turn, state)]

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        step, data = state.step, state.data
        if step == "field_name" and value == "done" and data["fields"]:
            state.step = "towns"
        elif step == "field_kind" and value[1:] in burden.FIELD_KINDS and value[0] == "k":
            if value[1:] == "choice":
                state.step = "choices"
            else:
                data["fields"].append(burden.clean_field(data.pop("pending"), value[1:]))
                state.step = self._after_field(data)
        elif step == "towns" and value == "all":
            data["towns"] = []
            state.step = "due"
        elif step == "due" and value.startswith("d"):
            return self._due(turn, state, value[1:])
        elif step == "plan" and (value == "none" or (value[:1] == "p" and value[1:].isdigit())):
            data["plan"] = None if value == "none" else int(value[1:])
            year = turn.now.astimezone(turn.ctx.rules.tz).year
            mine = {i.id for i in burden.plan_items(turn.ctx, turn.member.unit_id, year)}
            if data["plan"] is not None and data["plan"] not in mine:
                return [Reply(turn._(_PROBLEMS["not_plan_item"])), self.prompt(turn, state)]
            similar = burden.similar_requests(turn.ctx, data["title"], data["fields"], turn.now)
            state.step = "similar" if similar else "summary"
        elif step == "similar" and value[:1] == "u" and value[1:].isdigit():
            return self._reuse(turn, state, int(value[1:]))
        elif step in ("similar", "summary") and value in ("send", "ok"):
            return self._send(turn, state)
        elif step == "sending":
            return [Reply(turn._("Your data request is being sent."))]
        else:
            return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                    self.prompt(turn, state)]
        turn.keep(state)
        return [self.prompt(turn, state)]

    def _claim(self, turn: Turn, state: DialogState) -> bool:
        return dialogs.claim_step(turn.ctx, turn.msg.channel, turn.chat_key, state.step,
                                  "sending")

    def _reuse(self, turn: Turn, state: DialogState, earlier: int) -> list[Reply]:
        t = turn.t
        if not self._claim(turn, state):
            return [Reply(t._("That button belongs to a finished conversation; nothing "
                              "changed."))]
        try:
            request = burden.reuse_request(turn.ctx, turn.member_id, turn.now,
                                           _draft(state.data), earlier)
        except WorkflowError as error:
            turn.keep(state)
            return [Reply(problem(t, error)), self.prompt(turn, state)]
        turn.end()
        view = burden.request_view(turn.ctx, earlier)
        lines = [t._("Nothing was sent to the towns: %(number)s reuses the data of "
                     "%(earlier)s.", number=request.number, earlier=view.number)]
        for answer in burden.answers(turn.ctx, earlier):
            lines.append(answer.town + "\n" + values_text(t, view.fields, answer.values))
        return turn.say("\n".join(lines))

    def _send(self, turn: Turn, state: DialogState) -> list[Reply]:
        t = turn.t
        if not self._claim(turn, state):
            return [Reply(t._("That button belongs to a finished conversation; nothing "
                              "changed."))]
        try:
            request = burden.send_request(turn.ctx, turn.member_id, turn.now, _draft(state.data))
        except WorkflowError as error:
            turn.keep(state)
            return [Reply(problem(t, error)), self.prompt(turn, state)]
        turn.end()
        view = burden.request_view(turn.ctx, request.id or 0)
        text = "\n".join([t._("Your data request %(number)s is sent to %(count)s towns.",
                              number=view.number, count=view.towns_asked),
                          describe_request(t, view)])
        return turn.say(text)


COMPOSER = ComposeFlow()


# --------------------------------------------------------------------------- answering


def answer_command(turn: Turn) -> list[Reply]:
    """`/answer`: the requests the member's town has yet to answer."""
    views = burden.open_for(turn.ctx, turn.member_id)
    if not views:
        return turn.say(turn._("Your town has no data request to answer."))
    replies = [Reply(turn._("Data requests your town has yet to answer:"))]
    for view in views:
        replies.append(Reply(describe_request(turn.t, view),
                             ((data_button(turn._("Answer"), "ans", view.id),),)))
    return replies


def press(turn: Turn, pressed: Press) -> list[Reply]:
    """A data request button: Answer (towns) or Approve (command centre)."""
    if pressed.action == "apr":
        try:
            request = burden.approve_out_of_plan(turn.ctx, pressed.target, turn.member_id,
                                                 turn.now)
        except WorkflowError as error:
            return turn.say(problem(turn.t, error))
        return turn.say(turn._("%(number)s is approved although out of plan; the department "
                               "is told.", number=request.number))
    try:
        view = burden.check_may_answer(turn.ctx, pressed.target, turn.member_id)
    except WorkflowError as error:
        return turn.say(problem(turn.t, error))
    current = turn.dialog
    if current is not None:
        if current.flow == ANSWER and current.data.get("request") == view.id:
            return [ANSWERER.prompt(turn, current)]
        from handlers.actions import FLOWS  # the registry of every flow

        if current.flow in FLOWS:
            return [Reply(turn._("Please finish or /cancel what you are doing first.")),
                    FLOWS[current.flow].prompt(turn, current)]
    previous = burden.previous_answer(turn.ctx, view.id, turn.member_id)
    state = turn.begin(ANSWER, "reuse" if previous else "field", request=view.id,
                       number=view.number, values={}, reused_from=None, index=0)
    return [Reply(describe_request(turn.t, view)), ANSWERER.prompt(turn, state)]


class AnswerFlow:
    """A town answers a request: reuse, then each open field, then submit."""

    def _view(self, turn: Turn, state: DialogState) -> RequestView:
        return burden.request_view(turn.ctx, int(state.data["request"]))

    def _open_fields(self, view: RequestView, state: DialogState) -> list[dict[str, Any]]:
        return [f for f in view.fields if f["name"] not in state.data["values"]]

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        t, data = turn.t, state.data
        cancel = turn.cancel_button(state)
        view = self._view(turn, state)
        if state.step == "reuse":
            previous = burden.previous_answer(turn.ctx, view.id, turn.member_id)
            if previous is not None:
                text = "\n".join([
                    t._("Your town answered %(number)s for %(department)s on %(date)s:",
                        number=previous.number, department=previous.department,
                        date=t.datetime(previous.answered_at)),
                    values_text(t, view.fields, previous.values),
                    t._("Has anything changed since?")])
                return Reply(text, ((turn.choice(state, t._("No change since last time"), "same"),
                                     turn.choice(state, t._("Answer afresh"), "new")), (cancel,)))
            state.step = "field"
        open_fields = self._open_fields(view, state)
        if state.step == "field" and open_fields:
            spec = open_fields[0]
            done = len(view.fields) - len(open_fields)
            head = t._("%(number)s, field %(n)s of %(count)s: %(field)s (%(kind)s)",
                       number=view.number, n=done + 1, count=len(view.fields),
                       field=spec["name"], kind=t._(KIND[spec["kind"]]))
            if spec["kind"] == "choice":
                rows = [tuple(turn.choice(state, choice, f"c{i}")
                              for i, choice in enumerate(spec["choices"]))]
                return Reply(head, (*rows, (cancel,)))
            hint = {"number": N_("Type a number."), "text": N_("Type the answer."),
                    "date": N_("Type a date, YYYY-MM-DD."), "photo": N_("Send a photo.")}
            return Reply(head + "\n" + t._(hint[spec["kind"]]), ((cancel,),))
        text = "\n".join([t._("Please check your answer to %(number)s:", number=view.number),
                          values_text(t, view.fields, data["values"])])
        if data.get("reused_from"):
            text += "\n" + t._("(marked as reused from your earlier answer)")
        return Reply(text, ((turn.choice(state, t._("Submit the answer"), "ok"), cancel),))

    def _store(self, turn: Turn, state: DialogState, value: Any) -> list[Reply]:
        view = self._view(turn, state)
        open_fields = self._open_fields(view, state)
        if state.step != "field" or not open_fields:
            return [Reply(turn._("Please answer with the buttons.")), self.prompt(turn, state)]
        spec = open_fields[0]
        try:
            state.data["values"][spec["name"]] = burden.clean_value(spec, value)
        except WorkflowError as error:
            return [Reply(problem(turn.t, error)), self.prompt(turn, state)]
        if len(open_fields) == 1:
            state.step = "summary"
        turn.keep(state)
        return [self.prompt(turn, state)]

    def _sheet(self, turn: Turn, state: DialogState, data: bytes) -> list[Reply]:
        """A filled-in sheet: every valid value taken, the rest asked."""
        from handlers.burden_forms import read_answer_sheet

        view = self._view(turn, state)
        found = read_answer_sheet(data, view) if len(data) <= turn.ctx.rules.max_photo_bytes \
            else None
        if found is None:
            return [Reply(turn._("That is not the Excel sheet of %(number)s.",
                                 number=view.number)), self.prompt(turn, state)]
        problems = []
        for spec in view.fields:
            if spec["name"] in found:
                try:
                    state.data["values"][spec["name"]] = burden.clean_value(
                        spec, found[spec["name"]])
                except WorkflowError as error:
                    problems.append(f"{spec['name']}: {problem(turn.t, error)}")
        state.step = "field" if self._open_fields(view, state) else "summary"
        turn.keep(state)
        head = turn._("The sheet gave %(count)s answers.", count=len(found) - len(problems))
        return [Reply("\n".join([head, *problems])), self.prompt(turn, state)]

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        msg = turn.msg
        from handlers.burden_forms import is_sheet

        if msg.photo is not None and is_sheet(msg.photo) and state.step in ("reuse", "field"):
            return self._sheet(turn, state, msg.photo)
        if state.step != "field":
            return [Reply(turn._("Please answer with the buttons.")), self.prompt(turn, state)]
        view = self._view(turn, state)
        spec = self._open_fields(view, state)[0]
        if spec["kind"] == "photo":
            if msg.photo is None:
                return [Reply(turn._(_PROBLEMS["not_a_photo"])), self.prompt(turn, state)]
            try:
                check_photo(msg.photo, turn.ctx.rules.max_photo_bytes)
            except WorkflowError as error:
                return [Reply(describe(turn.t, error)), self.prompt(turn, state)]
            return self._store(turn, state, turn.ctx.media.put(msg.photo))
        if msg.photo is not None or msg.location is not None:
            return [Reply(turn._("Please type your answer as text.")), self.prompt(turn, state)]
        return self._store(turn, state, msg.text or "")

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        data = state.data
        if state.step == "reuse" and value in ("same", "new"):
            if value == "same":
                previous = burden.previous_answer(turn.ctx, int(data["request"]),
                                                  turn.member_id)
                if previous is not None:
                    data["values"].update(previous.values)
                    data["reused_from"] = previous.answer_id
            view = self._view(turn, state)
            state.step = "field" if self._open_fields(view, state) else "summary"
            turn.keep(state)
            return [self.prompt(turn, state)]
        if state.step == "field" and value[:1] == "c" and value[1:].isdigit():
            spec = self._open_fields(self._view(turn, state), state)[0]
            if spec["kind"] == "choice" and int(value[1:]) < len(spec["choices"]):
                return self._store(turn, state, spec["choices"][int(value[1:])])
        if state.step == "summary" and value == "ok":
            return self._submit(turn, state)
        if state.step == "sending":
            return [Reply(turn._("Your answer is being sent."))]
        return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                self.prompt(turn, state)]

    def _submit(self, turn: Turn, state: DialogState) -> list[Reply]:
        t, data = turn.t, state.data
        if not dialogs.claim_step(turn.ctx, turn.msg.channel, turn.chat_key, "summary",
                                  "sending"):
            return [Reply(t._("That button belongs to a finished conversation; nothing "
                              "changed."))]
        try:
            view = burden.answer_request(turn.ctx, int(data["request"]), turn.member_id,
                                         turn.now, dict(data["values"]), data.get("reused_from"))
        except WorkflowError as error:
            if error.code == "invalid_input":
                state.step = "summary"
                turn.keep(state)
                return [Reply(problem(t, error)), self.prompt(turn, state)]
            turn.end()
            return turn.say(problem(t, error))
        turn.end()
        return turn.say(t._("Thank you. Your town's answer to %(number)s is sent to "
                            "%(department)s.", number=view.number, department=view.department))


ANSWERER = AnswerFlow()


# --------------------------------------------------------------------------- the report


def report(turn: Turn) -> list[Reply]:
    """`/burden [YYYY-MM]`: the burden report (this month by default), with
    its chart; a department's people see their own department's line."""
    from handlers.burden_forms import report_text

    if not access.may(turn.actor, Command.BURDEN):
        return turn.say(turn._("The burden report is for the supervision office, the command "
                               "centre and the departments (each its own line)."))
    tz = turn.ctx.rules.tz
    try:
        period = Period.asked(turn.msg.args[0] if turn.msg.args else None, turn.now, tz)
    except ValueError:
        return turn.say(turn._("Usage: /burden [YYYY-MM], e.g. /burden 2025-10"))
    result = burden.burden_report(turn.ctx, period)
    whole = access.may(turn.actor, Permission.READ_DISTRICT_REPORT)
    only = None if whole else turn.member.unit_id
    text = report_text(turn.t, result, only_department=only)
    files = burden.store_files(turn.ctx, result, turn.member.locale, only)
    return [with_files(text, [f.as_params() for f in files])]

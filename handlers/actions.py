"""Actions on a call from the buttons of alerts and notices: the liaison's
acknowledge, respond, extension, return and resolve; the caller's confirm
(and rate), reject and withdraw.

A press is checked before anything is asked (`queries.check_may`), and the
workflow checks again when it acts: a second press, a press on a call that
has moved on, or by someone outside the department is answered clearly and
changes nothing. Actions that need words or photos open a short dialog.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers import audience, burden, cards
from handlers.buttons import Press
from handlers.dialogs import DialogState
from handlers.errors import describe
from handlers.i18n import N_
from handlers.labels import RATING
from handlers.messages import Button, Reply
from handlers.raising import RAISE
from handlers.turn import Flow, Turn
from models import RatingLevel
from workflows import calls, queries, queues
from workflows.errors import NotAllowed, WorkflowError
from workflows.lifecycle import Action
from workflows.photos import MAX_PHOTOS, Photo, check_photo
from workflows.views import CallRequestView, CallView

EXTENSION_DAYS = (1, 2, 3, 5, 10)

#: What a use case a dialog ends with returns: the call as it left it, or the
#: request it filed (with that call).
Acted = CallView | CallRequestView

# Button action → (lifecycle action checked first, dialog flow it opens).
_NEEDS_INPUT: dict[str, tuple[Action, str]] = {
    "rsp": (Action.RESPOND, "respond"),
    "ext": (Action.REQUEST_EXTENSION, "extension"),
    "ret": (Action.RETURN, "return"),
    "res": (Action.RESOLVE, "resolve"),
    "cfm": (Action.CONFIRM, "rate"),
    "rej": (Action.REJECT_FIX, "reject"),
    "add": (Action.ADD_INFO, "add_info"),
}


def press(turn: Turn, pressed: Press) -> list[Reply]:
    """A call button (`c:<action>:<call id>`)."""
    call_id = pressed.target
    try:
        if pressed.action == "ack":
            return _done(turn, calls.acknowledge(turn.ctx, call_id, turn.member_id, turn.now),
                         N_("You acknowledged %(number)s."))
        if pressed.action == "wd":
            return _done(turn, calls.withdraw(turn.ctx, call_id, turn.member_id, turn.now),
                         N_("%(number)s is withdrawn."))
        action, flow = _NEEDS_INPUT[pressed.action]
        view = queries.check_may(turn.ctx, call_id, turn.member_id, action)
    except NotAllowed as error:
        return turn.say(_moved_away(turn, call_id) or describe(turn.t, error))
    except WorkflowError as error:
        return turn.say(describe(turn.t, error))
    current = turn.dialog
    if current is not None and current.flow in FLOWS:
        if current.flow == flow and current.data.get("call") == call_id:
            return [FLOWS[flow].prompt(turn, current)]  # the same button again: same question
        # The pressed button is still good once this is done: keep it (keeps_pressed).
        return [Reply(turn._("Please finish or /cancel what you are doing first."),
                      keeps_pressed=True), FLOWS[current.flow].prompt(turn, current)]
    first = {"extension": "days", "resolve": "evidence", "rate": "level"}.get(flow, "note")
    state = turn.begin(flow, first, call=call_id, number=view.number, photos=[])
    return [FLOWS[flow].prompt(turn, state)]


def _moved_away(turn: Turn, call_id: int) -> str | None:
    """For a department's member pressing an old alert of a call that left
    the department: where it went (else None)."""
    if not audience.sees_department_calls(turn.member) or not queues.left_department(
            turn.ctx, call_id, turn.member.unit_id):
        return None
    view = queries.call_view(turn.ctx, call_id)
    if view.lead_department:
        text = turn._("%(number)s was reassigned to %(department)s; it is no longer your "
                      "department's.", number=view.number, department=view.lead_department)
    else:
        text = turn._("%(number)s went back to the command centre to be rerouted; it is no "
                      "longer your department's.", number=view.number)
    return turn.t.join(text, turn._("Nothing was changed."))


def _done(turn: Turn, view: queries.CallView, message: str) -> list[Reply]:
    """Say what happened, with the buttons for what can be done next."""
    return turn.say(turn._(message, number=view.number), _next_buttons(turn, view))


def _next_buttons(turn: Turn, view: queries.CallView) -> list[list[Button]]:
    """The buttons for what the member can do next with the call as it is now
    (`view`, the one the use case returned)."""
    role = view.role_of(turn.member.unit_id)
    if role is not None:
        return cards.department_buttons(turn.t, view, role)
    if view.caller_id == turn.member_id:
        return cards.caller_buttons(turn.t, view)
    return []


class NoteFlow:
    """One question answered with text, then one workflow call."""

    def __init__(self, question: str, act: Callable[[Turn, int, str], Acted],
                 success: str) -> None:
        self.question, self.act, self.success = question, act, success

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        return Reply(turn._(self.question, number=state.data["number"]),
                     ((turn.cancel_button(state),),))

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        text = (turn.msg.text or "").strip()
        if turn.msg.photo is not None or turn.msg.location is not None or not text:
            return [Reply(turn._("Please type your answer as text.")), self.prompt(turn, state)]
        return _finish(turn, state, lambda: self.act(turn, int(state.data["call"]), text),
                       self.success)

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                self.prompt(turn, state)]


def _finish(turn: Turn, state: DialogState, act: Callable[[], Acted],
            success: str, **params: object) -> list[Reply]:
    """Run the workflow; on success end the dialog, on refusal keep it, and
    answer with the call as the use case left it (a request filed: its number
    too)."""
    try:
        result = act()
    except WorkflowError as error:
        if error.code == "invalid_input":
            return [Reply(describe(turn.t, error)), FLOWS[state.flow].prompt(turn, state)]
        turn.end()  # the call moved on: asking again would not help
        return turn.say(describe(turn.t, error))
    turn.end()
    if isinstance(result, CallRequestView):
        request_id, view = result.id, result.call
    else:
        request_id, view = None, result
    text = turn._(success, number=state.data["number"], request=request_id, **params)
    return turn.say(text, _next_buttons(turn, view))


def _keep_photo(turn: Turn, state: DialogState, data: bytes) -> Reply | None:
    """Store a photo sent in a dialog (evidence, added information) with the
    dialog, or say why not (too many, too large, not an image)."""
    if len(state.data["photos"]) >= MAX_PHOTOS:
        return Reply(turn._("At most %(limit)s photos.", limit=MAX_PHOTOS))
    try:
        check_photo(data, turn.ctx.rules.max_photo_bytes)
    except WorkflowError as error:
        return Reply(describe(turn.t, error))
    state.data["photos"].append(turn.ctx.media.put(data))
    turn.keep(state)
    return None


class ExtensionFlow:
    """How many working days, then why."""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        if state.step == "days":
            row = tuple(turn.choice(state, str(days), f"d{days}") for days in EXTENSION_DAYS)
            return Reply(turn._("How many more working days do you need for %(number)s? "
                                "Press or type a number.", number=state.data["number"]),
                         (row, (turn.cancel_button(state),)))
        return Reply(turn._("Why do you need %(days)s more working days?",
                            days=state.data["days"]), ((turn.cancel_button(state),),))

    def _days(self, turn: Turn, state: DialogState, text: str) -> list[Reply]:
        if not text.isdigit() or not 1 <= int(text) <= calls.MAX_EXTENSION_DAYS:
            return [Reply(turn._("An extension is 1 to %(limit)s working days.",
                                 limit=calls.MAX_EXTENSION_DAYS)), self.prompt(turn, state)]
        state.data["days"] = int(text)
        state.step = "reason"
        turn.keep(state)
        return [self.prompt(turn, state)]

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        text = (turn.msg.text or "").strip()
        if state.step == "days":
            return self._days(turn, state, text)
        if not text:
            return [Reply(turn._("Please type your answer as text.")), self.prompt(turn, state)]
        days = int(state.data["days"])
        return _finish(
            turn, state,
            lambda: calls.request_extension(turn.ctx, int(state.data["call"]), turn.member_id,
                                            turn.now, days, text),
            N_("You asked for %(days)s more working days for %(number)s (request %(request)s). "
               "The command centre decides."), days=days)

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        if state.step == "days" and value.startswith("d"):
            return self._days(turn, state, value[1:])
        return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                self.prompt(turn, state)]


class PhotosOrWordsFlow:
    """Photos then Done, or words (acted on at once, with any photos already
    sent): the liaison's evidence for a resolution, the caller's added
    information. `missing` is said when neither was given."""

    def __init__(self, question: str, act: Callable[[Turn, int, str | None, list[Photo]], Acted],
                 success: str, missing: str) -> None:
        self.question, self.act, self.success, self.missing = question, act, success, missing

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        text = turn._(self.question, number=state.data["number"], limit=MAX_PHOTOS)
        count = len(state.data.get("photos", []))
        if count:
            text += "\n" + turn._("Photos: %(count)s", count=count)
        return Reply(text, ((turn.choice(state, turn._("Done"), "done"),
                             turn.cancel_button(state)),))

    def _act(self, turn: Turn, state: DialogState, note: str | None) -> list[Reply]:
        photos = [Photo(turn.ctx.media.read(sha)) for sha in state.data.get("photos", [])]
        return _finish(turn, state,
                       lambda: self.act(turn, int(state.data["call"]), note, photos),
                       self.success)

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        msg = turn.msg
        if msg.photo is not None:
            refused = _keep_photo(turn, state, msg.photo)
            if refused is not None:
                return [refused, self.prompt(turn, state)]
            if msg.text and msg.text.strip():
                return self._act(turn, state, msg.text)
            return [self.prompt(turn, state)]
        text = (msg.text or "").strip()
        if not text:
            return [Reply(turn._(self.missing)), self.prompt(turn, state)]
        return self._act(turn, state, text)

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        if value == "done":
            if not state.data.get("photos"):
                return [Reply(turn._(self.missing)), self.prompt(turn, state)]
            return self._act(turn, state, None)
        return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                self.prompt(turn, state)]


class RateFlow:
    """The caller confirms the fix: a rating, then an optional comment."""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        if state.step == "level":
            row = tuple(turn.choice(state, turn._(RATING[level]), f"r{level.score}")
                        for level in RatingLevel)
            return Reply(turn._("How satisfied are you with how %(number)s was handled?",
                                number=state.data["number"]), (row, (turn.cancel_button(state),)))
        return Reply(turn._("Add a comment, or press Skip."),
                     ((turn.choice(state, turn._("Skip"), "skip"), turn.cancel_button(state)),))

    def _confirm(self, turn: Turn, state: DialogState, comment: str | None) -> list[Reply]:
        level = RatingLevel(state.data["level"])
        return _finish(
            turn, state,
            lambda: calls.confirm(turn.ctx, int(state.data["call"]), turn.member_id, turn.now,
                                  level, comment),
            N_("Thank you. %(number)s is closed."))

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        text = (turn.msg.text or "").strip()
        if state.step == "level":
            return [Reply(turn._("Please answer with the buttons.")), self.prompt(turn, state)]
        if turn.msg.photo is not None or not text:
            return [Reply(turn._("Please answer with the buttons, or type a comment.")),
                    self.prompt(turn, state)]
        return self._confirm(turn, state, text)

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        levels = {f"r{level.score}": level for level in RatingLevel}
        if state.step == "level" and value in levels:
            state.data["level"] = levels[value].value
            state.step = "comment"
            turn.keep(state)
            return [self.prompt(turn, state)]
        if state.step == "comment" and value == "skip":
            return self._confirm(turn, state, None)
        return [Reply(turn._("That button belongs to an earlier question; nothing changed.")),
                self.prompt(turn, state)]


FLOWS: dict[str, Flow] = {
    "raise": RAISE,
    burden.COMPOSE: burden.COMPOSER,
    burden.ANSWER: burden.ANSWERER,
    "respond": NoteFlow(
        N_("What are you doing about %(number)s? Type your response."),
        lambda turn, call_id, text: calls.respond(turn.ctx, call_id, turn.member_id,
                                                  turn.now, text),
        N_("Your response to %(number)s is sent.")),
    "return": NoteFlow(
        N_("Why should %(number)s go to another department? Type the reason."),
        lambda turn, call_id, text: calls.return_call(turn.ctx, call_id, turn.member_id,
                                                      turn.now, text),
        N_("%(number)s is returned (request %(request)s). The command centre decides.")),
    "reject": NoteFlow(
        N_("What is still wrong with %(number)s? Type the reason."),
        lambda turn, call_id, text: calls.reject_fix(turn.ctx, call_id, turn.member_id,
                                                     turn.now, text),
        N_("%(number)s is reopened; the department is told.")),
    "extension": ExtensionFlow(),
    "resolve": PhotosOrWordsFlow(
        N_("Resolve %(number)s: send photos of the result (up to %(limit)s) and press Done, "
           "or type the reason it is resolved."),
        lambda turn, call_id, note, photos: calls.resolve(
            turn.ctx, call_id, turn.member_id, turn.now, note, photos),
        N_("%(number)s is resolved. The caller is asked to confirm."),
        N_("A resolution needs at least one evidence photo or a written reason.")),
    "rate": RateFlow(),
    "add_info": PhotosOrWordsFlow(
        N_("Add to %(number)s: type what the department should know, or send photos (up to "
           "%(limit)s) and press Done."),
        lambda turn, call_id, note, photos: calls.add_info(
            turn.ctx, call_id, turn.member_id, turn.now, note, photos),
        N_("Added to %(number)s; the department is told."),
        N_("Please type your answer as text.")),
}

"""Raising a call, for callers: what happened → the item (suggested from the
description, or picked by domain, or "not sure") → a photo or the location
→ summary → send.

Kept short, and in the order people think: the caller first says what
happened, and is offered the catalog items the description is most likely
about (`workflows.matching`); "Something else" leads to the domain and item
lists, "Not sure" to the command centre. Photos and the location are taken
at any step before the call is sent (a photo with a caption is the
description too), and the summary comes as soon as the description, the
item and a photo or the location are in — the rest can still be added
there. So a call with a photo and a location takes six inputs: /call, the
description, the suggested item, the photo, the location, send. A caller may
also start by just sending the photo (or location) instead of /call: it is
kept, and the questions follow (five inputs). Every answer is saved in the
dialog before the next question, and photos go to the media store as they
arrive, so a restart loses nothing.
"""

from __future__ import annotations

from typing import Any

from handlers import audience, cards, dialogs
from handlers.dialogs import DialogState
from handlers.errors import describe
from handlers.messages import Reply
from handlers.turn import Turn
from models import CatalogItem
from workflows import calls, matching, queries
from workflows.errors import WorkflowError
from workflows.photos import MAX_PHOTOS, Photo, check_photo
from workflows.text import blank, clean

FLOW = "raise"
MAX_PLACE = 500


def start(turn: Turn) -> list[Reply]:
    """`/call`: only callers raise calls."""
    if not audience.raises_calls(turn.member):
        return turn.say(turn._("Only town and village staff raise calls."))
    if turn.dialog is not None and turn.dialog.flow == FLOW:
        return [Reply(turn._("You are already raising a call.")),
                RAISE.prompt(turn, turn.dialog)]
    state = turn.begin(FLOW, "describe", photos=[])
    return [RAISE.prompt(turn, state)]


def start_with(turn: Turn) -> list[Reply]:
    """A caller sent a photo or a location with no conversation open: the
    start of a call (what the brief's cadre does — photographs the drain).
    It is kept (a caption is the description), and the questions follow."""
    state = turn.begin(FLOW, "describe", photos=[])
    replies = RAISE.on_input(turn, state)
    if not state.data["photos"] and state.data.get("lat") is None:
        turn.end()  # the photo was refused: nothing is kept, nothing is left open
        return replies[:1]
    kept = turn._("Raise a call with this? It is kept; answer the questions, or press Cancel.")
    return [Reply(kept), *replies]


def _summary(turn: Turn, data: dict[str, Any]) -> str:
    t = turn.t
    item = queries.item(turn.ctx, data["item"]) if data.get("item") else None
    lines = [t._("Please check your call:"),
             t._("Item: %(item)s", item=item.name if item else t._("not sure"))]
    lines.append("「" + cards.clip(str(data.get("text", ""))) + "」")
    lines.append(t._("Photos: %(count)s", count=len(data.get("photos", []))))
    where = data.get("place")
    if data.get("lat") is not None:
        where = ((where + " · ") if where else "") + f"{data['lat']:.5f}, {data['lon']:.5f}"
    lines.append(t._("Place: %(place)s", place=where or t._("not given")))
    return "\n".join(lines)


def _kept(turn: Turn, data: dict[str, Any]) -> str:
    """What is already in the call, said under the questions before the summary."""
    lines = []
    if data.get("photos"):
        lines.append(turn._("Photos: %(count)s", count=len(data["photos"])))
    if data.get("lat") is not None:
        lines.append(turn._("Place: %(place)s", place=f"{data['lat']:.5f}, {data['lon']:.5f}"))
    return "".join("\n" + line for line in lines)


def _has_place(data: dict[str, Any]) -> bool:
    return bool(data.get("photos") or data.get("lat") is not None or data.get("place"))


# Steps of dialogs saved by an older version, and the step they are now.
_OLD_STEPS = {"photos": "details", "location": "details"}

# The steps before the item is chosen, where a description may still come first.
_CHOOSING = ("describe", "suggest", "domain", "item")


class RaiseFlow:
    """The questions of raising a call, one per step."""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        t, data = turn.t, state.data
        step = _OLD_STEPS.get(state.step, state.step)
        cancel = turn.cancel_button(state)
        not_sure = turn.choice(state, t._("Not sure"), "i?")
        if step == "describe":
            return Reply(t._("Raise a call. What happened? Describe it in a few sentences; "
                             "you may send a photo with the description as its caption.")
                         + _kept(turn, data), ((cancel,),))
        if step == "suggest":
            rows = [[turn.choice(state, item.name, f"i{item.id}")]
                    for item in self._suggested(turn, data)]
            rows.append([turn.choice(state, t._("Something else"), "other"), not_sure, cancel])
            return Reply(t._("Which of these is it about?") + _kept(turn, data),
                         tuple(map(tuple, rows)))
        if step == "domain":
            rows = [[turn.choice(state, d.name, f"d{d.id}")] for d in queries.domains(turn.ctx)]
            rows.append([not_sure, cancel])
            question = (t._("Which domain is it about?") if data.get("text")
                        else t._("Raise a call. Which domain is it?"))
            return Reply(question + _kept(turn, data), tuple(map(tuple, rows)))
        if step == "item":
            domain = queries.domain(turn.ctx, int(data["domain"]))
            rows = [[turn.choice(state, i.name, f"i{i.id}")]
                    for i in queries.items(turn.ctx, int(data["domain"]))]
            rows.append([not_sure, cancel])
            return Reply(t._("Which item of %(domain)s?", domain=domain.name if domain else "")
                         + _kept(turn, data), tuple(map(tuple, rows)))
        if step == "text":
            return Reply(t._("Describe the problem in a few sentences. "
                             "You may send a photo with the description as its caption."),
                         ((cancel,),))
        if step == "details":
            return Reply(t._("Send a photo of the problem or share your location (or type the "
                             "address). Or press Skip."),
                         ((turn.choice(state, t._("Skip"), "skip"), cancel),),
                         share_location=self._location_key(turn))
        text = _summary(turn, data)
        wants_location = data.get("lat") is None and not data.get("place")
        if wants_location:
            text += "\n" + t._("You may still send photos or share your location.")
        return Reply(text, ((turn.choice(state, t._("Send the call"), "ok"), cancel),),
                     share_location=self._location_key(turn) if wants_location else None)

    def _location_key(self, turn: Turn) -> str:
        return "📍 " + turn._("Share my location")

    def _suggested(self, turn: Turn, data: dict[str, Any]) -> list[CatalogItem]:
        """The items suggested for the description, as saved with the dialog
        (those since retired from the catalog left out)."""
        found = (queries.item(turn.ctx, int(item_id)) for item_id in data.get("suggested", []))
        return [item for item in found if item is not None and item.active]

    def take(self, turn: Turn, state: DialogState) -> str | None:
        """Keep the photo or location of this message with the call in
        progress; a refusal (not an image, too large, too many) is returned."""
        msg, data = turn.msg, state.data
        if msg.photo is not None:
            if len(data.setdefault("photos", [])) >= MAX_PHOTOS:
                return turn._("At most %(limit)s photos.", limit=MAX_PHOTOS)
            try:
                check_photo(msg.photo, turn.ctx.rules.max_photo_bytes)
            except WorkflowError as error:
                return describe(turn.t, error)
            data["photos"].append(turn.ctx.media.put(msg.photo))
        if msg.location is not None:
            data["lat"], data["lon"] = msg.location.lat, msg.location.lon
        return None

    def _next(self, turn: Turn, state: DialogState) -> list[Reply]:
        """After an answer: the item suggested once the description is in
        (or the domains, when nothing fits it); the summary once the
        description, the item and a photo or the location are in; else the
        question still open."""
        data = state.data
        if state.step == "describe" and data.get("text"):
            data["suggested"] = [s.item_id for s in matching.suggest(turn.ctx, data["text"])]
            state.step = "suggest" if data["suggested"] else "domain"
        elif state.step not in _CHOOSING and data.get("text"):
            if _has_place(data):
                state.step = "summary"
            elif state.step == "text":
                state.step = "details"
        turn.keep(state)
        return [self.prompt(turn, state)]

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        msg, t, data = turn.msg, turn.t, state.data
        state.step = _OLD_STEPS.get(state.step, state.step)
        step = state.step
        if step == "sending":
            return [Reply(t._("Your call is being sent. If it is not in /mine in a minute, "
                              "send /cancel and raise it again."))]
        if msg.photo is not None or msg.location is not None:
            problem = self.take(turn, state)
            if problem:
                return [Reply(problem), self.prompt(turn, state)]
            if (step in (*_CHOOSING, "text") and msg.photo is not None
                    and not blank(msg.text) and not data.get("text")):
                problem = self._set_text(state, turn, msg.text or "")
                if problem:
                    turn.keep(state)  # the photo is kept; the caption was refused
                    return [Reply(problem), self.prompt(turn, state)]
            if step in ("describe", "text") and not data.get("text"):
                turn.keep(state)
                what = (t._("Photo received.") if msg.photo is not None
                        else t._("Location received."))
                return [Reply(t.join(what, t._("Now please type the description.")),
                              ((turn.cancel_button(state),),))]
            return self._next(turn, state)
        text = msg.text or ""
        if step in ("describe", "text", "suggest"):
            # At the suggestions, a new description replaces the first (and
            # gets suggestions of its own).
            problem = self._set_text(state, turn, text)
            if problem:
                return [Reply(problem), self.prompt(turn, state)]
            if step == "suggest":
                state.step = "describe"
            return self._next(turn, state)
        if step in ("domain", "item", "summary"):
            return [Reply(t._("Please answer with the buttons.")), self.prompt(turn, state)]
        # step == "details": a typed address
        address = clean(text)
        if not address:
            return [Reply(t._("The address is empty. Type it, share a location, or press "
                              "Skip.")), self.prompt(turn, state)]
        if len(address) > MAX_PLACE:
            return [Reply(t._("The %(field)s is too long: at most %(limit)s characters.",
                              field=t._("address"), limit=MAX_PLACE)), self.prompt(turn, state)]
        data["place"] = address
        return self._next(turn, state)

    def _set_text(self, state: DialogState, turn: Turn, text: str) -> str | None:
        body = clean(text)
        if not body:
            return turn._("The %(field)s is empty. Please type it.", field=turn._("description"))
        if len(body) > calls.MAX_TEXT:
            return turn._("The %(field)s is too long: at most %(limit)s characters.",
                          field=turn._("description"), limit=calls.MAX_TEXT)
        state.data["text"] = body
        return None

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        t, data = turn.t, state.data
        state.step = _OLD_STEPS.get(state.step, state.step)
        step = state.step
        if step == "domain" and value.startswith("d") and value[1:].isdigit():
            if int(value[1:]) not in {d.id for d in queries.domains(turn.ctx)}:
                return _unknown(turn, state)
            data["domain"] = int(value[1:])
            state.step = "item"
        elif step == "suggest" and value == "other":
            state.step = "domain"
        elif step in ("suggest", "domain", "item") and value == "i?":
            data["item"] = None
            state.step = "text"
        elif step in ("suggest", "item") and value.startswith("i") and value[1:].isdigit():
            offered = ({item.id for item in self._suggested(turn, data)} if step == "suggest"
                       else {i.id for i in queries.items(turn.ctx, int(data["domain"]))})
            if int(value[1:]) not in offered:
                return _unknown(turn, state)
            data["item"] = int(value[1:])
            state.step = "text"
        elif step == "details" and value in ("skip", "next"):
            state.step = "summary"
        elif step == "summary" and value == "ok":
            return self._send(turn, state)
        elif step == "sending":  # another press is sending it, or died doing so
            return [Reply(t._("Your call is being sent. If it is not in /mine in a minute, "
                              "send /cancel and raise it again."))]
        else:
            return [Reply(t._("That button belongs to an earlier question; nothing changed.")),
                    self.prompt(turn, state)]
        if state.step == "text" and data.get("text"):
            return self._next(turn, state)  # the description came before the item
        turn.keep(state)
        return [self.prompt(turn, state)]

    def _send(self, turn: Turn, state: DialogState) -> list[Reply]:
        data, t = state.data, turn.t
        if not dialogs.claim_step(turn.ctx, turn.msg.channel, turn.chat_key, "summary",
                                  "sending"):
            return [Reply(t._("That button belongs to a finished conversation; nothing "
                              "changed."))]
        item = queries.item(turn.ctx, data["item"]) if data.get("item") else None
        try:
            view = calls.raise_call(
                turn.ctx, turn.member_id, turn.now, str(data.get("text", "")),
                item_code=item.code if item else None,
                location_text=data.get("place"),
                latitude=data.get("lat"), longitude=data.get("lon"),
                photos=[Photo(turn.ctx.media.read(sha)) for sha in data.get("photos", [])],
            )
        except WorkflowError as error:
            turn.keep(state)  # back at the summary, to try again or cancel
            return [Reply(describe(t, error)), self.prompt(turn, state)]
        turn.end()
        if view.lead_department:
            where = t._("It went to %(department)s.", department=view.lead_department)
        else:
            where = t._("The command centre will dispatch it to a department.")
        text = "\n".join([t._("Your call %(number)s is raised.", number=view.number), where,
                          cards.deadlines(t, turn.ctx.rules, view)])
        return [Reply(text, tuple(map(tuple, cards.caller_buttons(t, view))))]


def _unknown(turn: Turn, state: DialogState) -> list[Reply]:
    return [Reply(turn._("Unknown button; nothing changed.")), RAISE.prompt(turn, state)]


RAISE = RaiseFlow()

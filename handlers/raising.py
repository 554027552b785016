"""Raising a call (`/call`), for callers: domain → item (or "not sure") →
description → photos → location → summary → confirm.

Kept short: a photo with a caption is the description and the first photo at
once, and a location shared while photos are asked for ends the photos — so a
typical call takes six inputs: /call, domain, item, photo with caption,
location, confirm. Every answer is saved before the next question, and photos
go to the media store as they arrive, so a restart loses nothing.
"""

from __future__ import annotations

from typing import Any

from handlers import cards, dialogs
from handlers.dialogs import DialogState
from handlers.errors import describe
from handlers.messages import Reply
from handlers.turn import Turn
from models import Role
from workflows import calls, queries
from workflows.errors import WorkflowError
from workflows.photos import MAX_PHOTOS, Photo, check_photo

FLOW = "raise"
MAX_PLACE = 500


def start(turn: Turn) -> list[Reply]:
    """`/call`: only callers raise calls."""
    if turn.member.role is not Role.CALLER:
        return turn.say(turn._("Only town and village staff raise calls."))
    if turn.dialog is not None and turn.dialog.flow == FLOW:
        return [Reply(turn._("You are already raising a call.")),
                RAISE.prompt(turn, turn.dialog)]
    state = turn.begin(FLOW, "domain", photos=[])
    return [RAISE.prompt(turn, state)]


def _summary(turn: Turn, data: dict[str, Any]) -> str:
    t = turn.t
    item = queries.item(turn.ctx, data["item"]) if data.get("item") else None
    lines = [t._("Please check your call:"),
             t._("Item: %(item)s", item=item.name if item else t._("not sure"))]
    lines.append("「" + str(data.get("text", "")) + "」")
    lines.append(t._("Photos: %(count)s", count=len(data.get("photos", []))))
    where = data.get("place")
    if data.get("lat") is not None:
        where = ((where + " · ") if where else "") + f"{data['lat']:.5f}, {data['lon']:.5f}"
    lines.append(t._("Place: %(place)s", place=where or t._("not given")))
    return "\n".join(lines)


class RaiseFlow:
    """The questions of raising a call, one per step."""

    def prompt(self, turn: Turn, state: DialogState) -> Reply:
        t, step, data = turn.t, state.step, state.data
        cancel = turn.cancel_button(state)
        if step == "domain":
            rows = [[turn.choice(state, d.name, f"d{d.id}")] for d in queries.domains(turn.ctx)]
            rows.append([turn.choice(state, t._("Not sure"), "i?"), cancel])
            return Reply(t._("Raise a call. Which domain is it?"), tuple(map(tuple, rows)))
        if step == "item":
            domain = queries.domain(turn.ctx, int(data["domain"]))
            rows = [[turn.choice(state, i.name, f"i{i.id}")]
                    for i in queries.items(turn.ctx, int(data["domain"]))]
            rows.append([turn.choice(state, t._("Not sure"), "i?"), cancel])
            return Reply(t._("Which item of %(domain)s?", domain=domain.name if domain else ""),
                         tuple(map(tuple, rows)))
        if step == "text":
            return Reply(t._("Describe the problem in a few sentences. "
                             "You may send a photo with the description as its caption."),
                         ((cancel,),))
        if step == "photos":
            count = len(data.get("photos", []))
            if count:
                text = t._("Photo %(count)s of at most %(limit)s received. Send more, or press "
                           "Done.", count=count, limit=MAX_PHOTOS)
                button = turn.choice(state, t._("Done"), "next")
            else:
                text = t._("Send photos of the problem (up to %(limit)s), or press Skip.",
                           limit=MAX_PHOTOS)
                button = turn.choice(state, t._("Skip"), "next")
            return Reply(text, ((button, cancel),))
        if step == "location":
            return Reply(t._("Share your location, or type the address, or press Skip."),
                         ((turn.choice(state, t._("Skip"), "skip"), cancel),))
        return Reply(_summary(turn, data),
                     ((turn.choice(state, t._("Send the call"), "ok"), cancel),))

    def on_input(self, turn: Turn, state: DialogState) -> list[Reply]:
        msg, t, step, data = turn.msg, turn.t, state.step, state.data
        if step in ("domain", "item", "summary", "sending"):
            return [Reply(t._("Please answer with the buttons.")), self.prompt(turn, state)]
        if msg.photo is not None:
            if step == "location" and len(data["photos"]) >= MAX_PHOTOS:
                return [Reply(t._("At most %(limit)s photos.", limit=MAX_PHOTOS)),
                        self.prompt(turn, state)]
            problem = self._add_photo(turn, state, msg.photo)
            if problem:
                return [Reply(problem), self.prompt(turn, state)]
            if step == "text" and msg.text and msg.text.strip():
                problem = self._set_text(state, turn, msg.text)
                if problem:
                    return [Reply(problem), self.prompt(turn, state)]
                state.step = "photos"
            elif step == "text":
                turn.keep(state)
                return [Reply(t._("Photo received. Now please type the description."))]
            if step == "photos" and len(data["photos"]) >= MAX_PHOTOS:
                state.step = "location"
            turn.keep(state)
            return [self.prompt(turn, state)]
        if msg.location is not None:
            if step == "text":
                return [Reply(t._("Please type the description first.")),
                        self.prompt(turn, state)]
            data["lat"], data["lon"] = msg.location.lat, msg.location.lon
            state.step = "summary"
            turn.keep(state)
            return [self.prompt(turn, state)]
        text = msg.text or ""
        if step == "text":
            problem = self._set_text(state, turn, text)
            if problem:
                return [Reply(problem), self.prompt(turn, state)]
            state.step = "photos"
            turn.keep(state)
            return [self.prompt(turn, state)]
        if step == "photos":
            return [Reply(t._("Send a photo, or press the button below.")),
                    self.prompt(turn, state)]
        # step == "location": a typed address
        address = text.strip()
        if not address:
            return [Reply(t._("The address is empty. Type it, share a location, or press "
                              "Skip.")), self.prompt(turn, state)]
        if len(address) > MAX_PLACE:
            return [Reply(t._("The %(field)s is too long: at most %(limit)s characters.",
                              field=t._("address"), limit=MAX_PLACE)), self.prompt(turn, state)]
        data["place"] = address
        state.step = "summary"
        turn.keep(state)
        return [self.prompt(turn, state)]

    def _set_text(self, state: DialogState, turn: Turn, text: str) -> str | None:
        body = text.strip()
        if not body:
            return turn._("The %(field)s is empty. Please type it.", field=turn._("description"))
        if len(body) > calls.MAX_TEXT:
            return turn._("The %(field)s is too long: at most %(limit)s characters.",
                          field=turn._("description"), limit=calls.MAX_TEXT)
        state.data["text"] = body
        return None

    def _add_photo(self, turn: Turn, state: DialogState, data: bytes) -> str | None:
        try:
            check_photo(data, turn.ctx.rules.max_photo_bytes)
        except WorkflowError as error:
            return describe(turn.t, error)
        digest = turn.ctx.media.put(data)
        state.data.setdefault("photos", []).append(digest)
        return None

    def on_button(self, turn: Turn, state: DialogState, value: str) -> list[Reply]:
        t, data = turn.t, state.data
        if state.step == "domain" and value.startswith("d") and value[1:].isdigit():
            if int(value[1:]) not in {d.id for d in queries.domains(turn.ctx)}:
                return _unknown(turn, state)
            data["domain"] = int(value[1:])
            state.step = "item"
        elif state.step in ("domain", "item") and value == "i?":
            data["item"] = None
            state.step = "text"
        elif state.step == "item" and value.startswith("i") and value[1:].isdigit():
            items = {i.id for i in queries.items(turn.ctx, int(data["domain"]))}
            if int(value[1:]) not in items:
                return _unknown(turn, state)
            data["item"] = int(value[1:])
            state.step = "text"
        elif state.step == "photos" and value == "next":
            state.step = "location"
        elif state.step == "location" and value == "skip":
            state.step = "summary"
        elif state.step == "summary" and value == "ok":
            return self._send(turn, state)
        elif state.step == "sending":  # another press is sending it, or died doing so
            return [Reply(t._("Your call is being sent. If it is not in /mine in a minute, "
                              "send /cancel and raise it again."))]
        else:
            return [Reply(t._("That button belongs to an earlier question; nothing changed.")),
                    self.prompt(turn, state)]
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
            call = calls.raise_call(
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
        view = queries.call_view(turn.ctx, call.id or 0)
        if view.lead_department:
            where = t._("It went to %(department)s.", department=view.lead_department)
        else:
            where = t._("The command centre will dispatch it to a department.")
        text = "\n".join([t._("Your call %(number)s is raised.", number=view.number), where,
                          cards.deadlines(t, view)])
        return [Reply(text, tuple(map(tuple, cards.caller_buttons(t, view))))]


def _unknown(turn: Turn, state: DialogState) -> list[Reply]:
    return [Reply(turn._("Unknown button; nothing changed.")), RAISE.prompt(turn, state)]


RAISE = RaiseFlow()

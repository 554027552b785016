"""A refused workflow, told to the member in their language.

Workflows raise `WorkflowError`s with a stable `code` and `params` (see
`workflows.errors`); this turns them into a sentence. Nothing was changed
when one is raised, which every answer makes clear.
"""

from __future__ import annotations

from handlers import labels
from handlers.i18n import Translator
from workflows.errors import WorkflowError


def _invalid(t: Translator, params: dict[str, object]) -> str:
    reason = params.get("reason")
    field = t._(labels.FIELD.get(str(params.get("field")), labels.FIELD["note"]))
    if reason == "empty_text":
        return t._("The %(field)s is empty. Please type it.", field=field)
    if reason == "text_too_long":
        return t._("The %(field)s is too long: at most %(limit)s characters.",
                   field=field, limit=params.get("limit"))
    if reason == "ambiguous_number":
        candidates = params.get("candidates")
        return t._("Several calls end with %(digits)s: %(numbers)s. Please give the full number.",
                   digits=params.get("code"),
                   numbers=t.either([str(c) for c in candidates]
                                    if isinstance(candidates, list) else []))
    if reason == "bad_location":
        return t._("That location is not valid.")
    if reason == "bad_days":
        return t._("An extension is 1 to %(limit)s working days.", limit=params.get("limit"))
    if reason == "evidence_required":
        return t._("A resolution needs at least one evidence photo or a written reason.")
    if reason == "empty_photo":
        return t._("The photo is empty.")
    if reason == "photo_too_large":
        return t._("The photo is too large: at most %(limit)s MB.", limit=params.get("limit_mb"))
    if reason == "not_an_image":
        return t._("That file is not a photo (JPEG, PNG, GIF or WebP).")
    if reason == "too_many_photos":
        return t._("At most %(limit)s photos.", limit=params.get("limit"))
    if reason == "wrong_request":
        return t._("That request is of another kind.")
    if reason == "same_department":
        return t._("An upheld return must go to another department.")
    if reason == "bad_hours":
        return t._("An invite lasts 1 to %(limit)s hours.", limit=params.get("limit"))
    if reason == "already_bound":
        return t._("This account already belongs to another member. Ask an admin.")
    return t._("That input cannot be used.")


def describe(t: Translator, error: WorkflowError) -> str:
    """One sentence for `error`, ending with the reassurance that nothing changed."""
    params = error.params
    number = params.get("number")
    if error.code == "invalid_input":
        text = _invalid(t, params)
    elif error.code == "not_found":
        what = params.get("what")
        if what == "call":
            text = t._("No such call.")
        elif what == "department":
            text = t._("No department with the code %(code)s.", code=params.get("code"))
        elif what == "item":
            text = t._("That catalog item is no longer offered.")
        elif what == "request":
            text = t._("No such request.")
        elif what == "invite":
            text = t._("That invite code is not valid. Please check it, or ask for a new one.")
        elif what == "member":
            text = t._("No member with the code %(code)s.", code=params.get("code", "?"))
        else:
            text = t._("Not found.")
    elif error.code == "not_allowed":
        if number:
            text = t._("You may not do this with %(number)s.", number=number)
        else:
            text = t._("You may not do this.")
    elif error.code == "wrong_state":
        reason = params.get("reason")
        status = str(params.get("status", ""))
        if reason == "invite_used":
            text = t._("That invite code was already used. Ask an admin for a new one.")
        elif reason == "invite_expired":
            text = t._("That invite code has expired. Ask an admin for a new one.")
        elif status == "superseded":
            text = t._("That request no longer needs a decision: the call was assigned or "
                       "withdrawn since.")
        elif status in ("approved", "refused", "pending"):
            text = t._("That request was already decided.")
        elif status == "acknowledged" and str(params.get("action", "")).startswith("acknowledge"):
            text = t._("%(number)s is already acknowledged.", number=number)
        elif number and status in labels.STATUS:
            text = t._("%(number)s is now: %(status)s. This can no longer be done.",
                       number=number, status=t._(labels.STATUS[status]))
        else:
            text = t._("This can no longer be done.")
    else:
        text = t._("That was refused.")
    return t.join(text, t._("Nothing was changed."))

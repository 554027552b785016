"""Names of things the conversations show, marked for translation."""

from __future__ import annotations

from handlers.i18n import N_
from models import CallStatus, RatingLevel

STATUS: dict[str, str] = {
    CallStatus.RAISED: N_("raised"),
    CallStatus.PENDING_DISPATCH: N_("waiting for the command centre"),
    CallStatus.DISPATCHED: N_("dispatched, not yet acknowledged"),
    CallStatus.ACKNOWLEDGED: N_("acknowledged"),
    CallStatus.IN_PROGRESS: N_("in progress"),
    CallStatus.EXTENSION_REQUESTED: N_("extension requested"),
    CallStatus.RESOLVED: N_("resolved, waiting for the caller to confirm"),
    CallStatus.CLOSED: N_("closed"),
    CallStatus.WITHDRAWN: N_("withdrawn"),
}

RATING: dict[str, str] = {
    RatingLevel.SATISFIED: N_("Satisfied"),
    RatingLevel.MOSTLY_SATISFIED: N_("Mostly satisfied"),
    RatingLevel.DISSATISFIED: N_("Dissatisfied"),
}

# What the caller is told as their call moves (template call_progress, param event).
PROGRESS: dict[str, str] = {
    "CallAcknowledged": N_("the department acknowledged it"),
    "CallResponded": N_("the department responded"),
    "CallAssigned": N_("the command centre dispatched it to a department"),
    "ExtensionGranted": N_("the department was granted more time"),
    "ReturnUpheld": N_("the command centre is rerouting it"),
    "ReturnRefused": N_("the command centre sent it back to the department"),
    "CallAutoClosed": N_("it was closed automatically, since it was not confirmed in time"),
}

LIMIT: dict[str, str] = {
    "acknowledge": N_("acknowledge"),
    "respond": N_("respond"),
    "resolve": N_("resolve"),
}

STEP: dict[str, str] = {
    "reminder_halfway": N_("Reminder"),
    "reminder_before": N_("Reminder"),
    "urge": N_("Urge"),
    "supervise": N_("Supervision order"),
    "accountability": N_("Accountability referral"),
}

FIELD: dict[str, str] = {
    "description": N_("description"),
    "location": N_("address"),
    "response": N_("response"),
    "reason": N_("reason"),
    "resolution note": N_("reason"),
    "note": N_("note"),
    "comment": N_("comment"),
}

REQUEST_KIND: dict[str, str] = {
    "extension": N_("extension"),
    "return": N_("return"),
}

LANGUAGE_NAMES: dict[str, str] = {
    # Each language is named in itself, so anyone can find their own.
    "zh_Hans": "简体中文",
    "zh_Hant": "繁體中文",
    "en": "English",
}

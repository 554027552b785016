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

# Why a system's media_url gave no photo (`workflows.sources.MEDIA_*`).
MEDIA_ERROR: dict[str, str] = {
    "too_large": N_("the file is too large"),
    "not_an_image": N_("it is not an image"),
    "unreachable": N_("it could not be downloaded"),
    "forbidden_address": N_("its address is not a public one"),
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

# The event log as a dossier shows it.
EVENT: dict[str, str] = {
    "CallRaised": N_("raised"),
    "CallDispatched": N_("dispatched"),
    "CallSentToDispatcher": N_("sent to the command centre"),
    "CallAssigned": N_("dispatched by the command centre"),
    "CallAcknowledged": N_("acknowledged"),
    "CallAcknowledgedByAssisting": N_("acknowledged by an assisting department"),
    "CallResponded": N_("responded"),
    "ExtensionRequested": N_("extension requested"),
    "ExtensionGranted": N_("extension granted"),
    "ExtensionRefused": N_("extension refused"),
    "CallReturned": N_("returned"),
    "ReturnUpheld": N_("return upheld"),
    "ReturnRefused": N_("return refused"),
    "CallResolved": N_("resolved"),
    "FixRejected": N_("fix rejected"),
    "CallClosed": N_("closed"),
    "CallAutoClosed": N_("closed automatically"),
    "CallWithdrawn": N_("withdrawn"),
    "InfoAdded": N_("information added"),
    "CallUrged": N_("urged"),
    "CallSupervised": N_("supervision order issued"),
    "AccountabilityReferred": N_("referred for accountability"),
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


# What an outbox message was, as the dispatcher's "undeliverable" notice names it.
TEMPLATE: dict[str, str] = {
    "call_alert": N_("a new call's alert"),
    "call_pending_dispatch": N_("a call waiting for dispatch"),
    "call_progress": N_("news of a call's progress"),
    "call_resolved": N_("the request to confirm a fix"),
    "fix_rejected": N_("a fix the caller rejected"),
    "request_pending": N_("a request to decide"),
    "request_decided": N_("a request's decision"),
    "call_closed": N_("a call's closing"),
    "call_withdrawn": N_("a call's withdrawal"),
    "call_info_added": N_("information the caller added"),
    "nudge": N_("a reminder or escalation"),
    "daily_digest": N_("the morning digest"),
    "monthly_report": N_("the monthly report"),
    "calendar_warning": N_("the calendar warning"),
}

# Why it was given up (workflows.outbox's reason codes).
UNDELIVERABLE: dict[str, str] = {
    "unreachable": N_("They have no chat account youhu can reach."),
    "refused": N_("The chat platform refused it (the bot may be blocked)."),
    "kept_failing": N_("Sending kept failing."),
}

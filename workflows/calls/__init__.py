"""The use cases of the call lifecycle, one function each, grouped by who acts:

- `raising`: the caller raises a call; the catalog routes it, or the
  dispatcher assigns (or reroutes) it — `raise_call`, `assign`, `call_number`;
- `department`: the department's actions — `acknowledge`, `respond`,
  `resolve`, and the requests it files, `request_extension`, `return_call`;
- `decisions`: the dispatcher's decisions on those requests —
  `decide_extension`, `decide_return`, `decide_request`;
- `caller`: the caller's actions — `confirm`, `reject_fix`, `add_info`,
  `withdraw` — and the system's `auto_close_due`;
- `_shared`: what they share (loading under the lock, the checked move, routing).

Every use case opens a unit of work, checks who is acting and the call's
state against `workflows.lifecycle.TRANSITIONS`, changes the call, appends to
the event log and commits — or raises a `WorkflowError` and changes nothing.
It returns what the caller shows, built in that same session after the
commit: the call's `workflows.views.CallView` (a filed request: a
`CallRequestView`, which carries it), never an ORM row.
Import them from here (`from workflows import calls; calls.acknowledge(...)`).
"""

from workflows.calls._shared import MAX_EXTENSION_DAYS, MAX_REASON, MAX_TEXT
from workflows.calls.caller import add_info, auto_close_due, confirm, reject_fix, withdraw
from workflows.calls.decisions import decide_extension, decide_request, decide_return
from workflows.calls.department import (
    acknowledge,
    request_extension,
    resolve,
    respond,
    return_call,
)
from workflows.calls.raising import assign, call_number, raise_call

__all__ = [
    "MAX_EXTENSION_DAYS",
    "MAX_REASON",
    "MAX_TEXT",
    "acknowledge",
    "add_info",
    "assign",
    "auto_close_due",
    "call_number",
    "confirm",
    "decide_extension",
    "decide_request",
    "decide_return",
    "raise_call",
    "reject_fix",
    "request_extension",
    "resolve",
    "respond",
    "return_call",
    "withdraw",
]

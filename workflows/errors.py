"""Errors a workflow raises instead of changing anything.

Each carries a stable `code` and `params`, so the conversations can tell the
member what went wrong in their own language; `str()` is plain English for
logs and the CLI.
"""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """A request the rules refuse; nothing was changed."""

    code = "refused"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.params = params


class NotFound(WorkflowError):
    code = "not_found"


class NotAllowed(WorkflowError):
    """The member may not do this (wrong role, unit or department)."""

    code = "not_allowed"


class WrongState(WorkflowError):
    """The call is not in a state where this can happen (e.g. a second press)."""

    code = "wrong_state"


class InvalidInput(WorkflowError):
    """What was given is unusable (empty text, too many photos, not an image…)."""

    code = "invalid_input"

"""Words typed outside any conversation: an action on a call written out
("签收 BY-2026-000003", "resolve 3"), a call number alone, or anything else —
answered with what the member can do, for their role.

An action with a call number is done as its button would do it (checked the
same way: the workflow refuses who may not, and a call that moved on); an
action without a number, or a word from another role's list, gets the hint
of where the member's buttons are.
"""

from __future__ import annotations

import re

from handlers import actions, audience
from handlers.buttons import Press
from handlers.errors import describe
from handlers.messages import Reply
from handlers.turn import Turn
from workflows import queries
from workflows.errors import WorkflowError

# The words of each call action, in the three languages, longest first where
# one contains another (未解决 before 解决).
_VERBS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ext", ("申请延期", "申請延期", "延期", "extension", "extend")),
    ("rej", ("未解决", "未解決", "没解决", "沒解決", "not fixed", "reject")),
    ("ack", ("签收", "簽收", "acknowledge", "ack")),
    ("rsp", ("响应", "響應", "respond")),
    ("res", ("办结", "辦結", "resolve")),
    ("ret", ("退回", "return")),
    ("wd", ("撤回", "withdraw")),
    ("cfm", ("确认", "確認", "confirm")),
    ("add", ("补充信息", "補充資訊", "补充", "補充", "add information", "add")),
)
_DEPARTMENT_ACTIONS = frozenset({"ack", "rsp", "res", "ret", "ext"})
_NUMBER = re.compile(r"(?i)\b([a-z]{1,8}-\d{4}-\d{1,8})\b|(?:^|\s|#)(\d{1,8})\s*$")


def parse(text: str) -> tuple[str | None, str | None]:
    """(the action, the call number) that `text` names, each None if absent."""
    lowered = text.strip().lower()
    action = next((code for code, words in _VERBS
                   if any(lowered.startswith(word) for word in words)), None)
    match = _NUMBER.search(text.strip())
    number = (match[1] or match[2]) if match else None
    return action, number


def answer(turn: Turn) -> list[Reply]:
    """What typed words outside a conversation get."""
    action, number = parse(turn.msg.text or "")
    if number is not None and action is not None:
        try:
            view = queries.call_by_number(turn.ctx, number, turn.actor)
        except WorkflowError as error:
            return turn.say(describe(turn.t, error))
        return actions.press(turn, Press("call", action=action, target=view.id))
    if action is not None:
        return turn.say(hint(turn, action))
    return turn.say(hint(turn))


def hint(turn: Turn, action: str | None = None) -> str:
    """Where this member's buttons are, said for their role."""
    member = turn.member
    if audience.sees_department_calls(member):
        if action is None or action in _DEPARTMENT_ACTIONS:
            return turn._("Your department's calls, with their buttons, are in /mine. Or type "
                          "the action and the number, e.g. \"acknowledge BY-2026-000003\".")
    elif audience.raises_calls(member):
        if action is None:
            return turn._("Send /call to raise a call, or just send a photo of the problem. "
                          "Your calls are in /mine; /help shows what you can do.")
        if action not in _DEPARTMENT_ACTIONS:
            return turn._("Your calls, with their buttons, are in /mine. Or type the action "
                          "and the number, e.g. \"withdraw BY-2026-000003\".")
    elif audience.sees_dispatch_queue(member):
        return turn._("What waits for the command centre is in /queue; /help shows the "
                      "commands.")
    return turn._("/help shows what you can do.")


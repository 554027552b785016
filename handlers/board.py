"""`/board`: a one-time link that signs the member in to the dispatch board
(the command centre, the supervision office, department heads, admins);
`/board revoke <member code>` or `/board revoke all`: an admin ends board
sessions at once."""

from __future__ import annotations

from handlers.errors import describe
from handlers.messages import Reply
from handlers.turn import Turn
from workflows import board
from workflows.errors import NotAllowed, WorkflowError

LOGIN_PATH = "/board/login/"


def login_link(turn: Turn) -> list[Reply]:
    """Sent only in a private chat: anyone who sees the link could use it."""
    if turn.msg.args and turn.msg.args[0].lower() == "revoke":
        return revoke(turn)
    if turn.ctx.board_url is None:
        return turn.say(turn._("The dispatch board is not set up. Ask an admin."))
    if turn.msg.chat != turn.msg.sender:
        return turn.say(turn._("Send /board to me in a private chat: the link signs you in."))
    try:
        token = board.issue_link(turn.ctx, turn.member_id, turn.now)
    except NotAllowed:
        return turn.say(turn._("The dispatch board is for the command centre, the supervision "
                               "office and department heads."))
    minutes = int(board.LINK_LIFETIME.total_seconds() // 60)
    return turn.say(turn._("Your link to the dispatch board. It works once, for %(minutes)s "
                           "minutes; do not forward it:\n%(link)s",
                           minutes=minutes, link=turn.ctx.board_url + LOGIN_PATH + token))


def revoke(turn: Turn) -> list[Reply]:
    """`/board revoke <member code>` / `/board revoke all` (admins; the
    workflow asks the policy). Unused login links of the member go too."""
    if len(turn.msg.args) != 2:
        return turn.say(turn._("Usage: /board revoke <member code> or /board revoke all"))
    code = turn.msg.args[1]
    try:
        ended = board.revoke_sessions(turn.ctx, None if code.lower() == "all" else code,
                                      turn.member_id, turn.now)
    except WorkflowError as error:
        return turn.say(describe(turn.t, error))
    return turn.say(turn._("Board sessions ended: %(count)s. Unused login links no longer "
                           "work.", count=turn.t.number(ended)))

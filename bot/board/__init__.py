"""The dispatch board (综合指挥调度平台): the command centre's screen, served by
`youhu run` at `/board` (see `bot.board.app`)."""

from bot.board.app import Board, board_routes

__all__ = ["Board", "board_routes"]

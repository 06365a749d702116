"""PettingZoo chess's 8x8x73 action encoding <-> python-chess moves.

An action is ``(col * 8 + row) * 73 + plane`` of the moving piece's square, with the board
mirrored for Black so the mover always plays "up" (AlphaZero's encoding). The plane helpers
come from ``pettingzoo.classic.chess.chess_utils`` so both sides agree by construction.
"""

from __future__ import annotations

import chess
from pettingzoo.classic.chess import chess_utils

PLANES = 73


def move_to_action(move: chess.Move, white_to_move: bool) -> int:
    """The action index of a legal ``move`` for the side to move."""
    if not white_to_move:
        move = chess_utils.mirror_move(move)
    col, row = chess_utils.square_to_coord(move.from_square)
    return (col * 8 + row) * PLANES + chess_utils.get_move_plane(move)


def legal_action_moves(board: chess.Board) -> dict[int, chess.Move]:
    """Every legal move of ``board`` keyed by its action index."""
    white = board.turn == chess.WHITE
    return {move_to_action(move, white): move for move in board.legal_moves}


def action_to_move(board: chess.Board, action: int) -> chess.Move:
    """The legal move of ``board`` that ``action`` encodes (ValueError if none)."""
    moves = legal_action_moves(board)
    if action not in moves:
        raise ValueError(f"Action {action} is not a legal chess move in {board.fen()}.")
    return moves[action]


def board_from_actions(actions: list[int]) -> chess.Board:
    """Replay PettingZoo chess actions from the start position."""
    board = chess.Board()
    for action in actions:
        board.push(action_to_move(board, action))
    return board

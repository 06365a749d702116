"""Shogi action encoding of the AlphaZero/MuZero papers: 9 x 9 x 139 = 11,259 actions.

Everything is expressed from the mover's perspective, so a network sees one convention for both
sides: the board is rotated 180 degrees when gote (white, ``player_1``) is to move.

Cells. ``(row, col)`` is a cell of the board as the mover sees it, the same cell as
``observation[row, col, :]``: row 0 is the far rank (the opponent's back rank), row 8 the
mover's own back rank; col 0 is the mover's left. For sente this is the usual diagram (row 0 =
rank a, col 0 = file 9, so cell (r, c) is file ``9 - c``, rank ``r + 1``); for gote it is that
diagram turned around (cell (r, c) is file ``c + 1``, rank ``9 - r``).

Index: ``action = (row * 9 + col) * 139 + plane``; for board moves the cell is the origin square,
for drops the destination square.

Planes:

* ``0..63``   sliding ("queen-like") moves: ``plane = direction * 8 + (distance - 1)``, distance
  1..8, directions in the mover's frame ``N, NE, E, SE, S, SW, W, NW`` (N = forward = towards
  row 0, E = towards col 8). Every non-knight move of every piece is one of these.
* ``64, 65``  knight moves: two forward and one to the left (col - 1), resp. right (col + 1).
* ``66..131`` the same 66 moves with promotion (``plane = 66 + unpromoted plane``).
* ``132..138`` drops of pawn, lance, knight, silver, gold, bishop, rook (cshogi's hand order).

The tables below translate between these indices, cshogi's 16-bit moves and USI strings for both
colours, so encoding a whole move list is one vectorised lookup.
"""

from __future__ import annotations

import numpy as np

BOARD = 9
NUM_PLANES = 139
NUM_ACTIONS = BOARD * BOARD * NUM_PLANES  # 11,259

SLIDE_PLANES = 64
KNIGHT_PLANES = 2
PROMOTION_OFFSET = SLIDE_PLANES + KNIGHT_PLANES  # 66
DROP_OFFSET = 2 * PROMOTION_OFFSET  # 132

# (d_row, d_col) in the mover's frame, N first, clockwise.
DIRECTIONS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))
KNIGHT_JUMPS = ((-2, -1), (-2, 1))

# Hand order of the drop planes (cshogi's HPAWN..HROOK) and the cshogi piece type of each.
DROP_NAMES = ("P", "L", "N", "S", "G", "B", "R")
_DROP_PIECE_TYPES = (1, 2, 3, 4, 7, 5, 6)  # PAWN, LANCE, KNIGHT, SILVER, GOLD, BISHOP, ROOK

_FILES = "123456789"
_RANKS = "abcdefghi"


def cell_to_square(row: int, col: int, color: int) -> int:
    """cshogi square index (``file * 9 + rank``, 0-based) of a mover-frame cell for ``color``."""
    square = (BOARD - 1 - col) * BOARD + row
    return square if color == 0 else 80 - square


def square_name(square: int) -> str:
    """USI name of a cshogi square, e.g. 0 -> '1a', 80 -> '9i'."""
    return _FILES[square // BOARD] + _RANKS[square % BOARD]


def _plane_target(row: int, col: int, plane: int) -> tuple[int, int] | None:
    """Destination cell of a board-move plane (ignoring promotion), or None if off the board."""
    base = plane % PROMOTION_OFFSET
    if base < SLIDE_PLANES:
        d_row, d_col = DIRECTIONS[base // 8]
        distance = base % 8 + 1
        to_row, to_col = row + d_row * distance, col + d_col * distance
    else:
        d_row, d_col = KNIGHT_JUMPS[base - SLIDE_PLANES]
        to_row, to_col = row + d_row, col + d_col
    if 0 <= to_row < BOARD and 0 <= to_col < BOARD:
        return to_row, to_col
    return None


def _build_tables() -> tuple[np.ndarray, np.ndarray, list[list[str | None]], list[dict[str, int]]]:
    """Action <-> cshogi move16 <-> USI tables for both colours (built once, at import)."""
    to_move16 = np.zeros((2, NUM_ACTIONS), dtype=np.uint16)  # 0 = no such move (never legal)
    from_move16 = np.full((2, 1 << 16), -1, dtype=np.int32)
    to_usi: list[list[str | None]] = [[None] * NUM_ACTIONS, [None] * NUM_ACTIONS]
    from_usi: list[dict[str, int]] = [{}, {}]
    for color in (0, 1):
        for row in range(BOARD):
            for col in range(BOARD):
                square = cell_to_square(row, col, color)
                base_action = (row * BOARD + col) * NUM_PLANES
                for plane in range(DROP_OFFSET):
                    target = _plane_target(row, col, plane)
                    if target is None:
                        continue
                    to_square = cell_to_square(*target, color)
                    promote = plane >= PROMOTION_OFFSET
                    move16 = to_square | (square << 7) | (int(promote) << 14)
                    usi = square_name(square) + square_name(to_square) + ("+" if promote else "")
                    _register(
                        color, base_action + plane, move16, usi, to_move16, from_move16, to_usi, from_usi
                    )
                for hand, piece_type in enumerate(_DROP_PIECE_TYPES):
                    move16 = square | ((80 + piece_type) << 7)  # cshogi: from = 80 + piece type
                    usi = DROP_NAMES[hand] + "*" + square_name(square)
                    _register(
                        color,
                        base_action + DROP_OFFSET + hand,
                        move16,
                        usi,
                        to_move16,
                        from_move16,
                        to_usi,
                        from_usi,
                    )
    return to_move16, from_move16, to_usi, from_usi


def _register(color, action, move16, usi, to_move16, from_move16, to_usi, from_usi) -> None:
    to_move16[color, action] = move16
    from_move16[color, move16] = action
    to_usi[color][action] = usi
    from_usi[color][usi] = action


ACTION_TO_MOVE16, MOVE16_TO_ACTION, _ACTION_TO_USI, _USI_TO_ACTION = _build_tables()
for _table in (ACTION_TO_MOVE16, MOVE16_TO_ACTION):
    _table.setflags(write=False)


def moves_to_actions(moves: list[int], color: int) -> np.ndarray:
    """Action indices (int32) of cshogi moves (32-bit, as from ``legal_moves``) for the mover."""
    # The low 16 bits of a cshogi move are its move16 (little-endian: every other uint16).
    return MOVE16_TO_ACTION[color][np.array(moves, dtype=np.uint32).view(np.uint16)[::2]]


def action_to_move16(action: int, color: int) -> int:
    """cshogi 16-bit move for an action of ``color``; 0 if the index names no move on a board."""
    return int(ACTION_TO_MOVE16[color, action])


def action_to_usi(action: int, color: int) -> str:
    """USI string of an action for the mover ``color`` (0 sente, 1 gote); legality not checked."""
    if not 0 <= action < NUM_ACTIONS:
        raise ValueError(f"action {action} is outside 0..{NUM_ACTIONS - 1}")
    usi = _ACTION_TO_USI[color][action]
    if usi is None:
        raise ValueError(f"action {action} leaves the board: it is never a legal shogi move")
    return usi


def usi_to_action(move: str, color: int) -> int:
    """Action index of a USI move string (e.g. '7g7f', '8h2b+', 'P*5e') for the mover ``color``.

    Legality is not checked here (the action mask does that); a string that is not a well-formed
    USI move raises ValueError.
    """
    action = _USI_TO_ACTION[color].get(move)
    if action is None:
        raise ValueError(f"{move!r} is not a USI move: expected e.g. '7g7f', '8h2b+' or 'P*5e'")
    return action

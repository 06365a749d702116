"""Observation planes for shogi, ``[9, 9, 47]`` float32, from one player's perspective.

Cells follow ``encoding``: ``planes[row, col]`` is the cell (row, col) as the observing player
sees it (board rotated 180 degrees for gote), the same frame as the action index.

Channels:

* ``0..13``  the observer's pieces, one plane per type in cshogi order: P, L, N, S, B, R, G, K,
  +P, +L, +N, +S, +B, +R.
* ``14..27`` the opponent's pieces, same order.
* ``28..34`` the observer's pieces in hand (P, L, N, S, G, B, R), constant planes, count divided by
  the most of that piece one side can hold (18, 4, 4, 4, 4, 2, 2).
* ``35..41`` the opponent's pieces in hand, same.
* ``42..44`` repetitions: the position occurred before at least 1, 2, 3 times (the 4th occurrence
  ends the game, sennichite).
* ``45``     side to move: 1 when gote is to move.
* ``46``     plies played since reset divided by the move cap.

One history step only (AlphaZero stacks 8); stack frames outside if a model wants more.
"""

from __future__ import annotations

import cshogi
import numpy as np

NUM_CHANNELS = 47
PIECE_CHANNELS = 28
HAND_CHANNEL = 28
OPPONENT_HAND_CHANNEL = 35
REPETITION_CHANNEL = 42
TURN_CHANNEL = 45
MOVE_COUNT_CHANNEL = 46

_HAND_MAX = (18, 4, 4, 4, 4, 2, 2)
_CSHOGI_FEATURES = 104  # what cshogi's piece_planes writes: 28 piece planes + 76 hand planes
_SWAP_SIDES = np.r_[14:28, 0:14]


class PlaneBuilder:
    """Builds observation planes with cshogi's C feature code; one reusable scratch buffer."""

    def __init__(self) -> None:
        self._scratch = np.zeros((_CSHOGI_FEATURES, 9, 9), dtype=np.float32)

    def planes(self, board: cshogi.Board, color: int, repetitions: int, move_fraction: float) -> np.ndarray:
        """Planes for the player ``color`` (0 sente, 1 gote) on ``board``.

        ``repetitions`` is how often the current position occurred before; ``move_fraction`` the
        plies played divided by the move cap.
        """
        own, opponent = board.pieces_in_hand if color == 0 else board.pieces_in_hand[::-1]
        constants = [n / most for n, most in zip(own, _HAND_MAX)]
        constants += [n / most for n, most in zip(opponent, _HAND_MAX)]
        constants += [repetitions >= 1, repetitions >= 2, repetitions >= 3]
        constants += [board.turn, move_fraction]
        out = np.empty((9, 9, NUM_CHANNELS), dtype=np.float32)
        out[:, :, :PIECE_CHANNELS] = self._piece_planes(board, color)
        out[:, :, PIECE_CHANNELS:] = constants  # one broadcast for all the constant planes
        return out

    def _piece_planes(self, board: cshogi.Board, color: int) -> np.ndarray:
        """``[9, 9, 28]`` view of the piece planes in the observer's frame."""
        scratch = self._scratch
        scratch[:PIECE_CHANNELS].fill(0.0)  # cshogi only sets the ones of the 28 piece planes
        if color == board.turn:
            board.piece_planes_rotate(scratch)  # side to move first, rotated when gote moves
            features = scratch[:PIECE_CHANNELS]
        else:
            board.piece_planes(scratch)  # sente first, never rotated
            features = scratch[:PIECE_CHANNELS]
            if color == cshogi.WHITE:
                features = features[_SWAP_SIDES, ::-1, ::-1]
        # features[channel, file, rank] (file 0 = '1') -> [row = rank, col = 8 - file, channel]
        return features[:, ::-1, :].transpose(2, 1, 0)

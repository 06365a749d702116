"""A depth-limited negamax opponent for connect four (the boardgames suite's "negamax" opponent).

Alpha-beta negamax over a bitboard (one 7-bit column per board column, 6 playable rows plus a
sentinel bit, the layout popularised by John Tromp's and Pascal Pons's solvers). At the depth
limit a position scores by its open threats: empty cells that would complete four for the
player to move, minus those of the opponent. Ties among the best moves are broken at random
(seeded), so evaluation games vary.

The opponent follows ``wrappers.opponents.Opponent`` (``act(observation, action_mask,
game_state)``), with PettingZoo's connect-four observation (6 x 7 x 2: plane 0 the mover's
stones, row 5 the bottom).
"""

from __future__ import annotations

import numpy as np

from wrappers.checks import integer_in_range

ROWS, COLS = 6, 7
COLUMN_BITS = ROWS + 1
BOTTOM = sum(1 << (c * COLUMN_BITS) for c in range(COLS))
BOARD = BOTTOM * ((1 << ROWS) - 1)
ORDER = (3, 2, 4, 1, 5, 0, 6)  # centre first: better alpha-beta cut-offs
WIN = 1_000


def _top(col: int) -> int:
    return 1 << (ROWS - 1 + col * COLUMN_BITS)


def _bottom(col: int) -> int:
    return 1 << (col * COLUMN_BITS)


def _column(col: int) -> int:
    return ((1 << ROWS) - 1) << (col * COLUMN_BITS)


def has_four(stones: int) -> bool:
    """Whether a bitboard of one player's stones holds four in a row (any direction)."""
    for shift in (1, COLUMN_BITS, COLUMN_BITS - 1, COLUMN_BITS + 1):
        pairs = stones & (stones >> shift)
        if pairs & (pairs >> (2 * shift)):
            return True
    return False


def threats(stones: int, mask: int) -> int:
    """Empty cells where ``stones``'s owner would complete four (a bitboard)."""
    found = (stones << 1) & (stones << 2) & (stones << 3)  # vertical: only upwards
    for shift in (COLUMN_BITS, COLUMN_BITS - 1, COLUMN_BITS + 1):
        two_after = (stones << shift) & (stones << 2 * shift)
        found |= two_after & (stones << 3 * shift)
        found |= two_after & (stones >> shift)
        two_before = (stones >> shift) & (stones >> 2 * shift)
        found |= two_before & (stones << shift)
        found |= two_before & (stones >> 3 * shift)
    return found & (BOARD ^ mask)


def from_observation(observation: np.ndarray) -> tuple[int, int, int]:
    """(mover's stones, all stones, stones played) from PettingZoo's (6, 7, 2) observation."""
    obs = np.asarray(observation)
    if obs.shape != (ROWS, COLS, 2):
        raise ValueError(f"expected a connect-four observation of shape (6, 7, 2), got {obs.shape}")
    mine = theirs = 0
    for col in range(COLS):
        for row in range(ROWS):
            bit = 1 << (col * COLUMN_BITS + (ROWS - 1 - row))  # row 5 is the bottom
            if obs[row, col, 0]:
                mine |= bit
            elif obs[row, col, 1]:
                theirs |= bit
    return mine, mine | theirs, (mine | theirs).bit_count()


def _playable(mask: int, col: int) -> bool:
    return not mask & _top(col)


def _wins(stones: int, mask: int, col: int) -> bool:
    return has_four(stones | ((mask + _bottom(col)) & _column(col)))


def winning_columns(stones: int, mask: int) -> list[int]:
    """Columns where ``stones``'s owner completes four by dropping a stone now."""
    return [col for col in range(COLS) if _playable(mask, col) and _wins(stones, mask, col)]


def negamax(stones: int, mask: int, moves: int, depth: int, alpha: float, beta: float) -> float:
    """Value for the player to move (``stones``): wins score ``WIN - moves``, else threat counts."""
    if moves == ROWS * COLS:
        return 0.0
    for col in ORDER:
        if _playable(mask, col) and _wins(stones, mask, col):
            return WIN - moves
    if depth <= 0:
        opponent = stones ^ mask
        return float(threats(stones, mask).bit_count() - threats(opponent, mask).bit_count())
    best = -float("inf")
    for col in ORDER:
        if not _playable(mask, col):
            continue
        new_mask = mask | (mask + _bottom(col))
        value = -negamax(stones ^ mask, new_mask, moves + 1, depth - 1, -beta, -alpha)
        best = max(best, value)
        alpha = max(alpha, value)
        if alpha >= beta:
            break
    return best


def move_values(stones: int, mask: int, moves: int, depth: int) -> dict[int, float]:
    """Exact depth-limited value of every legal move (no pruning at the root, so ties are true ties)."""
    values = {}
    for col in ORDER:
        if not _playable(mask, col):
            continue
        if _wins(stones, mask, col):
            values[col] = float(WIN - moves)
            continue
        new_mask = mask | (mask + _bottom(col))
        values[col] = -negamax(stones ^ mask, new_mask, moves + 1, depth - 1, -float("inf"), float("inf"))
    return values


class ConnectFourNegamaxOpponent:
    """Connect four by depth-limited alpha-beta negamax; random among equally valued moves.

    :param depth: plies searched beyond the move itself (4: sees its own and the learner's
        replies two moves deep; immediate wins and blocks are always found).
    :param seed: seed of the tie-breaking generator (``VersusOpponentEnv`` reseeds it on seeded resets).
    """

    def __init__(self, depth: int = 4, seed: int | None = None) -> None:
        # whole plies only: 2.5 searched like 3, and NaN never reached the depth limit (an endless search)
        self.depth = integer_in_range("depth", depth, 0, example=4)
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: object = None) -> int:
        stones, mask, moves = from_observation(observation)
        values = move_values(stones, mask, moves, self.depth)
        legal = {c: v for c, v in values.items() if action_mask[c]}
        if not legal:
            raise ValueError("no legal move: the board is full or the mask is empty")
        best = max(legal.values())
        return int(self.rng.choice(sorted(c for c, v in legal.items() if v == best)))

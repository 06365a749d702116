"""Perfect tic-tac-toe by exhaustive minimax, and the exact value of any tic-tac-toe position."""

from __future__ import annotations

from functools import cache

import numpy as np

from wrappers.opponents.base import GameState

TICTACTOE_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))
"""The eight winning lines, as squares in action order."""


class TicTacToeMinimaxOpponent:
    """Perfect tic-tac-toe: uniformly random among the moves with the best minimax value.

    Reads the board from PettingZoo tic-tac-toe's observation (plane 0: the mover's marks,
    plane 1: the opponent's). PettingZoo builds it by reshaping its 9 squares row-major, so
    the flattened planes are indexed like the actions.

    :param seed: seed of the tie-breaking generator (``VersusOpponentEnv`` reseeds it on seeded resets).
    """

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        return int(self.rng.choice(self.best_actions(observation)))

    @staticmethod
    def best_actions(observation: np.ndarray) -> list[int]:
        """All optimal actions for the player to move in this observation."""
        obs = np.asarray(observation)
        cells = tuple(int(m) - int(o) for m, o in zip(_flat(obs[..., 0]), _flat(obs[..., 1])))
        values = {a: -_negamax(_play(cells, a, 1)) for a in range(9) if cells[a] == 0}
        best = max(values.values())
        return [a for a, v in values.items() if v == best]


def tictactoe_value(cells: tuple[int, ...]) -> int:
    """Exact value for the player to move (+1 win, 0 draw, -1 loss) of ``cells`` in action
    order: the mover's marks +1, the opponent's -1, empty 0."""
    return _negamax(tuple(int(c) for c in cells))


def _flat(plane: np.ndarray) -> np.ndarray:
    """Squares in action order (PettingZoo's observation is ``squares.reshape(3, 3)``)."""
    return plane.reshape(-1)


def _play(cells: tuple[int, ...], action: int, mark: int) -> tuple[int, ...]:
    """Place ``mark`` then flip signs so that the next mover's marks are +1."""
    board = list(cells)
    board[action] = mark
    return tuple(-c for c in board)


@cache
def _negamax(cells: tuple[int, ...]) -> int:
    """Value for the player to move (+1 win, 0 draw, -1 loss); the opponent's marks are -1."""
    if any(cells[i] == cells[j] == cells[k] == -1 for i, j, k in TICTACTOE_LINES):
        return -1
    moves = [a for a in range(9) if cells[a] == 0]
    if not moves:
        return 0
    return max(-_negamax(_play(cells, a, 1)) for a in moves)

"""Opponents for the versus-opponent env: anything that picks a move from (board, mask, state).

An opponent is any object with ``act(observation, action_mask, game_state) -> int``. Random
play, any SB3-style model (through ``predict``), a perfect tic-tac-toe player and the engines
in ``wrappers.engines`` all follow it, so models can play each other and engines alike.
An opponent may return ``RESIGN`` to give up (engines do); the versus env scores it as a loss.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol, runtime_checkable

import numpy as np

RESIGN = -1
"""Returned by ``Opponent.act`` to resign: the opponent loses the game."""


@dataclass
class GameState:
    """What an opponent may know beyond the board: the game, its settings and the moves so far.

    ``history`` lists every action played this game (both sides, in order, as action indices),
    which is all an engine needs to rebuild the position. ``env`` is the live PettingZoo env,
    to be read, never stepped.
    """

    game: str | None
    history: list[int]
    to_play: int
    config: dict = field(default_factory=dict)
    env: Any = None


@runtime_checkable
class Opponent(Protocol):
    """Protocol of every opponent."""

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        """Return a legal action index for the player to move (or ``RESIGN``)."""
        ...


class RandomOpponent:
    """Uniformly random legal moves."""

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        return int(self.rng.choice(np.flatnonzero(action_mask)))


class PolicyOpponent:
    """Any model with SB3's ``predict`` (PPO, MaskablePPO, MuZero...) as an opponent.

    Masks are passed as ``action_masks=`` when ``predict`` accepts them, so masked models only
    choose legal moves; unmasked models may choose illegal ones and then lose by forfeit.
    """

    def __init__(self, model: Any, deterministic: bool = True):
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"PolicyOpponent needs an object with predict(); got {type(model).__name__}.")
        self.model = model
        self.deterministic = deterministic
        self._takes_masks = _accepts_keyword(model.predict, "action_masks")

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        kwargs = {"deterministic": self.deterministic}
        if self._takes_masks:
            kwargs["action_masks"] = np.asarray(action_mask, dtype=bool)
        action, _ = self.model.predict(observation, **kwargs)
        return int(np.asarray(action).reshape(-1)[0])


class TicTacToeMinimaxOpponent:
    """Perfect tic-tac-toe: uniformly random among the moves with the best minimax value.

    Reads the board from PettingZoo tic-tac-toe's observation (plane 0: the mover's marks,
    plane 1: the opponent's). PettingZoo builds it by reshaping its 9 squares row-major, so
    the flattened planes are indexed like the actions.
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


_LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


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
    if any(cells[i] == cells[j] == cells[k] == -1 for i, j, k in _LINES):
        return -1
    moves = [a for a in range(9) if cells[a] == 0]
    if not moves:
        return 0
    return max(-_negamax(_play(cells, a, 1)) for a in moves)


TICTACTOE_LINES = tuple(_LINES)


def tictactoe_value(cells: tuple[int, ...]) -> int:
    """Exact value for the player to move (+1 win, 0 draw, -1 loss) of ``cells`` in action
    order: the mover's marks +1, the opponent's -1, empty 0."""
    return _negamax(tuple(int(c) for c in cells))


def _accepts_keyword(func: Any, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)

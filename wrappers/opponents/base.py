"""What every opponent follows: ``act(observation, action_mask, game_state) -> int``.

An opponent may return ``RESIGN`` to give up (engines do); the versus env scores it as a loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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

"""The uniformly random opponent."""

from __future__ import annotations

import numpy as np

from wrappers.opponents.base import GameState


class RandomOpponent:
    """Uniformly random legal moves.

    :param seed: seed of its generator (``VersusOpponentEnv`` reseeds it on seeded resets).
    """

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        self.rng = np.random.default_rng(seed)

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        return int(self.rng.choice(np.flatnonzero(action_mask)))

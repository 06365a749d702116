"""A self-imposed Go rule for the learner: no passing in the game's first moves.

Self-play on a small board with komi collapses without it: white wins if both players pass at
once, so white learns to answer a pass with a pass; black, whose every line looks lost to an
untrained network, finds passing no worse than playing, and from then on every game is two
moves long and teaches nothing (MuZero learned exactly this on 9x9 in an hour here). Taking the
pass out of the learner's legal actions for the first ``moves`` moves of each game makes
self-play games real ones, so that what the stones do decides the outcome.

The rule restricts only the actions this env reports to the learner (``action_masks()``): an
opponent behind a versus env keeps the full rules, and the game itself is unchanged, so a pass
played anyway is still legal. Pass stays allowed when it is the only legal move.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class NoEarlyPass(gym.Wrapper):
    """Masks ``pass_action`` out of ``action_masks()`` while fewer than ``moves`` moves are played.

    :param env: a ``SelfPlayEnv`` or ``VersusOpponentEnv`` (anything with ``action_masks()`` and a
        ``history`` of the game's moves, both sides').
    :param pass_action: the pass action's index (Go: ``board_size ** 2``).
    :param moves: moves (plies, both sides counted) before the learner may pass.
    """

    def __init__(self, env: gym.Env, pass_action: int, moves: int) -> None:
        super().__init__(env)
        if isinstance(moves, bool) or not isinstance(moves, (int, np.integer)) or moves < 0:
            raise ValueError(f"min_moves_before_pass must be an integer >= 0, got {moves!r}.")
        self.pass_action = int(pass_action)
        self.moves = int(moves)

    def action_masks(self) -> np.ndarray:
        mask = self.env.action_masks()
        if len(self.env.history) < self.moves and mask.sum() > int(mask[self.pass_action]):
            mask = mask.copy()
            mask[self.pass_action] = False
        return mask

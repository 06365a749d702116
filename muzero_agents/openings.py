"""Random openings for self-play: each episode starts with a few uniformly random legal moves.

Why: temperature sampling only varies the moves the current policy already likes, so once the
policy sharpens, self-play stops entering the lines an opponent could choose (an edge opening in
tic-tac-toe, say) and the model never learns the refutations there: at play the search meets
positions whose dynamics and values were never trained. Opening each episode with ``k`` random
moves, ``k`` drawn uniformly from ``0..max_moves`` afresh per episode, plays such lines out
under the current policy; ``k = 0`` keeps a share of the episodes wholly the policy's own.

The search still runs at a random move's position and its policy is the stored target; the
replay buffer learns from the flags which moves were random and, where the search's argmax was
another move, stops value returns there, the random move's own position included
(``TrajectoryReplay.add(random_moves=...)``), so no value target averages over random moves.
Random moves count as moves of the episode (``sampling_moves`` counts them).
"""

from __future__ import annotations

import numpy as np


class RandomOpenings:
    """Per-env count of random moves left in the running episode.

    :param max_moves: the most random moves an episode opens with (0 turns openings off)
    :param rng: draws the opening lengths and the moves
    """

    def __init__(self, max_moves: int, rng: np.random.Generator) -> None:
        self.max_moves = int(max_moves)
        self.rng = rng
        self.moves_left = np.zeros(0, dtype=np.int64)

    def start(self, n_envs: int) -> None:
        """Draw an opening for every env (their episodes start afresh)."""
        self.moves_left = self._draw(n_envs)

    def limit(self, max_moves: int) -> None:
        """Change the maximum; running openings longer than it are cut short."""
        self.max_moves = int(max_moves)
        self.moves_left = np.minimum(self.moves_left, self.max_moves)

    def choose(self, actions: np.ndarray, legal_mask: np.ndarray | None, action_dim: int) -> tuple:
        """Replace the actions of envs still in their opening by uniformly random legal ones.

        Returns the actions (a copy where changed) and a bool array: which envs moved at random.
        """
        random_move = self.moves_left > 0
        if not random_move.any():
            return actions, random_move
        actions = np.array(actions, copy=True)
        for env in np.flatnonzero(random_move):
            legal = np.arange(action_dim) if legal_mask is None else np.flatnonzero(legal_mask[env])
            if legal.size:  # (an env with no legal move keeps the search's action)
                actions[env] = self.rng.choice(legal)
            else:
                random_move[env] = False
        return actions, random_move

    def advance(self, dones: np.ndarray) -> None:
        """Count one move off every opening; envs whose episode ended draw a new one."""
        self.moves_left = np.maximum(self.moves_left - 1, 0)
        finished = np.flatnonzero(dones)
        if finished.size:
            self.moves_left[finished] = self._draw(finished.size)

    def _draw(self, count: int) -> np.ndarray:
        if self.max_moves == 0:
            return np.zeros(count, dtype=np.int64)
        return self.rng.integers(0, self.max_moves + 1, size=count)

"""The learned model's reward for winning moves against the others: the board-game diagnostics' check.

In a board game the only reward is the last move's, so a search sees a one-move win, or a
threat it must block, only if the dynamics function predicts that reward. This measures it one
dynamics step from real observations, for every legal move, winning moves (true reward +1)
apart from the rest (true reward 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def one_step_rewards(
    model: Any, observations: np.ndarray, legal: np.ndarray, winning: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rewards of winning moves, rewards of the other legal moves) over all positions.

    ``legal`` and ``winning`` are [positions, actions] booleans (winning implies legal). The
    network runs in eval mode, as the search runs it: a loaded model is in training mode, where
    batch norm would use these positions' statistics and overwrite its running ones.
    """
    model.policy.set_training_mode(False)
    hidden, _, _ = model.policy.initial_inference_numpy(observations)
    wins, others = [], []
    for action in range(legal.shape[1]):
        reward, _, _, _ = model.policy.recurrent_numpy(hidden, np.full(len(observations), action))
        wins.append(reward[winning[:, action]])
        others.append(reward[legal[:, action] & ~winning[:, action]])
    return np.concatenate(wins), np.concatenate(others)


def reward_table(winning: np.ndarray, others: np.ndarray) -> str:
    """Count, mean and share on the wrong side of 0.5 for winning moves and for the rest."""
    lines = [f"{'moves':<14} {'count':>6} {'mean reward':>11} {'wrong side of 0.5':>17}"]
    for rewards, label, wrong in (
        (winning, "winning (+1)", winning < 0.5),
        (others, "others (0)", others > 0.5),
    ):
        if rewards.size == 0:
            lines.append(f"{label:<14} {0:>6} {'-':>11} {'-':>17}")
            continue
        lines.append(f"{label:<14} {rewards.size:>6} {rewards.mean():>+11.2f} {wrong.mean():>17.3f}")
    return "\n".join(lines)

"""Training-data augmentation by board symmetries (AlphaGo Zero's rotations and reflections).

Where the env declares ``board_symmetries`` (``wrappers.make_board_game`` does for Go,
tic-tac-toe and connect four), each sampled position is replaced by its image under a random
symmetry: the observation, the unroll's actions, the policy targets and the legal masks move
together; values and rewards do not change. Self-play settles on few openings, and this lets
every position it stores stand for all its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from muzero_agents.replay import ReplayBatch


class BoardSymmetry(Protocol):
    """Two index arrays (see ``wrappers.symmetries.Symmetry``)."""

    obs_index: np.ndarray  # the image observation is ``obs.reshape(-1)[obs_index]``
    action_map: np.ndarray  # action ``a`` becomes ``action_map[a]``


def augment(batch: ReplayBatch, symmetries: Sequence[BoardSymmetry], rng: np.random.Generator) -> ReplayBatch:
    """The batch with each sample replaced by its image under a uniformly drawn symmetry."""
    if not symmetries:
        return batch
    size = batch.observations.shape[0]
    chosen = rng.integers(len(symmetries), size=size)
    obs_index = np.stack([s.obs_index for s in symmetries])[chosen]  # [B, prod(obs_shape)]
    action_map = np.stack([s.action_map for s in symmetries])[chosen]  # [B, A]
    inverse = np.argsort(action_map, axis=1)  # image action -> original action

    flat = batch.observations.reshape(size, -1)
    observations = np.take_along_axis(flat, obs_index, axis=1).reshape(batch.observations.shape)
    actions = np.take_along_axis(action_map, batch.actions, axis=1)
    policies = np.take_along_axis(batch.target_policies, inverse[:, None, :], axis=2)
    masks = batch.legal_masks
    if masks is not None:
        masks = np.take_along_axis(masks, inverse[:, None, :], axis=2)
    return batch._replace(
        observations=observations, actions=actions, target_policies=policies, legal_masks=masks
    )

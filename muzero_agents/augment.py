"""Board symmetries (AlphaGo Zero's rotations and reflections) for training data.

Where the env declares ``board_symmetries`` (``wrappers.make_board_game`` does for Go,
tic-tac-toe and connect four), each sampled position is replaced by its image under a random
symmetry: the observation, the unroll's actions (and observations, where sampled), the policy
targets and the legal masks move together; values and rewards do not change. Self-play settles
on few openings, and this lets every position it stores stand for all its images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from muzero_agents.targets import ReplayBatch


class BoardSymmetry(Protocol):
    """Two index arrays (see ``wrappers.symmetries.Symmetry``)."""

    obs_index: np.ndarray  # the image observation is ``obs.reshape(-1)[obs_index]``
    action_map: np.ndarray  # action ``a`` becomes ``action_map[a]``
    # optional ``obs_shape``: the shape of the observations it indexes, checked against the model's


@dataclass(frozen=True)
class Symmetries:
    """A board's symmetries stacked once, ready to index per sample."""

    obs_index: np.ndarray  # [S, prod(obs_shape)]
    action_map: np.ndarray  # [S, A]
    inverse: np.ndarray  # [S, A]: image action -> original action

    @classmethod
    def stack(cls, symmetries: Sequence[BoardSymmetry]) -> Symmetries:
        obs_index = np.stack([np.asarray(s.obs_index, dtype=np.int64) for s in symmetries])
        action_map = np.stack([np.asarray(s.action_map, dtype=np.int64) for s in symmetries])
        return cls(obs_index, action_map, np.argsort(action_map, axis=1))

    @property
    def count(self) -> int:
        """S, the number of symmetries (the identity among them)."""
        return self.obs_index.shape[0]

    def same_as(self, other: Symmetries) -> bool:
        return np.array_equal(self.obs_index, other.obs_index) and np.array_equal(
            self.action_map, other.action_map
        )


def augment(batch: ReplayBatch, symmetries: Symmetries | None, rng: np.random.Generator) -> ReplayBatch:
    """The batch with each sample replaced by its image under a uniformly drawn symmetry."""
    if symmetries is None:
        return batch
    size = batch.observations.shape[0]
    chosen = rng.integers(symmetries.count, size=size)
    action_map, inverse = symmetries.action_map[chosen], symmetries.inverse[chosen]  # [B, A]

    flat = batch.observations.reshape(size, -1)
    observations = np.take_along_axis(flat, symmetries.obs_index[chosen], axis=1)
    actions = np.take_along_axis(action_map, batch.actions, axis=1)
    policies = np.take_along_axis(batch.target_policies, inverse[:, None, :], axis=2)
    masks = batch.legal_masks
    if masks is not None:
        masks = np.take_along_axis(masks, inverse[:, None, :], axis=2)
    later = batch.next_observations
    if later is not None:  # the unroll's real observations move with it (consistency loss)
        steps = later.shape[1]
        flat_later = later.reshape(size, steps, -1)
        later = np.take_along_axis(flat_later, symmetries.obs_index[chosen][:, None, :], axis=2)
        later = later.reshape(batch.next_observations.shape)
    return batch._replace(
        next_observations=later,
        observations=observations.reshape(batch.observations.shape),
        actions=actions,
        target_policies=policies,
        legal_masks=masks,
    )

"""Board symmetries: the rotations and reflections under which a game's rules do not change.

A board game whose rules do not change under a rotation or reflection of the board (Go,
tic-tac-toe, connect four's mirror) lets every stored position stand for all its images. Self-play
tends to settle on a few openings; without the images, the positions an opponent reaches by a
mirrored opening are ones the network has barely seen. Sampling a random image of each training
position (observation, unroll actions, policy targets and masks; values and rewards are unchanged)
fixes that at no acting cost (``muzero_agents.augment`` applies them to training batches).

A symmetry is two index arrays, so it is cheap to apply to a whole batch and needs no knowledge
of the game beyond the layout of its observations and actions:

- ``obs_index``: the transformed observation is ``obs.reshape(-1)[obs_index]``;
- ``action_map``: action ``a`` of the position becomes action ``action_map[a]`` of its image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

GridTransform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Symmetry:
    obs_index: np.ndarray  # [prod(obs_shape)] int64
    action_map: np.ndarray  # [A] int64, a permutation
    obs_shape: tuple[int, ...] | None = None  # the observations it indexes (MuZero checks it)


def dihedral_transforms() -> list[GridTransform]:
    """The 8 rotations and reflections of a square grid (over its first two axes), identity first."""
    rotations = [lambda grid, k=k: np.rot90(grid, k, axes=(0, 1)) for k in range(4)]
    mirrored = [lambda grid, k=k: np.rot90(np.flip(grid, axis=1), k, axes=(0, 1)) for k in range(4)]
    return rotations + mirrored


def mirror_transforms() -> list[GridTransform]:
    """Identity and the left-right mirror (connect four: gravity breaks the other symmetries)."""
    return [lambda grid: grid, lambda grid: np.flip(grid, axis=1)]


def grid_symmetries(
    obs_shape: Sequence[int], action_grid: np.ndarray, n_actions: int, transforms: Sequence[GridTransform]
) -> list[Symmetry]:
    """Symmetries of a board whose observation is channels-last ``(H, W, C)``.

    :param action_grid: ``(H, W)`` int array, the action whose effect is at each cell of the
        observation grid (a cell action for Go and tic-tac-toe; the column for connect four).
        Actions absent from the grid (Go's pass) map to themselves.
    :param transforms: functions of an array over its first two axes (``dihedral_transforms()``).
    """
    obs_shape = tuple(int(n) for n in obs_shape)
    action_grid = np.asarray(action_grid, dtype=np.int64)
    if len(obs_shape) != 3 or obs_shape[:2] != action_grid.shape:
        raise ValueError(
            f"grid_symmetries needs (H, W, C) observations over the action grid's {action_grid.shape} "
            f"board; got observations of shape {obs_shape}."
        )
    obs_ids = np.arange(int(np.prod(obs_shape))).reshape(obs_shape)
    symmetries = []
    for transform in transforms:
        moved_ids, moved_actions = transform(obs_ids), transform(action_grid)
        if moved_ids.shape != obs_shape:
            raise ValueError("a 90-degree rotation needs a square board; use mirror_transforms()")
        action_map = np.arange(n_actions, dtype=np.int64)
        # the cell (i, j) of the image shows what was at the old cell whose action is moved[i, j]
        action_map[moved_actions.reshape(-1)] = action_grid.reshape(-1)
        if not np.array_equal(np.sort(action_map), np.arange(n_actions)):
            raise ValueError(
                "the action grid's transforms must permute the actions (each action on one cell set)"
            )
        symmetries.append(Symmetry(moved_ids.reshape(-1).copy(), action_map, obs_shape))
    return symmetries

"""The replay of a distributed run: one ``TrajectoryReplay`` shard per self-play actor.

Actors step at their own pace, while a ``TrajectoryReplay`` stores one row per vectorized step
of all its envs at once; so each actor's steps go to a shard of their own, in the learner's
process. Sampling is exactly that of one replay over all shards' steps: each position is drawn
with probability ``p_i ** alpha / sum over every shard``, and the importance weights use the
count of every shard's steps. A handle names its shard too (``local * shards + shard``), so the
learner and Reanalyze use this class as they use one ``TrajectoryReplay``.

A dead actor's shard keeps its steps; ``truncate_running_episodes(shard)`` ends the episodes its
envs left running, as truncations that bootstrap from their last stored value.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from muzero_agents.replay import ReplayWindow, TrajectoryReplay


class ShardedReplay:
    """One ``TrajectoryReplay`` per actor (``shards``), sampled as one.

    :param shards: the replays, one per actor, all of the same observation and window layout
    :param seed: of the rng that picks positions across shards
    :param priority_beta: the initial importance exponent (annealed by setting ``beta``)
    """

    def __init__(self, shards: list[TrajectoryReplay], seed: int | None, priority_beta: float) -> None:
        if not shards:
            raise ValueError("a sharded replay needs at least one shard")
        self.shards = list(shards)
        self.rng = np.random.default_rng(seed)
        self.beta = priority_beta

    @classmethod
    def build(cls, n_envs: list[int], seed: int | None, capacity: int, **layout) -> ShardedReplay:
        """``capacity`` split evenly between one shard per entry of ``n_envs`` (that actor's env count);
        ``layout``: ``TrajectoryReplay``'s other arguments."""
        count = len(n_envs)
        seeds = np.random.SeedSequence(seed).spawn(count + 1)
        shards = [
            TrajectoryReplay(
                capacity=max(capacity // count, envs), n_envs=envs, seed=_int_seed(seeds[i]), **layout
            )
            for i, envs in enumerate(n_envs)
        ]
        return cls(shards, _int_seed(seeds[-1]), layout.get("priority_beta", 1.0))

    @property
    def n_envs(self) -> int:
        """Envs over all shards."""
        return sum(shard.n_envs for shard in self.shards)

    def __len__(self) -> int:
        return sum(len(shard) for shard in self.shards)

    @property
    def transitions_added(self) -> int:
        return sum(shard.transitions_added for shard in self.shards)

    @property
    def num_episodes(self) -> int:
        return sum(shard.num_episodes for shard in self.shards)

    @property
    def num_finished_episodes(self) -> int:
        return sum(shard.num_finished_episodes for shard in self.shards)

    @property
    def has_legal_masks(self) -> bool:
        return any(shard.has_legal_masks for shard in self.shards)

    def add(self, shard: int, **record) -> None:
        """Store one vectorized step of actor ``shard`` (``TrajectoryReplay.add``'s keywords)."""
        self.shards[shard].add(**record)

    def truncate_running_episodes(self, shard: int | None = None) -> None:
        """End the running episodes of one shard (a restarted actor's), or of all of them."""
        for replay in self.shards if shard is None else [self.shards[shard]]:
            replay.truncate_running_episodes()

    # ------------------------------------------------------------------ handles
    def _encode(self, local: np.ndarray, shard: int) -> np.ndarray:
        return np.where(local >= 0, local * len(self.shards) + shard, -1)

    def _decode(self, handles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        handles = np.asarray(handles, dtype=np.int64)
        count = len(self.shards)
        return np.where(handles >= 0, handles // count, -1), np.where(handles >= 0, handles % count, 0)

    def _per_shard(self, handles: np.ndarray):
        """(shard, where in ``handles.ravel()``, its local handles) for each shard named."""
        local, shard = self._decode(np.asarray(handles).reshape(-1))
        for index in np.unique(shard):
            where = np.flatnonzero(shard == index)
            yield self.shards[int(index)], where, local[where]

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, next_observations: bool = False) -> ReplayWindow:
        """``TrajectoryReplay.sample`` over every shard's steps (see the module docstring)."""
        masses = np.array([_mass(shard) for shard in self.shards])
        total = float(masses.sum())
        if len(self) == 0 or total <= 0.0:
            raise ValueError(
                "the replay buffer holds no transitions yet: call learn() (or load_replay_buffer()) "
                "before train()"
            )
        counts = self.rng.multinomial(batch_size, masses / total)
        windows, leaf_masses = [], []
        for index, count in enumerate(counts):
            if count:
                window, mass = _draw(self.shards[index], self.rng.random(count), next_observations)
                windows.append(_with_handles(window, self._encode(window.handles, index)))
                leaf_masses.append(mass)
        probabilities = np.concatenate(leaf_masses) / total
        weights = (len(self) * probabilities) ** -self.beta
        window = _concatenate(windows)
        return _replace(window, weights=(weights / weights.max()).astype(np.float32))

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """``TrajectoryReplay.update_priorities``, each handle sent to its shard."""
        priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if np.asarray(indices).size != priorities.size:
            raise ValueError(
                f"indices and priorities must have the same length, got {np.shape(indices)} and "
                f"{priorities.shape}"
            )
        for shard, where, local in self._per_shard(indices):
            shard.update_priorities(local, priorities[where])

    # ------------------------------------------------------------------ read-only access
    def holds(self, handles: np.ndarray) -> np.ndarray:
        handles = np.asarray(handles, dtype=np.int64)
        held = np.zeros(handles.size, dtype=bool)
        for shard, where, local in self._per_shard(handles):
            held[where] = shard.holds(local)
        return held.reshape(handles.shape)

    def observations_at(self, handles: np.ndarray) -> np.ndarray:
        handles = np.asarray(handles, dtype=np.int64)
        first = self.shards[0]
        out = np.zeros((handles.size, *first.observation_shape), dtype=first.observation_dtype)
        for shard, where, local in self._per_shard(handles):
            out[where] = shard.observations_at(local)
        return out.reshape(*handles.shape, *first.observation_shape)

    def legal_masks_at(self, handles: np.ndarray) -> np.ndarray | None:
        if not self.has_legal_masks:
            return None
        handles = np.asarray(handles, dtype=np.int64)
        action_dim = self.shards[0].action_dim
        out = np.ones((handles.size, action_dim), dtype=bool)
        for shard, where, local in self._per_shard(handles):
            masks = shard.legal_masks_at(local)
            if masks is not None:
                out[where] = masks
        return out.reshape(*handles.shape, action_dim)  # (0, A) for no handles

    def final_observation(self, handle: int) -> np.ndarray | None:
        local, shard = self._decode(np.array([handle]))
        return self.shards[int(shard[0])].final_observation(int(local[0])) if local[0] >= 0 else None


# Sampling across shards needs each shard's total priority and the priorities of the drawn leaves,
# which TrajectoryReplay keeps in its sum tree; these two functions are the only readers of it.
def _mass(shard: TrajectoryReplay) -> float:
    return float(shard._tree.total) if len(shard) else 0.0


def _draw(
    shard: TrajectoryReplay, uniforms: np.ndarray, next_observations: bool
) -> tuple[ReplayWindow, np.ndarray]:
    """The windows at positions drawn by priority (``uniforms`` in [0, 1)), and their priority masses."""
    tree = shard._tree
    leaves = tree.find(uniforms * tree.total)
    rows, cols = leaves // shard.n_envs, leaves % shard.n_envs
    window = shard._window(rows, cols, np.ones(leaves.shape[0], dtype=np.float32), next_observations)
    return window, tree.get(leaves)


def _with_handles(window: ReplayWindow, handles: np.ndarray) -> ReplayWindow:
    return _replace(window, handles=handles)


def _replace(window: ReplayWindow, **changes) -> ReplayWindow:
    values = {field.name: getattr(window, field.name) for field in fields(ReplayWindow)}
    return ReplayWindow(**{**values, **changes})


def _concatenate(windows: list[ReplayWindow]) -> ReplayWindow:
    """One window of all ``windows``' samples; an optional array one shard lacks is filled in
    (legal masks: all legal; random cuts: none)."""
    if len(windows) == 1:
        return windows[0]
    joined = {}
    for field in fields(ReplayWindow):
        parts = [getattr(window, field.name) for window in windows]
        if all(part is None for part in parts):
            joined[field.name] = None
            continue
        if field.name == "legal_masks":
            parts = [np.ones(w.policies.shape, bool) if p is None else p for w, p in zip(windows, parts)]
        elif field.name == "random_cuts":
            parts = [np.zeros(w.handles.shape, bool) if p is None else p for w, p in zip(windows, parts)]
        joined[field.name] = np.concatenate(parts)
    return ReplayWindow(**joined)


def _int_seed(sequence: np.random.SeedSequence) -> int:
    return int(sequence.generate_state(1)[0])

"""Prioritized trajectory replay for MuZero: stores interleaved episodes from n_envs
environments and samples positions with K-step unrolled targets.

Layout: a ring of ``capacity // n_envs`` rows, one row per vectorized env step, one column per
env. An episode of env ``e`` therefore occupies consecutive rows (modulo the ring) of column
``e``, so step ``t+k`` of a sampled position is simply ``k`` rows further down. When the write
pointer reaches a row, the episode whose first stored step lives there is evicted whole (its
later rows stop being sampleable); an episode longer than the ring instead loses its oldest step.
Evicting by row keeps the oldest-started episodes leaving first (FIFO); rows of an evicted
episode's tail stay unused until overwritten, so ``len(buffer)`` can be below ``capacity``.

Episode ends: a true terminal is absorbing (value and reward targets 0 past the end, valid); a
truncation with a final value bootstraps from it; a running episode, or a truncation without a
final value, is treated as truncated at its last stored observation (bootstrapping from that
observation's root value) and targets past that point are masked.

Sampling is proportional to ``priority ** alpha`` through a sum tree, with importance weights
``(N P(i)) ** -beta`` divided by the largest weight in the batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import njit

from muzero_agents.targets import check_target_args, lambda_weights, windowed_value_targets

__all__ = ["ReplayBatch", "TrajectoryReplay"]

RefreshFn = Callable[..., tuple[np.ndarray, np.ndarray | None]]

# how an episode ended, stored per slot
_RUNNING, _TERMINATED, _TRUNCATED, _TRUNCATED_NO_VALUE = 0, 1, 2, 3
_MIN_PRIORITY = 1e-8  # floor so that no stored transition becomes unsampleable


class ReplayBatch(NamedTuple):
    """A batch of sampled positions with K-step unroll targets (see TrajectoryReplay.sample)."""

    observations: np.ndarray  # [B, *obs_shape] stored dtype
    actions: np.ndarray  # [B, K] int64; random action past the episode end
    target_values: np.ndarray  # [B, K+1] float32
    target_rewards: np.ndarray  # [B, K+1] float32; index 0 unused (0)
    target_policies: np.ndarray  # [B, K+1, A] float32; uniform past the end
    value_mask: np.ndarray  # [B, K+1] float32
    reward_mask: np.ndarray  # [B, K+1] float32; index 0 always 0
    policy_mask: np.ndarray  # [B, K+1] float32; 1 only inside the trajectory
    weights: np.ndarray  # [B] float32 importance weights, max 1
    indices: np.ndarray  # [B] int64 handles for update_priorities
    legal_masks: np.ndarray | None = None  # [B, K+1, A] bool if masks were stored; True past end
    # [B] bool, False for the newest step of a running episode: its k=0 value target is its own
    # bootstrap value, so |v - z| says nothing yet and must not set its priority (a value-only
    # Reanalyze would make it ~0 and the step would never be drawn again)
    priority_mask: np.ndarray | None = None
    # sample(next_observations=True) only: the stored observations at t+1..t+K [B, K, *obs] and
    # whether each is the episode's (1) or past its end (0, whatever the ring holds there)
    next_observations: np.ndarray | None = None
    next_observation_mask: np.ndarray | None = None


class _PendingRefresh(NamedTuple):
    """A Reanalyze refresh's inputs, copied out of the buffer, and where its outputs go."""

    observations: np.ndarray  # [M, *obs]: distinct stored observations, then final observations
    legal: np.ndarray | None  # [M, A] for refresh_fn(observations, legal), else None
    b_s: np.ndarray  # (sample, window index) pairs of the stored values read ...
    j_s: np.ndarray
    slot_pos: np.ndarray  # ... and their rows among ``observations``
    b_f: np.ndarray  # samples whose truncated episode's final value is read ...
    final_pos: np.ndarray  # ... and its row among ``observations``
    policies: bool  # refresh_policies


@njit(cache=True)
def _tree_set(tree: np.ndarray, first_leaf: int, leaves: np.ndarray, values: np.ndarray) -> None:
    """Write leaf values and refresh their ancestors' sums (duplicates: the last write wins)."""
    for i in range(leaves.size):
        node = leaves[i] + first_leaf
        tree[node] = values[i]
        node //= 2
        while node >= 1:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node //= 2


@njit(cache=True)
def _tree_find(tree: np.ndarray, first_leaf: int, mass: np.ndarray) -> np.ndarray:
    """For each mass in [0, total), the leaf whose cumulative-sum interval holds it."""
    out = np.empty(mass.size, dtype=np.int64)
    for i in range(mass.size):
        node, rest = 1, mass[i]
        while node < first_leaf:
            left = tree[2 * node]
            # rounding can push `rest` past the left sum of a node whose right side is empty
            if rest >= left and tree[2 * node + 1] > 0.0:
                rest -= left
                node = 2 * node + 1
            else:
                node = 2 * node
        out[i] = node - first_leaf
    return out


class _SumTree:
    """Binary sum tree over ``size`` leaves: O(log N) update and proportional search."""

    def __init__(self, size: int, leaf_values: np.ndarray | None = None) -> None:
        self.leaves = 1 << max(0, int(size - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)
        if leaf_values is not None:  # build bottom-up in one pass
            self.tree[self.leaves : self.leaves + leaf_values.size] = leaf_values
            width = self.leaves // 2
            while width >= 1:
                children = self.tree[2 * width : 4 * width]
                self.tree[width : 2 * width] = children[0::2] + children[1::2]
                width //= 2

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, leaf: np.ndarray) -> np.ndarray:
        return self.tree[leaf + self.leaves]

    def set(self, leaf: np.ndarray, value: np.ndarray) -> None:
        leaf = np.ascontiguousarray(leaf, dtype=np.int64).reshape(-1)
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), leaf.shape)
        _tree_set(self.tree, self.leaves, leaf, np.ascontiguousarray(value))

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaves whose cumulative-sum interval contains ``mass``; never a zero-priority leaf."""
        return _tree_find(self.tree, self.leaves, np.ascontiguousarray(mass, dtype=np.float64))


def _next_marked(marks: np.ndarray) -> np.ndarray:
    """[B, width]: per index j, the first marked index >= j (width where none is)."""
    width = marks.shape[1]
    marked = np.where(marks, np.arange(width)[None, :], width)
    return np.minimum.accumulate(marked[:, ::-1], axis=1)[:, ::-1]


class TrajectoryReplay:
    """Prioritized replay of whole trajectories from ``n_envs`` interleaved environments.

    capacity: transitions kept (rounded down to a multiple of ``n_envs``).
    unroll_steps: K, the number of unrolled model steps per sampled position.
    td_steps, discount, td_lambda: value targets (see ``muzero_agents.targets``);
    two_player: rewards/values alternate sign per ply, the discount used is ``-discount``.
    priority_alpha: P(i) ~ p_i^alpha (0 = uniform); priority_beta: initial ``beta`` of the
    importance weights (a settable attribute, for annealing).
    policy_dtype: storage dtype of search policies (float16 halves memory for large actions).
    cut_returns_at_exploration: a value target follows the played moves after its position only
    while each was the greedy choice (its action has the largest stored policy probability; a tie
    counts as greedy, and float16 rounding can only make ties); at the first later move that was
    not, the return stops and bootstraps from the value there, as Watkins's Q(lambda) cuts its
    traces. The position's own move is always followed (the value head learns V, not Q).
    Moves ``add`` marks as random (``random_moves``: self-play's random openings) cut returns
    whatever this flag says, where the search would not have played them (not the argmax of their
    stored policy), and at their own position too: that position's target is its own (stored or
    refreshed) value, so no value target averages over random moves.
    """

    def __init__(
        self,
        capacity: int,
        n_envs: int,
        observation_shape: tuple,
        observation_dtype,
        action_dim: int,
        unroll_steps: int,
        td_steps: int,
        discount: float,
        td_lambda: float = 1.0,
        two_player: bool = False,
        priority_alpha: float = 1.0,
        priority_beta: float = 1.0,
        seed: int | None = None,
        policy_dtype=np.float32,
        cut_returns_at_exploration: bool = False,
    ) -> None:
        for name, value, low in (
            ("capacity", capacity, 1),
            ("n_envs", n_envs, 1),
            ("action_dim", action_dim, 1),
            ("unroll_steps", unroll_steps, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if capacity < n_envs:
            raise ValueError(
                f"capacity ({capacity}) must be at least n_envs ({n_envs}): one row per env step"
            )
        check_target_args(discount, td_steps, td_lambda)
        if discount < 0:
            raise ValueError("discount must be >= 0; pass two_player=True for alternating signs")
        if not np.isfinite(priority_alpha) or priority_alpha < 0:
            raise ValueError(f"priority_alpha must be >= 0, got {priority_alpha!r}")
        self.n_envs = int(n_envs)
        self.rows = int(capacity) // self.n_envs
        self.capacity = self.rows * self.n_envs
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.observation_dtype = np.dtype(observation_dtype)
        self.action_dim = int(action_dim)
        self.unroll_steps = int(unroll_steps)
        self.td_steps = int(td_steps)
        self.discount = float(discount)
        self.td_lambda = float(td_lambda)
        self.two_player = bool(two_player)
        self.alpha = float(priority_alpha)
        self.beta = priority_beta
        self.policy_dtype = np.dtype(policy_dtype)
        if not isinstance(cut_returns_at_exploration, (bool, np.bool_)):
            raise ValueError(f"cut_returns_at_exploration must be a bool, got {cut_returns_at_exploration!r}")
        self.cut_returns_at_exploration = bool(cut_returns_at_exploration)
        self.rng = np.random.default_rng(seed)
        self._allocate()

    # ------------------------------------------------------------------ storage
    def _allocate(self) -> None:
        shape = (self.rows, self.n_envs)
        self._obs = np.zeros(shape + self.observation_shape, dtype=self.observation_dtype)
        self._actions = np.zeros(shape, dtype=np.int64)
        self._rewards = np.zeros(shape, dtype=np.float32)
        self._values = np.zeros(shape, dtype=np.float32)
        self._policies = np.zeros(shape + (self.action_dim,), dtype=self.policy_dtype)
        self._legal: np.ndarray | None = None  # allocated at the first add that gives masks
        # a random move off its stored policy's argmax; allocated at the first add that marks one
        self._random_move: np.ndarray | None = None
        self._step = np.zeros(shape, dtype=np.int64)  # t within the episode
        self._ep_len = np.full(shape, -1, dtype=np.int64)  # T once finished, -1 while running
        self._ep_kind = np.zeros(shape, dtype=np.int8)
        self._final_value = np.zeros(shape, dtype=np.float32)  # at an episode's last slot
        self._valid = np.zeros(shape, dtype=bool)
        self._uid = np.full(shape, -1, dtype=np.int64)
        self._final_obs: dict[int, np.ndarray] = {}  # last slot -> obs after it (truncations)
        self._tree = _SumTree(self.capacity)
        self._max_priority = 1.0
        self._row = 0  # next row to write
        self._rows_written = 0
        self._num_valid = 0
        self._num_finished = 0
        self._cur_len = np.zeros(self.n_envs, dtype=np.int64)  # steps so far, running episode
        self._cur_first = np.zeros(self.n_envs, dtype=np.int64)  # its first stored step
        self._cur_start = np.zeros(self.n_envs, dtype=np.int64)  # row of that step

    @property
    def beta(self) -> float:
        """Importance-sampling exponent; set it to anneal (0 = no correction, 1 = full)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {value!r}")
        self._beta = float(value)

    def __len__(self) -> int:
        return int(self._num_valid)

    @property
    def num_episodes(self) -> int:
        """Episodes with at least one stored transition, the running ones included."""
        running = int(np.count_nonzero(self._cur_len > self._cur_first))
        return self._num_finished + running

    @property
    def has_legal_masks(self) -> bool:
        """True once masks were given to ``add`` (board games); Reanalyze should then use them."""
        return self._legal is not None

    @property
    def num_finished_episodes(self) -> int:
        """Stored episodes that have ended (terminated or truncated)."""
        return self._num_finished

    # ------------------------------------------------------------------ add
    def add(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        root_values: np.ndarray,
        search_policies: np.ndarray,
        dones: np.ndarray,
        terminated: np.ndarray,
        final_observations: dict | None = None,
        final_values: dict | None = None,
        legal_masks: np.ndarray | None = None,
        random_moves: np.ndarray | None = None,
    ) -> None:
        """Store one vectorized env step (one transition per env).

        observations [n_envs, *obs] are those the actions were chosen at; root_values and
        search_policies come from the search there. dones: the episode ended after this step;
        terminated: it ended in a true terminal (else truncation). final_observations /
        final_values map env index -> observation after a done step / its value estimate; a
        truncation without a final value bootstraps from its last stored root value instead.
        legal_masks [n_envs, A] bool: optional, give them always or never.
        random_moves [n_envs] bool: optional, which actions were random rather than the search's
        (value returns stop at them, and at their own position, unless the search would have
        played them too).
        """
        n, a = self.n_envs, self.action_dim
        obs = self._check_array("observations", observations, (n, *self.observation_shape))
        self._check_obs_dtype(obs)
        acts = self._check_array("actions", actions, (n,))
        if not np.issubdtype(acts.dtype, np.integer) or acts.min() < 0 or acts.max() >= a:
            raise ValueError(f"actions must be integers in [0, {a}), got {acts!r}")
        rews = self._check_array("rewards", rewards, (n,)).astype(np.float32)
        vals = self._check_array("root_values", root_values, (n,)).astype(np.float32)
        pols = self._check_array("search_policies", search_policies, (n, a))
        done = self._check_array("dones", dones, (n,)).astype(bool)
        term = self._check_array("terminated", terminated, (n,)).astype(bool) & done
        if not (np.isfinite(rews).all() and np.isfinite(vals).all() and np.isfinite(pols).all()):
            raise ValueError("rewards, root_values and search_policies must be finite")
        masks = self._check_legal(legal_masks)
        randoms = (
            None
            if random_moves is None
            else self._check_array("random_moves", random_moves, (n,)).astype(bool)
        )
        finals_obs = self._check_finals(final_observations, done, "final_observations")
        finals_val = self._check_finals(final_values, done, "final_values")

        row = self._row
        self._evict_row(row)
        cols = np.arange(n)
        starting = self._cur_len == self._cur_first
        self._cur_start[starting] = row
        self._obs[row] = obs
        self._actions[row] = acts
        self._rewards[row] = rews
        self._values[row] = vals
        self._policies[row] = pols
        if masks is not None:
            self._legal[row] = masks
        if randoms is not None and randoms.any() and self._random_move is None:
            self._random_move = np.zeros((self.rows, self.n_envs), dtype=bool)
        if self._random_move is not None:
            self._random_move[row] = (
                False if randoms is None else randoms & self._off_greedy(row, slice(None))
            )
        self._step[row] = self._cur_len
        self._ep_len[row] = -1
        self._ep_kind[row] = _RUNNING
        self._valid[row] = True
        self._uid[row] = self._rows_written * n + cols
        self._tree.set(row * n + cols, np.full(n, self._max_priority**self.alpha))
        self._num_valid += n
        self._cur_len += 1
        for env in np.flatnonzero(done):
            self._finish_episode(int(env), row, bool(term[env]), finals_obs, finals_val)
        self._row = (row + 1) % self.rows
        self._rows_written += 1

    def _check_array(self, name: str, value, shape: tuple) -> np.ndarray:
        array = np.asarray(value)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (n_envs first), got {array.shape}")
        return array

    def _check_obs_dtype(self, obs: np.ndarray) -> None:
        """Refuse lossy casts: floats into an integer buffer, integers out of its range."""
        target = self.observation_dtype
        if np.can_cast(obs.dtype, target, casting="same_kind"):
            return
        integral = obs.dtype.kind in "biu" and target.kind in "iu"
        if integral and obs.size and (obs.min() < np.iinfo(target).min or obs.max() > np.iinfo(target).max):
            integral = False
        if not integral:
            raise TypeError(
                f"observations have dtype {obs.dtype}, which does not fit the buffer's "
                f"{target}; convert them or build the buffer with observation_dtype={obs.dtype}"
            )

    def _check_legal(self, legal_masks) -> np.ndarray | None:
        if legal_masks is None:
            if self._legal is not None:
                raise ValueError("legal_masks were given before: give them at every add")
            return None
        masks = self._check_array("legal_masks", legal_masks, (self.n_envs, self.action_dim))
        if self._legal is None:
            if self._rows_written > 0:
                raise ValueError("legal_masks must be given from the first add on, or never")
            self._legal = np.ones((self.rows, self.n_envs, self.action_dim), dtype=bool)
        return masks.astype(bool)

    def _check_finals(self, finals: dict | None, done: np.ndarray, name: str) -> dict:
        """Validate a {env index: value} dict; observations are shaped and cast, values floats."""
        checked = {}
        for env, value in ({} if finals is None else dict(finals)).items():
            if not 0 <= int(env) < self.n_envs or not done[int(env)]:
                raise ValueError(f"{name} has key {env!r}, which is not the index of a done env")
            if name == "final_values":
                value = np.asarray(value, dtype=np.float64)
                if value.size != 1 or not np.isfinite(value).all():
                    raise ValueError(f"final_values[{env}] must be one finite number")
                checked[int(env)] = float(value.reshape(-1)[0])
            else:
                value = self._check_array(f"{name}[{env}]", value, self.observation_shape)
                self._check_obs_dtype(value)
                checked[int(env)] = value.astype(self.observation_dtype)
        return checked

    def _finish_episode(self, env: int, row: int, terminal: bool, obs: dict, vals: dict) -> None:
        count = int(self._cur_len[env] - self._cur_first[env])
        rows = (self._cur_start[env] + np.arange(count)) % self.rows
        if terminal:
            kind = _TERMINATED
        elif env in vals:
            kind = _TRUNCATED
            self._final_value[row, env] = vals[env]
            if env in obs:  # kept for Reanalyze, which may refresh the bootstrap value
                self._final_obs[row * self.n_envs + env] = obs[env]
        else:
            kind = _TRUNCATED_NO_VALUE
        self._ep_len[rows, env] = self._cur_len[env]
        self._ep_kind[rows, env] = kind
        self._num_finished += 1
        self._cur_len[env] = 0
        self._cur_first[env] = 0

    def truncate_running_episodes(self) -> None:
        """End every running episode as a truncation without a final value.

        Called when the envs were reset outside the normal flow (a new ``learn`` that resets, a
        loaded buffer): the stored steps stay sampleable and bootstrap from their last value.
        """
        for env in np.flatnonzero(self._cur_len > self._cur_first):
            self._finish_episode(int(env), -1, terminal=False, obs={}, vals={})
        self._cur_len[:] = 0
        self._cur_first[:] = 0

    def _evict_row(self, row: int) -> None:
        """Free ``row`` before it is overwritten: evict whole finished episodes starting there."""
        for env in np.flatnonzero(self._valid[row]):
            if self._ep_len[row, env] < 0:  # the running episode wrapped around: drop its head
                self._valid[row, env] = False
                self._num_valid -= 1
                self._cur_first[env] += 1
                self._cur_start[env] = (row + 1) % self.rows
                continue
            count = int(self._ep_len[row, env] - self._step[row, env])
            rows = (row + np.arange(count)) % self.rows
            self._valid[rows, env] = False
            self._tree.set(rows * self.n_envs + env, np.zeros(count))
            self._final_obs.pop(int(rows[-1]) * self.n_envs + int(env), None)
            self._num_valid -= count
            self._num_finished -= 1

    # ------------------------------------------------------------------ priorities
    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Set new priorities for sampled handles; handles of evicted transitions are ignored."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        priorities = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if indices.shape != priorities.shape:
            raise ValueError(
                f"indices and priorities must have the same length, got {indices.shape} "
                f"and {priorities.shape}"
            )
        if not np.isfinite(priorities).all() or (priorities < 0).any():
            raise ValueError("priorities must be finite and >= 0")
        rows = (indices // self.n_envs) % self.rows
        cols = indices % self.n_envs
        live = (indices >= 0) & (self._uid[rows, cols] == indices) & self._valid[rows, cols]
        priorities = np.maximum(priorities, _MIN_PRIORITY)
        if live.any():
            self._tree.set(rows[live] * self.n_envs + cols[live], priorities[live] ** self.alpha)
            self._max_priority = max(self._max_priority, float(priorities[live].max()))

    # ------------------------------------------------------------------ sample
    def sample(
        self,
        batch_size: int,
        refresh_fn: RefreshFn | None = None,
        refresh_fraction: float = 0.0,
        refresh_with_masks: bool = False,
        refresh_policies: bool = True,
        lock: contextlib.AbstractContextManager | None = None,
        next_observations: bool = False,
    ) -> ReplayBatch:
        """Sample positions by priority and build their K-step unroll targets.

        refresh_fn (Reanalyze): ``callable(observations [M, *obs]) -> (values [M], policies
        [M, A])``. For the first ``round(refresh_fraction * batch_size)`` samples, every stored
        root value and search policy that their targets read (and the final value of a
        truncated episode, when its final observation was stored) is replaced by refresh_fn's
        output, each distinct observation evaluated once; refresh_fn may return ``None`` for the
        policies to refresh values only (stored policies kept). The buffer itself is not changed:
        stored values stay the acting-time search results. refresh_with_masks: call
        ``refresh_fn(observations, legal_masks [M, A] bool)`` instead (all True where no mask was
        stored, e.g. for final observations), for searches that need the legal moves.
        refresh_policies=False: refresh values only and evaluate only the observations whose
        values the targets read (not every unroll step's, which the policy targets would need;
        whole-game value targets of board games read almost none); policies refresh_fn returns
        are ignored. Returning ``None`` policies with the default True also keeps the stored
        policies but still evaluates every unroll step.

        ``lock`` (held while reading the buffer, released while refresh_fn runs) lets another
        thread ``add`` during a Reanalyze: everything the batch needs is copied out first.

        ``next_observations``: also return the stored observations of the K unrolled steps, for
        EfficientZero's consistency loss (the observation after an episode's last move is not
        stored, so it is masked like every step past the end).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not 0.0 <= refresh_fraction <= 1.0:
            raise ValueError(f"refresh_fraction must lie in [0, 1], got {refresh_fraction!r}")
        if refresh_fraction > 0 and refresh_fn is None:
            raise ValueError("refresh_fraction > 0 needs a refresh_fn")
        guard = contextlib.nullcontext() if lock is None else lock
        count = round(refresh_fraction * batch_size) if refresh_fn is not None else 0
        with guard:
            if self._num_valid == 0:
                raise ValueError("the replay buffer is empty: add transitions before sampling")
            total = self._tree.total
            leaves = self._tree.find(self.rng.random(batch_size) * total)
            rows, cols = leaves // self.n_envs, leaves % self.n_envs
            probs = self._tree.get(leaves) / total
            weights = (self._num_valid * probs) ** -self.beta
            weights = (weights / weights.max()).astype(np.float32)
            window = self._window(rows, cols)
            if next_observations:
                window["next_observations"] = self._next_observations(window)
            pending = (
                self._refresh_inputs(window, count, refresh_with_masks, refresh_policies) if count else None
            )
        if pending is not None and pending.observations.shape[0] > 0:
            args = (pending.observations,) if pending.legal is None else (pending.observations, pending.legal)
            self._apply_refresh(window, pending, *refresh_fn(*args))
        return self._build_batch(window, weights)

    def _window(self, rows: np.ndarray, cols: np.ndarray) -> dict:
        """Gather the stored data from each sampled position to K + n steps later."""
        k, n = self.unroll_steps, self.td_steps
        width = k + n + 1
        wrows = (rows[:, None] + np.arange(width)[None, :]) % self.rows
        wcols = np.broadcast_to(cols[:, None], wrows.shape)
        ep_len = self._ep_len[rows, cols]
        running = ep_len < 0
        length = np.where(running, self._cur_len[cols], ep_len)
        kind = np.where(running, _RUNNING, self._ep_kind[rows, cols])
        left = length - self._step[rows, cols]  # transitions from t to the episode end
        inside = np.arange(width)[None, :] < left[:, None]
        values = np.where(inside, self._values[wrows, wcols], 0.0).astype(np.float64)
        last_row = (rows + left - 1) % self.rows
        # value trajectory: running / no final value -> truncated one step earlier
        value_left = np.where((kind == _TERMINATED) | (kind == _TRUNCATED), left, left - 1)
        truncated = kind == _TRUNCATED
        at_end = np.flatnonzero(truncated & (left < width))
        values[at_end, left[at_end]] = self._final_value[last_row[at_end], cols[at_end]]
        return {
            "wrows": wrows,
            "wcols": wcols,
            "cols": cols,
            "kind": kind,
            "left": left,
            "value_left": value_left,
            "last_row": last_row,
            "inside": inside,
            "rewards": np.where(inside, self._rewards[wrows, wcols], 0.0),
            "values": values,
            "policies": self._policies[wrows[:, : k + 1], wcols[:, : k + 1]].astype(np.float32),
            "exploratory": self._exploratory(wrows, wcols, inside),
            "random_cuts": self._random_cuts(wrows, wcols, inside),
            # copied now, so the batch is whole even if add() overwrites these rows meanwhile
            "observations": self._obs[rows, cols],
            "actions": self._actions[wrows[:, :k], wcols[:, :k]],
            "legal": None if self._legal is None else self._legal[wrows[:, : k + 1], wcols[:, : k + 1]],
            "uid": self._uid[rows, cols],
            # drawn now, under the lock, for the unroll steps past an episode's end
            "random_actions": self.rng.integers(0, self.action_dim, size=(rows.shape[0], k)),
        }

    def _next_observations(self, window: dict) -> np.ndarray:
        """[B, K, *obs]: the stored observations one to K steps after each sampled position."""
        k = self.unroll_steps
        return self._obs[window["wrows"][:, 1 : k + 1], window["wcols"][:, 1 : k + 1]]

    def _off_greedy(self, rows, cols) -> np.ndarray:
        """The stored moves at (rows, cols) were not the argmax of their stored search policy
        (a tie counts as greedy, and float16 rounding can only make ties)."""
        policies = self._policies[rows, cols]
        played = np.take_along_axis(policies, self._actions[rows, cols][..., None], axis=-1)[..., 0]
        return played < policies.max(axis=-1)

    def _exploratory(self, wrows: np.ndarray, wcols: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
        """[B, width]: the stored move was not the argmax of its stored search policy (None if unused)."""
        if not self.cut_returns_at_exploration:
            return None
        return inside & self._off_greedy(wrows, wcols)

    def _random_cuts(self, wrows: np.ndarray, wcols: np.ndarray, inside: np.ndarray) -> np.ndarray | None:
        """[B, width]: a random move the search would not have played (None if none is stored)."""
        if self._random_move is None:
            return None
        return inside & self._random_move[wrows, wcols]

    def _unroll_positions(self, value_left: np.ndarray) -> tuple:
        """Per (sample, k): transitions left in the value trajectory and the window indices."""
        k, n = self.unroll_steps, self.td_steps
        steps = np.arange(k + 1)
        remaining = value_left[:, None] - steps[None, :]  # [B, K+1]
        offsets = steps[:, None] + np.arange(n + 1)[None, :]  # [K+1, n+1]
        return remaining, offsets

    def _return_horizons(self, window: dict, count: int | None = None) -> tuple:
        """Per (sample, k) of the first ``count`` samples: steps its value target's return runs
        before bootstrapping, and whether it ends in the true terminal (no bootstrap).

        Without cuts that is the value trajectory's end; with ``cut_returns_at_exploration`` a
        return also stops at the first exploratory move after its position (an exploratory move
        at the position itself is its own action and is followed). A random move cuts at its own
        position too (0 steps: the target is the value there).
        """
        value_left = window["value_left"][:count]
        remaining, _ = self._unroll_positions(value_left)
        terminated = np.broadcast_to((window["kind"][:count] == _TERMINATED)[:, None], remaining.shape)
        k = self.unroll_steps
        positions = np.arange(k + 1)[None, :]
        until_cut = np.full(remaining.shape, np.iinfo(np.int64).max)
        if window["exploratory"] is not None:  # later moves only (width >= K + 2)
            until_cut = _next_marked(window["exploratory"][:count])[:, 1 : k + 2] - positions
        if window["random_cuts"] is not None:  # the position's own move too
            own_or_later = _next_marked(window["random_cuts"][:count])[:, : k + 1] - positions
            until_cut = np.minimum(until_cut, own_or_later)
        stops_early = until_cut < remaining
        return np.where(stops_early, until_cut, remaining), terminated & ~stops_early

    def _refresh_reads(self, window: dict, count: int, policies: bool) -> tuple:
        """Which stored observations the first ``count`` samples' targets read.

        ``policies``: the policy targets (every unroll step inside the episode) are refreshed too.

        Returns (sample, window index) pairs of stored steps, their flat slots, and the samples
        whose truncated episode's final observation (kept in ``_final_obs``) is read, with keys.
        """
        k, n = self.unroll_steps, self.td_steps
        kind, left = window["kind"][:count], window["left"][:count]
        inside = window["inside"][:count]
        remaining, _ = self._return_horizons(window, count)
        horizons = np.arange(1, n + 1)[lambda_weights(n, self.td_lambda) > 0]
        # window index of every value a target reads: k + min(m, remaining), m with weight > 0
        reach = np.clip(np.minimum(horizons[None, None, :], remaining[:, :, None]), 0, None)
        index = np.arange(k + 1)[None, :, None] + reach
        read = (remaining >= 0)[:, :, None] & ~(
            (kind == _TERMINATED)[:, None, None] & (index >= left[:, None, None])
        )
        needs_value = np.zeros(inside.shape, dtype=bool)
        sample = np.broadcast_to(np.arange(count)[:, None, None], index.shape)
        needs_value[sample[read], index[read]] = True
        needs = needs_value.copy()
        if policies:
            needs[:, : k + 1] |= inside[:, : k + 1]  # every policy target inside the episode
        b_s, j_s = np.nonzero(needs & inside)
        slots = window["wrows"][b_s, j_s] * self.n_envs + window["wcols"][b_s, j_s]
        b_f = np.flatnonzero((kind == _TRUNCATED) & (left < inside.shape[1]))
        b_f = b_f[needs_value[b_f, left[b_f]]]
        keys = window["last_row"][b_f] * self.n_envs + window["cols"][b_f]
        kept = np.array([int(key) in self._final_obs for key in keys], dtype=bool)
        return b_s, j_s, slots, b_f[kept], keys[kept]

    def _refresh_inputs(self, window: dict, count: int, masks: bool, policies: bool) -> _PendingRefresh:
        """Copy out the observations (and legal masks) the first ``count`` samples' targets read."""
        b_s, j_s, slots, b_f, keys = self._refresh_reads(window, count, policies)
        unique_slots, slot_pos = np.unique(slots, return_inverse=True)
        unique_keys, key_pos = np.unique(keys, return_inverse=True)
        obs = self._obs.reshape((-1, *self.observation_shape))[unique_slots]
        if unique_keys.size:
            finals = np.stack([self._final_obs[int(key)] for key in unique_keys])
            obs = np.concatenate([obs, finals])
        legal = None
        if masks:  # final observations have no stored mask: all legal
            legal = np.ones((obs.shape[0], self.action_dim), dtype=bool)
            if self._legal is not None:
                legal[: unique_slots.size] = self._legal.reshape(-1, self.action_dim)[unique_slots]
        return _PendingRefresh(obs, legal, b_s, j_s, slot_pos, b_f, unique_slots.size + key_pos, policies)

    def _apply_refresh(self, window: dict, pending: _PendingRefresh, new_values, new_policies) -> None:
        """Replace the window's stored values/policies with refresh_fn's outputs."""
        new_values = np.asarray(new_values, dtype=np.float64).reshape(-1)
        size = pending.observations.shape[0]
        # a value-only refresh keeps the stored policies; with refresh_policies=False only some
        # unroll steps were evaluated, and replacing just theirs would mix fresh and stale targets
        keep_policies = new_policies is None or not pending.policies
        new_policies = (
            np.zeros((size, self.action_dim), np.float32)
            if keep_policies
            else np.asarray(new_policies, dtype=np.float32)
        )
        if new_values.shape != (size,) or new_policies.shape != (size, self.action_dim):
            raise ValueError(
                f"refresh_fn must return values [{size}] and policies [{size}, "
                f"{self.action_dim}], got {new_values.shape} and {new_policies.shape}"
            )
        b_s, j_s, slot_pos = pending.b_s, pending.j_s, pending.slot_pos
        window["values"][b_s, j_s] = new_values[slot_pos]
        in_unroll = (j_s <= self.unroll_steps) & (not keep_policies)
        window["policies"][b_s[in_unroll], j_s[in_unroll]] = new_policies[slot_pos[in_unroll]]
        window["values"][pending.b_f, window["left"][pending.b_f]] = new_values[pending.final_pos]

    def _build_batch(self, window: dict, weights: np.ndarray) -> ReplayBatch:
        """Targets from the window alone (neither the buffer nor its rng is read: see ``sample``'s lock)."""
        k, n, a = self.unroll_steps, self.td_steps, self.action_dim
        batch = weights.shape[0]
        kind, inside = window["kind"], window["inside"]
        terminated = kind == _TERMINATED
        remaining, offsets = self._unroll_positions(window["value_left"])
        horizons, ends_in_terminal = self._return_horizons(window)
        discount = -self.discount if self.two_player else self.discount
        targets = windowed_value_targets(
            window["rewards"][:, offsets[:, :n]].reshape(-1, n),
            window["values"][:, offsets].reshape(-1, n + 1),
            horizons.reshape(-1),
            ends_in_terminal.reshape(-1),
            discount,
            lambda_weights(n, self.td_lambda),
        ).reshape(batch, k + 1)
        value_mask = terminated[:, None] | (remaining >= 0)
        target_rewards = np.zeros((batch, k + 1), dtype=np.float32)
        target_rewards[:, 1:] = window["rewards"][:, :k]
        reward_mask = np.zeros((batch, k + 1), dtype=bool)
        reward_mask[:, 1:] = terminated[:, None] | inside[:, :k]
        policy_mask = inside[:, : k + 1]
        policies = np.where(policy_mask[:, :, None], window["policies"], np.float32(1.0 / a))
        actions = np.where(inside[:, :k], window["actions"], window["random_actions"])
        legal = window["legal"]
        if legal is not None:
            legal = np.where(policy_mask[:, :, None], legal, True)
        return ReplayBatch(
            observations=window["observations"],
            actions=actions.astype(np.int64),
            target_values=np.where(value_mask, targets, 0.0).astype(np.float32),
            target_rewards=target_rewards,
            target_policies=policies.astype(np.float32),
            value_mask=value_mask.astype(np.float32),
            reward_mask=reward_mask.astype(np.float32),
            policy_mask=policy_mask.astype(np.float32),
            weights=weights,
            indices=window["uid"],
            legal_masks=legal,
            priority_mask=~((kind == _RUNNING) & (window["value_left"] == 0)),
            next_observations=window.get("next_observations"),
            next_observation_mask=(
                None if "next_observations" not in window else inside[:, 1 : k + 1].astype(np.float32)
            ),
        )

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        """Pickle only the rows written so far while the ring has not wrapped yet."""
        state = self.__dict__.copy()
        used = min(self._rows_written, self.rows)
        for name in self._row_arrays():
            if state[name] is not None:
                state[name] = state[name][:used]  # a view: pickle writes only these rows
        state["_pickled_rows"] = used
        state["_tree"] = self._tree.get(np.arange(used * self.n_envs))  # leaves only
        return state

    def __setstate__(self, state: dict) -> None:
        used = state.pop("_pickled_rows")
        leaves = state.pop("_tree")
        state.setdefault("cut_returns_at_exploration", False)  # pickled before the option existed
        state.setdefault("_random_move", None)  # pickled before random openings existed
        self.__dict__.update(state)
        self._tree = _SumTree(self.capacity, leaves)
        for name in self._row_arrays():
            part = getattr(self, name)
            if part is None:
                continue
            shape = (self.rows,) + part.shape[1:]
            if name in ("_ep_len", "_uid", "_legal"):
                full = np.full(shape, True if name == "_legal" else -1, dtype=part.dtype)
            else:  # zeros: pages of unused rows are never touched (observations can be GBs)
                full = np.zeros(shape, dtype=part.dtype)
            full[:used] = part
            setattr(self, name, full)

    @staticmethod
    def _row_arrays() -> tuple:
        return (
            "_obs",
            "_actions",
            "_rewards",
            "_values",
            "_policies",
            "_legal",
            "_random_move",
            "_step",
            "_ep_len",
            "_ep_kind",
            "_final_value",
            "_valid",
            "_uid",
        )

"""Prioritized trajectory replay for MuZero: stores interleaved episodes from n_envs
environments and samples positions, each with the stored data its K-step unroll needs.

Layout: a ring of ``capacity // n_envs`` rows, one row per vectorized env step, one column per
env. An episode of env ``e`` therefore occupies consecutive rows (modulo the ring) of column
``e``, so step ``t+k`` of a sampled position is simply ``k`` rows further down. When the write
pointer reaches a row, the episode whose first stored step lives there is evicted whole (its
later rows stop being sampleable); an episode longer than the ring loses its oldest step at each
add while it runs, and the rest at the first add after it ends. Evicting by row keeps the
oldest-started episodes leaving first (FIFO); rows of an evicted episode's tail stay unused until
overwritten, so ``len(buffer)`` can be below ``capacity``. So once the ring is full, an episode's
later steps stay fewer adds than its first ones (step i of an episode stays ``rows - i`` adds):
episodes that are a large share of the ring see their last steps sampled less.

Episode ends (``ReplayWindow.episode_end``): a true terminal is absorbing; a truncation with a
final value bootstraps from it; a running episode, or a truncation without a final value, is
treated as truncated at its last stored observation. How these become targets is
``muzero_agents.targets``'s business: this module only stores and samples.

Sampling is proportional to ``priority ** alpha`` through a sum tree, with importance weights
``(N P(i)) ** -beta`` divided by the largest weight in the batch.

Every stored step has a handle, an int64 that names it until its row is overwritten: sampled
windows carry the handles of their steps, ``update_priorities`` takes them, and the read-only
accessors Reanalyze uses (``holds``, ``observations_at``, ``legal_masks_at``,
``final_observation``) address stored data by them.

Stacked frames (``frame_stack``): an observation made of the last S frames of a game (SB3's
VecFrameStack) shares S-1 of them with the step before it, so the ring stores only each step's
newest frame. A step whose older frames are not the previous step's newer ones (an episode's
first step, or a wrapper that does not shift the stack) is a keyframe: its older frames are kept
aside until its row is overwritten. So is the step at the oldest row, before the row behind it is
overwritten. Whole observations are rebuilt wherever they leave the replay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from muzero_agents.sum_tree import SumTree

__all__ = [
    "RUNNING",
    "TERMINATED",
    "TRUNCATED",
    "TRUNCATED_NO_VALUE",
    "ReplayWindow",
    "TrajectoryReplay",
]

# how an episode ended, stored per slot and given per sample in ReplayWindow.episode_end
RUNNING = 0  # still running: truncated at its last stored observation
TERMINATED = 1  # a true terminal: absorbing, no bootstrap
TRUNCATED = 2  # a time limit with a final value: bootstraps from it
TRUNCATED_NO_VALUE = 3  # a time limit without one: like RUNNING
_MIN_PRIORITY = 1e-8  # floor so that no stored transition becomes unsampleable
_MIN_MASS = 1e-300  # the same after the exponent (a large alpha would make small priorities 0)
_FORMAT_VERSION = 4  # of the pickled state; muzero-agents 0.1.0 wrote none
# 2: whole observations only (before frame_stack); 2 and 3: under SB3's VecNormalize, perhaps
# the wrapper's normalized data; 4: the env's original data there (normalization.py)
_READABLE_VERSIONS = (2, 3, 4)


@dataclass(frozen=True)
class ReplayWindow:
    """The stored data from each sampled position to K + n steps later, copied out of the ring.

    B is the batch size, K the unroll steps, n the TD steps, W = K + n + 1 the window width, A
    the action count. Window index ``j`` of sample ``b`` is step ``t + j`` of its episode, ``t``
    the sampled position. Arrays are copies: a later ``add`` cannot change them.

    observations: [B, *obs] stored dtype, the observation at each sampled position.
    actions: [B, K] int64, the stored actions at t..t+K-1; past the episode's end a uniformly
        random action (drawn by the replay's rng at sampling time).
    rewards: [B, W] float32, the stored rewards at t..t+W-1; 0 at and past the episode's end.
    values: [B, W] float64, the stored search root values at t..t+W-1; at index ``steps_left``
        the final value of an episode that ended ``TRUNCATED``; 0 elsewhere past the end.
    policies: [B, K+1, A] float32, the stored search policies at t..t+K (past the end: whatever
        the ring holds there, to be masked).
    episode_end: [B] int8, how each sample's episode ended (``RUNNING``, ``TERMINATED``,
        ``TRUNCATED``, ``TRUNCATED_NO_VALUE``), as known at sampling time.
    steps_left: [B] int64, T - t: stored transitions from the position to its episode's end
        (for a running episode, to its newest stored step included).
    handles: [B, W] int64, the handle of each window step (``indices`` is column 0); past the
        end the handle of whatever the ring holds there.
    weights: [B] float32, importance weights ``(N P(i)) ** -beta``, the largest 1.
    legal_masks: [B, K+1, A] bool, the stored legal masks at t..t+K (past the end: whatever the
        ring holds), or None when ``add`` was never given masks.
    random_cuts: [B, W] bool, the move at that step was random and the search would not have
        played it (inside the episode only), or None when no such move was ever stored.
    next_observations: [B, K, *obs], the stored observations at t+1..t+K (past the end: whatever
        the ring holds), when ``sample(next_observations=True)``; else None.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    values: np.ndarray
    policies: np.ndarray
    episode_end: np.ndarray
    steps_left: np.ndarray
    handles: np.ndarray
    weights: np.ndarray
    legal_masks: np.ndarray | None = None
    random_cuts: np.ndarray | None = None
    next_observations: np.ndarray | None = None

    @property
    def batch_size(self) -> int:
        """B, the number of sampled positions."""
        return int(self.handles.shape[0])

    @property
    def unroll_steps(self) -> int:
        """K, the unrolled model steps per position."""
        return int(self.actions.shape[1])

    @property
    def td_steps(self) -> int:
        """n, the TD steps the window covers past the last unroll step."""
        return int(self.handles.shape[1]) - self.unroll_steps - 1

    @property
    def indices(self) -> np.ndarray:
        """[B] int64 handles of the sampled positions, for ``update_priorities``."""
        return self.handles[:, 0]

    @property
    def inside(self) -> np.ndarray:
        """[B, W] bool: the window step lies inside its episode (before its end)."""
        return np.arange(self.handles.shape[1])[None, :] < self.steps_left[:, None]

    @property
    def value_steps_left(self) -> np.ndarray:
        """[B] int64: transitions left until the value trajectory's bootstrap (or terminal).

        ``steps_left`` when the episode terminated or was truncated with a final value; one
        fewer when it bootstraps from its last stored observation's value (running, or truncated
        without a final value), so that index holds the bootstrap value.
        """
        ends_with_value = (self.episode_end == TERMINATED) | (self.episode_end == TRUNCATED)
        return np.where(ends_with_value, self.steps_left, self.steps_left - 1)


class TrajectoryReplay:
    """Prioritized replay of whole trajectories from ``n_envs`` interleaved environments.

    capacity: transitions kept (rounded down to a multiple of ``n_envs``).
    n_envs: environments whose steps ``add`` receives together, one per column of the ring.
    observation_shape, observation_dtype: of one observation; stored in that dtype.
    action_dim: A, the number of discrete actions (policies and legal masks are [A]).
    unroll_steps: K, the unrolled model steps per sampled position.
    td_steps: n, the steps a value target may look ahead; a window is K + n + 1 steps wide.
    priority_alpha: P(i) ~ p_i^alpha (0 = uniform); priority_beta: initial ``beta`` of the
    importance weights (a settable attribute, for annealing).
    seed: of the rng that draws samples (and random actions past episode ends).
    policy_dtype: storage dtype of search policies (float16 halves memory for large actions).
    frame_stack: ``(S, axis)`` when each observation stacks the last S frames along ``axis`` of
    its shape, the newest last (SB3's VecFrameStack: ``(n_stack, 0)`` for channel-first images);
    the ring then stores one frame per step instead of S, and gives back the same observations.
    None stores observations whole.

    Moves ``add`` marks as random (``random_moves``: self-play's random openings) are flagged
    where the search would not have played them (not the argmax of their stored policy; a tie
    counts as the search's), for the targets to stop value returns there.
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
        priority_alpha: float = 1.0,
        priority_beta: float = 1.0,
        seed: int | None = None,
        policy_dtype=np.float32,
        frame_stack: tuple[int, int] | None = None,
    ) -> None:
        for name, value, low in (
            ("capacity", capacity, 1),
            ("n_envs", n_envs, 1),
            ("action_dim", action_dim, 1),
            ("unroll_steps", unroll_steps, 0),
            ("td_steps", td_steps, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if capacity < n_envs:
            raise ValueError(
                f"capacity (MuZero's buffer_size) {capacity} must be at least the number of envs "
                f"({n_envs}): the replay keeps one row per vectorized env step; raise buffer_size"
            )
        if not np.isfinite(priority_alpha) or priority_alpha < 0:
            raise ValueError(f"priority_alpha must be >= 0, got {priority_alpha!r}")
        self.n_envs = int(n_envs)
        self.rows = int(capacity) // self.n_envs
        self.capacity = self.rows * self.n_envs
        self.observation_shape = tuple(int(s) for s in observation_shape)
        self.observation_dtype = np.dtype(observation_dtype)
        self.frame_stack = _check_frame_stack(frame_stack, self.observation_shape)
        self.action_dim = int(action_dim)
        self.unroll_steps = int(unroll_steps)
        self.td_steps = int(td_steps)
        self.alpha = float(priority_alpha)
        self.beta = priority_beta
        self.policy_dtype = np.dtype(policy_dtype)
        self.rng = np.random.default_rng(seed)
        self._allocate()

    # ------------------------------------------------------------------ storage
    def _allocate(self) -> None:
        shape = (self.rows, self.n_envs)
        self._obs = np.zeros(shape + self._stored_shape(), dtype=self.observation_dtype)
        # frame_stack only: per slot, 1 + the index of its older frames in _key_frames (0: none,
        # not a keyframe); _key_frames grows on demand, its unused entries listed in _key_free
        self._key_slot = None if self.frame_stack is None else np.zeros(shape, dtype=np.int32)
        self._key_frames = None
        self._key_free: list[int] = []
        if self.frame_stack is not None:
            older = (0, self.frame_stack[0] - 1, *self._stored_shape())
            self._key_frames = np.zeros(older, dtype=self.observation_dtype)
        self._actions = np.zeros(shape, dtype=np.int64)
        self._rewards = np.zeros(shape, dtype=np.float32)
        self._values = np.zeros(shape, dtype=np.float32)
        self._policies = np.zeros(shape + (self.action_dim,), dtype=self.policy_dtype)
        # the illegal actions (True), allocated at the first add that gives masks; stored inverted so
        # that the unwritten rows are zeros, whose memory the system commits only once written
        self._illegal: np.ndarray | None = None
        # a random move off its stored policy's argmax; allocated at the first add that marks one
        self._random_move: np.ndarray | None = None
        self._step = np.zeros(shape, dtype=np.int64)  # t within the episode
        self._ep_len = np.full(shape, -1, dtype=np.int64)  # T once finished, -1 while running
        self._ep_kind = np.zeros(shape, dtype=np.int8)
        self._final_value = np.zeros(shape, dtype=np.float32)  # at an episode's last slot
        self._valid = np.zeros(shape, dtype=bool)
        self._uid = np.full(shape, -1, dtype=np.int64)  # the handle of the step stored there
        self._final_obs: dict[int, np.ndarray] = {}  # last slot -> obs after it (truncations)
        self._tree = SumTree(self.capacity)
        self._max_priority = 1.0
        self.may_hold_normalized_data = False  # True when loaded from a save before format 4
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
    def transitions_added(self) -> int:
        """Transitions ever stored, evicted ones included (``len`` counts the ones held now)."""
        return int(self._rows_written) * self.n_envs

    @property
    def num_episodes(self) -> int:
        """Episodes with at least one stored transition, the running ones included."""
        running = int(np.count_nonzero(self._cur_len > self._cur_first))
        return self._num_finished + running

    @property
    def has_legal_masks(self) -> bool:
        """True once masks were given to ``add`` (board games); Reanalyze should then use them."""
        return self._illegal is not None

    @property
    def num_finished_episodes(self) -> int:
        """Stored episodes that have ended (terminated or truncated)."""
        return self._num_finished

    def check_compatible(
        self,
        *,
        n_envs: int,
        observation_shape: tuple,
        observation_dtype,
        action_dim: int,
        unroll_steps: int,
        td_steps: int,
        frame_stack: tuple[int, int] | None = None,
        path=None,
    ) -> None:
        """Raise a ValueError when this buffer cannot feed a model with these settings.

        Names the first mismatched setting, the buffer's value, the model's value and the fix.
        ``frame_stack``: how the model's observations stack frames (see the constructor); a buffer
        stored with another layout is refused. ``path``: where the buffer was loaded from, for the
        message.
        """
        source = "the replay buffer" if path is None else f"the replay buffer in {path}"
        other_env = "load it into a model of the environment it was recorded in, or collect new data"
        rebuild = "build the model with {0}={1}, or collect new data"
        checks = (
            ("n_envs", self.n_envs, int(n_envs), "load it into a model whose env has {1} envs"),
            ("observation_shape", self.observation_shape, tuple(observation_shape), other_env),
            ("observation_dtype", self.observation_dtype, np.dtype(observation_dtype), other_env),
            ("action_dim", self.action_dim, int(action_dim), other_env),
            ("unroll_steps", self.unroll_steps, int(unroll_steps), rebuild),
            ("td_steps", self.td_steps, int(td_steps), rebuild),
            # read only once the shapes match: the layout is checked against the shape
            ("frame_stack", self.frame_stack, lambda: _check_frame_stack(frame_stack, observation_shape),
             "load it into a model whose env stacks frames the same way ({0}={1}), or collect new data"),
        )  # fmt: skip
        for name, mine, theirs, fix in checks:
            theirs = theirs() if callable(theirs) else theirs
            if mine != theirs:
                raise ValueError(
                    f"{source} was recorded with {name}={mine!r} but this model has "
                    f"{name}={theirs!r}; {fix.format(name, mine)}."
                )

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
        step = self._check_step(observations, actions, rewards, root_values, search_policies)
        done = self._check_array("dones", dones, (self.n_envs,)).astype(bool)
        term = self._check_array("terminated", terminated, (self.n_envs,)).astype(bool) & done
        masks = self._check_legal(legal_masks)
        randoms = (
            None
            if random_moves is None
            else self._check_array("random_moves", random_moves, (self.n_envs,)).astype(bool)
        )
        finals_obs = self._check_finals(final_observations, done, "final_observations")
        finals_val = self._check_finals(final_values, done, "final_values")
        row = self._row
        self._write_row(row, *step, masks, randoms)
        for env in np.flatnonzero(done):
            self._finish_episode(int(env), row, bool(term[env]), finals_obs, finals_val)
        self._row = (row + 1) % self.rows
        self._rows_written += 1

    def _check_step(self, observations, actions, rewards, root_values, search_policies) -> tuple:
        """Validate one step's per-env arrays; returns them in their storage dtypes."""
        n, a = self.n_envs, self.action_dim
        obs = self._check_array("observations", observations, (n, *self.observation_shape))
        self._check_obs_dtype(obs)
        acts = self._check_array("actions", actions, (n,))
        if not np.issubdtype(acts.dtype, np.integer) or acts.min() < 0 or acts.max() >= a:
            raise ValueError(f"actions must be integers in [0, {a}), got {acts!r}")
        rews = self._check_array("rewards", rewards, (n,)).astype(np.float32)
        vals = self._check_array("root_values", root_values, (n,)).astype(np.float32)
        pols = self._check_array("search_policies", search_policies, (n, a))
        if not (np.isfinite(rews).all() and np.isfinite(vals).all() and np.isfinite(pols).all()):
            raise ValueError("rewards, root_values and search_policies must be finite")
        return obs, acts, rews, vals, pols

    def _write_row(self, row, obs, acts, rews, vals, pols, masks, randoms) -> None:
        """Evict what starts at ``row``, then store one step per env there at the max priority."""
        n = self.n_envs
        self._evict_row(row)
        cols = np.arange(n)
        starting = self._cur_len == self._cur_first
        self._cur_start[starting] = row
        if self.frame_stack is None:
            self._obs[row] = obs
        else:
            self._store_frames(row, obs)
        self._actions[row] = acts
        self._rewards[row] = rews
        self._values[row] = vals
        self._policies[row] = pols
        if masks is not None:
            self._illegal[row] = ~masks
        if randoms is not None and randoms.any() and self._random_move is None:
            self._random_move = np.zeros((self.rows, self.n_envs), dtype=bool)
        if self._random_move is not None:
            self._random_move[row] = (
                False if randoms is None else randoms & self._off_greedy(row, slice(None))
            )
        self._step[row] = self._cur_len
        self._ep_len[row] = -1
        self._ep_kind[row] = RUNNING
        self._valid[row] = True
        self._uid[row] = self._rows_written * n + cols
        self._tree.set(row * n + cols, self._sampling_mass(np.full(n, self._max_priority)))
        self._num_valid += n
        self._cur_len += 1

    # ------------------------------------------------------------------ stacked frames
    def _stored_shape(self) -> tuple:
        """The shape of what the ring stores per step: one frame with frame_stack, else the observation."""
        if self.frame_stack is None:
            return self.observation_shape
        stack, axis = self.frame_stack
        shape = list(self.observation_shape)
        shape[axis] //= stack
        return tuple(shape)

    def _frames(self, observations: np.ndarray, lead: int) -> np.ndarray:
        """A view of observations [*lead dims, *obs] as [*lead dims, S, *frame], oldest frame first."""
        stack, axis = self.frame_stack
        at = lead + axis
        shape = observations.shape
        split = shape[:at] + (stack, shape[at] // stack) + shape[at + 1 :]
        return np.moveaxis(observations.reshape(split), at, lead)

    def _store_frames(self, row: int, obs: np.ndarray) -> None:
        """Write one step's newest frames to ``row``; keep the older frames of its keyframes."""
        cols = np.arange(self.n_envs)
        frames = self._frames(np.asarray(obs, dtype=self.observation_dtype), 1)
        behind = (row - 1) % self.rows
        if self.rows == 1:  # the previous step is in the row being overwritten
            key = np.ones(self.n_envs, dtype=bool)
        else:
            ahead = (row + 1) % self.rows
            if ahead < self._rows_written:  # the oldest row will lose the row behind it: pin it
                self._make_keys(ahead, np.flatnonzero(self._key_slot[ahead] == 0))
            key = self._cur_len == 0  # an episode's first step
            if not key.all():
                previous = self._frames(self._observations(np.full(self.n_envs, behind), cols), 1)
                key |= ~_same_bytes(frames[:, :-1], previous[:, 1:])
        self._free_keys(row)
        self._obs[row] = frames[:, -1]
        self._key_slot[row, key] = self._take_keys(frames[key, :-1])

    def _make_keys(self, row: int, cols: np.ndarray) -> None:
        """Make the steps stored at (row, cols) keyframes (their older frames read from the ring)."""
        if cols.size:
            older = self._frames(self._observations(np.full(cols.size, row), cols), 1)[:, :-1]
            self._key_slot[row, cols] = self._take_keys(older)

    def _take_keys(self, older: np.ndarray) -> np.ndarray:
        """Store keyframes' older frames [m, S-1, *frame]; returns their _key_slot values."""
        count = older.shape[0]
        if len(self._key_free) < count:
            size = len(self._key_frames)
            # doubling, but never past one entry per slot (every step a keyframe)
            grown = max(size + count, min(max(2 * size, 2 * self.n_envs), self.capacity))
            frames = np.zeros((grown, *self._key_frames.shape[1:]), dtype=self._key_frames.dtype)
            frames[:size] = self._key_frames
            self._key_frames = frames
            self._key_free.extend(range(grown - 1, size - 1, -1))  # the lowest index is taken first
        entries = np.array([self._key_free.pop() for _ in range(count)], dtype=np.int64)
        self._key_frames[entries] = older
        return entries + 1

    def _free_keys(self, row: int) -> None:
        """Release the older frames kept for the keyframes of ``row`` (about to be overwritten)."""
        slots = self._key_slot[row]
        self._key_free.extend((slots[slots > 0] - 1).tolist())
        slots[:] = 0

    def _observations(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """A copy of the whole observations stored at (rows, cols), two int arrays of one shape.

        With frame_stack, frame ``S-1-a`` (``a`` steps old) of a step is the newest frame of the
        step ``a`` rows before it, unless a keyframe ``m < a`` steps back comes first: then it is
        that keyframe's frame ``S-1-(a-m)``, kept aside. One gather from the ring, then the few
        frames kept aside are patched in. Unwritten slots read as zeros, as without frame_stack.
        """
        if self.frame_stack is None:
            return self._obs[rows, cols]
        (stack, axis), lead = self.frame_stack, rows.ndim
        ages = np.arange(stack - 1, -1, -1)  # of the frames, oldest first
        back = (rows[..., None] - ages) % self.rows  # [*X, S]: the row each frame's step is in
        ring = self._obs.reshape(self.rows * self.n_envs, *self._obs.shape[2:])
        frames = ring[back * self.n_envs + cols[..., None]]  # [*X, S, *frame]
        # keyframes 0..S-2 steps back ([..., m] is m steps back: back[..., S-1-m]), nearest first
        keys = self._key_slot[back[..., :0:-1], cols[..., None]]
        nearest = np.argmax(keys > 0, axis=-1)  # 0 where there is none: masked by the key's 0 below
        entry = np.take_along_axis(keys, nearest[..., None], axis=-1)[..., 0].astype(np.int64) - 1
        kept = (entry[..., None] >= 0) & (ages > nearest[..., None])  # [*X, S]: frames kept aside
        if kept.any():
            where = np.nonzero(kept)
            at_key = where[:-1]
            older = stack - 1 - ages[where[-1]] + nearest[at_key]
            frames[where] = self._key_frames[entry[at_key], older]
        if self._rows_written < self.rows:
            frames[rows >= self._rows_written] = 0
        if axis:  # frames [*X, S, *frame] -> the stack axis inside each frame
            frames = np.moveaxis(frames, lead, lead + axis)
        return frames.reshape(rows.shape + self.observation_shape)

    def _off_greedy(self, rows, cols) -> np.ndarray:
        """The stored moves at (rows, cols) were not the argmax of their stored search policy
        (a tie counts as greedy, and float16 rounding can only make ties)."""
        policies = self._policies[rows, cols]
        played = np.take_along_axis(policies, self._actions[rows, cols][..., None], axis=-1)[..., 0]
        return played < policies.max(axis=-1)

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
            if self._illegal is not None:
                raise ValueError("legal_masks were given before: give them at every add")
            return None
        masks = self._check_array("legal_masks", legal_masks, (self.n_envs, self.action_dim))
        if self._illegal is None:
            if self._rows_written > 0:
                raise ValueError("legal_masks must be given from the first add on, or never")
            self._illegal = np.zeros((self.rows, self.n_envs, self.action_dim), dtype=bool)
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
            kind = TERMINATED
        elif env in vals:
            kind = TRUNCATED
            self._final_value[row, env] = vals[env]
            if env in obs:  # kept for Reanalyze, which may refresh the bootstrap value
                self._final_obs[row * self.n_envs + env] = obs[env]
        else:
            kind = TRUNCATED_NO_VALUE
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
        rows, cols = self._locate(indices)
        live = (indices >= 0) & (self._uid[rows, cols] == indices) & self._valid[rows, cols]
        priorities = np.maximum(priorities, _MIN_PRIORITY)
        if live.any():
            self._tree.set(rows[live] * self.n_envs + cols[live], self._sampling_mass(priorities[live]))
            self._max_priority = max(self._max_priority, float(priorities[live].max()))

    def _sampling_mass(self, priorities: np.ndarray) -> np.ndarray:
        """``priority ** alpha``, kept above 0 so that no stored position becomes unsampleable."""
        return np.maximum(priorities**self.alpha, _MIN_MASS)

    def use_alpha(self, alpha: float) -> None:
        """Sample with ``priority ** alpha`` from now on (a loaded replay takes its model's
        ``priority_alpha``): the stored priorities are re-exponented; after alpha 0, which keeps
        none, every stored position starts at the largest priority seen."""
        alpha = float(alpha)
        if alpha == self.alpha:
            return
        slots = np.flatnonzero(self._valid)  # the stored positions' leaves (row * n_envs + column)
        if self.alpha > 0:
            priorities = self._tree.get(slots) ** (1.0 / self.alpha)
        else:
            priorities = np.full(slots.size, self._max_priority)
        self.alpha = alpha
        self._tree.set(slots, self._sampling_mass(priorities))

    def _locate(self, handles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ring (row, column) a handle was written to."""
        return (handles // self.n_envs) % self.rows, handles % self.n_envs

    # ------------------------------------------------------------------ sample
    def sample(self, batch_size: int, next_observations: bool = False) -> ReplayWindow:
        """Draw ``batch_size`` positions by priority; returns their windows (see ``ReplayWindow``).

        ``next_observations``: also copy the stored observations of the K unrolled steps, for
        EfficientZero's consistency loss (the observation after an episode's last move is not
        stored, so it is past the end like every later step).

        Not thread-safe: a caller that ``add``s from another thread holds its lock around this.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if self._num_valid == 0:
            raise ValueError(
                "the replay buffer holds no transitions yet: call learn() (or load_replay_buffer()) "
                "before train()"
            )
        total = self._tree.total
        leaves = self._tree.find(self.rng.random(batch_size) * total)
        rows, cols = leaves // self.n_envs, leaves % self.n_envs
        probs = self._tree.get(leaves) / total
        weights = (self._num_valid * probs) ** -self.beta
        weights = (weights / weights.max()).astype(np.float32)
        return self._window(rows, cols, weights, bool(next_observations))

    def _window(self, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, nexts: bool) -> ReplayWindow:
        """Copy the stored data from each sampled position to K + n steps later."""
        k, n = self.unroll_steps, self.td_steps
        width = k + n + 1
        wrows = (rows[:, None] + np.arange(width)[None, :]) % self.rows
        wcols = np.broadcast_to(cols[:, None], wrows.shape)
        ep_len = self._ep_len[rows, cols]
        running = ep_len < 0
        length = np.where(running, self._cur_len[cols], ep_len)
        kind = np.where(running, RUNNING, self._ep_kind[rows, cols]).astype(np.int8)
        left = length - self._step[rows, cols]  # transitions from t to the episode end
        inside = np.arange(width)[None, :] < left[:, None]
        values = np.where(inside, self._values[wrows, wcols], 0.0).astype(np.float64)
        at_end = np.flatnonzero((kind == TRUNCATED) & (left < width))
        last_row = (rows[at_end] + left[at_end] - 1) % self.rows
        values[at_end, left[at_end]] = self._final_value[last_row, cols[at_end]]
        unroll = (wrows[:, : k + 1], wcols[:, : k + 1])
        # drawn now, for the unroll steps past an episode's end
        random_actions = self.rng.integers(0, self.action_dim, size=(rows.shape[0], k))
        return ReplayWindow(
            observations=self._observations(rows, cols),
            actions=np.where(inside[:, :k], self._actions[wrows[:, :k], wcols[:, :k]], random_actions),
            rewards=np.where(inside, self._rewards[wrows, wcols], np.float32(0.0)),
            values=values,
            policies=self._policies[unroll].astype(np.float32),
            episode_end=kind,
            steps_left=left,
            handles=self._uid[wrows, wcols],
            weights=weights,
            legal_masks=None if self._illegal is None else ~self._illegal[unroll],
            random_cuts=None if self._random_move is None else inside & self._random_move[wrows, wcols],
            next_observations=self._observations(wrows[:, 1 : k + 1], wcols[:, 1 : k + 1]) if nexts else None,
        )

    # ------------------------------------------------------------------ read-only access
    def holds(self, handles: np.ndarray) -> np.ndarray:
        """bool, per handle: the ring still holds the step it names (its row was not overwritten
        since), so ``observations_at`` and ``legal_masks_at`` read that step's data."""
        handles = np.asarray(handles, dtype=np.int64)
        rows, cols = self._locate(handles)
        return (handles >= 0) & (self._uid[rows, cols] == handles)

    def observations_at(self, handles: np.ndarray) -> np.ndarray:
        """[*handles.shape, *obs]: a copy of the stored observations at these handles' slots."""
        return self._observations(*self._locate(np.asarray(handles, dtype=np.int64)))

    def legal_masks_at(self, handles: np.ndarray) -> np.ndarray | None:
        """[*handles.shape, A] bool: a copy of the stored legal masks there (None if never given)."""
        if self._illegal is None:
            return None
        return ~self._illegal[self._locate(np.asarray(handles, dtype=np.int64))]

    def final_observation(self, handle: int) -> np.ndarray | None:
        """The observation after the episode's last step ``handle``, kept when that episode was
        truncated with a final value and a final observation; None otherwise (or once evicted)."""
        handle = int(handle)
        if not self.holds(np.array([handle]))[0]:
            return None
        row, col = self._locate(handle)
        return self._final_obs.get(int(row) * self.n_envs + int(col))

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
        state["_format_version"] = _FORMAT_VERSION
        return state

    def __setstate__(self, state: dict) -> None:
        version = state.pop("_format_version", None)
        if version is None:
            raise ValueError(
                "this replay buffer was saved by muzero-agents 0.1.0 and cannot be loaded by this "
                "version; collect new data, or load it with muzero-agents 0.1.0"
            )
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"this replay buffer has format version {version!r}, but this version of "
                f"muzero-agents reads versions {_READABLE_VERSIONS}; load it with the muzero-agents "
                "that saved it, or collect new data"
            )
        state["may_hold_normalized_data"] = version < 4 or state.get("may_hold_normalized_data", False)
        if version == 2:  # whole observations
            state.update(frame_stack=None, _key_slot=None, _key_frames=None, _key_free=[])
        used = state.pop("_pickled_rows")
        leaves = state.pop("_tree")
        self.__dict__.update(state)
        self._tree = SumTree(self.capacity, leaves)
        for name in self._row_arrays():
            part = getattr(self, name)
            if part is None:
                continue
            shape = (self.rows,) + part.shape[1:]
            if name in ("_ep_len", "_uid"):
                full = np.full(shape, -1, dtype=part.dtype)
            else:  # zeros: pages of unused rows are never touched (observations can be GBs)
                full = np.zeros(shape, dtype=part.dtype)
            full[:used] = part
            setattr(self, name, full)

    @staticmethod
    def _row_arrays() -> tuple:
        return (
            "_obs",
            "_key_slot",
            "_actions",
            "_rewards",
            "_values",
            "_policies",
            "_illegal",
            "_random_move",
            "_step",
            "_ep_len",
            "_ep_kind",
            "_final_value",
            "_valid",
            "_uid",
        )


def _check_frame_stack(frame_stack, observation_shape: tuple) -> tuple[int, int] | None:
    """The constructor's ``frame_stack`` as ``(S, axis >= 0)``, or None; a ValueError naming the fix."""
    if frame_stack is None:
        return None
    shape = tuple(int(size) for size in observation_shape)
    usage = (
        "frame_stack must be None or (frames, axis): how many frames each observation stacks and "
        "the axis of one observation they are stacked along, newest last (for SB3's "
        "VecFrameStack(env, n_stack) on images: (n_stack, 0) channel-first, (n_stack, -1) channel-last)"
    )
    try:
        stack, axis = frame_stack
    except (TypeError, ValueError):
        raise ValueError(f"{usage}; got {frame_stack!r}") from None
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (stack, axis)):
        raise ValueError(f"{usage}; got {frame_stack!r}")
    if stack < 2:
        raise ValueError(
            f"frame_stack's frame count must be at least 2, got {frame_stack!r}: with fewer there "
            "is nothing to share between steps; pass frame_stack=None"
        )
    if not -len(shape) <= axis < len(shape):
        raise ValueError(
            f"frame_stack's axis {axis} is not an axis of the observation shape {shape}; pass an "
            f"axis in [{-len(shape)}, {len(shape)})"
        )
    axis = int(axis) % len(shape)
    if shape[axis] % stack:
        raise ValueError(
            f"frame_stack={frame_stack!r}: axis {axis} of the observation shape {shape} has size "
            f"{shape[axis]}, which {stack} frames cannot share evenly; pass the number of stacked "
            "frames and the axis they are stacked along"
        )
    return int(stack), axis


def _same_bytes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n] bool: a[i] and b[i] hold the same bytes (exact, NaN payloads and signed zeros included)."""
    count = a.shape[0]
    a = np.ascontiguousarray(a).reshape(count, -1).view(np.uint8)
    b = np.ascontiguousarray(b).reshape(count, -1).view(np.uint8)
    return (a == b).all(axis=1)

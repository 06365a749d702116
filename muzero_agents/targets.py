"""Training targets for MuZero, built in one place from a sampled replay window.

``make_batch`` turns a ``ReplayWindow`` into a ``ReplayBatch``: n-step bootstrapped value
returns and their TD(lambda) mix, board-game outcomes (``two_player``), the cut of value returns
at random opening moves, rewards, policies and every mask. The target settings (discount,
td_lambda, two_player) are applied here, when a batch is built, never stored with the data.

Conventions:

* A trajectory of ``T`` transitions has rewards ``r_0..r_{T-1}`` and values ``v_0..v_T`` (the
  search root value at every observation, ``v_T`` at the observation after the last step).
* The per-step ``discount`` ``d`` multiplies once per step. For two-player zero-sum games pass
  ``d = -gamma``: rewards are from the mover's point of view and values from the point of view of
  the player to move, so signs alternate per ply.
* n-step return at position ``u``: ``sum_{i<h} d^i r_{u+i} + d^h v_{u+h}`` with
  ``h = min(n, T - u)``. After a true terminal there is no bootstrap (``v_T`` is taken as 0) and
  positions ``u >= T`` are absorbing with target 0. A truncated (time limit) or still running
  trajectory bootstraps from ``v_T``; positions ``u > T`` have no defined target (0 is returned,
  the replay masks them).
* TD(lambda) truncated at ``n``: ``(1-lambda) sum_{m<n} lambda^{m-1} G^(m) + lambda^{n-1} G^(n)``,
  which is exactly the n-step return at ``lambda = 1`` and the one-step return at ``lambda = 0``.

Random openings: a move ``add`` flagged random (one the search would not have played, see
``ReplayWindow.random_cuts``) ends every value return that reaches it, its own position's
included: such a return stops there and bootstraps from the (stored or reanalyzed) value at that
position, so no value target averages over random moves; the position itself gets its own value.

Everything here is plain numpy and works on many positions at once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from muzero_agents.replay import TERMINATED, ReplayWindow

__all__ = [
    "ReplayBatch",
    "check_target_args",
    "lambda_weights",
    "make_batch",
    "return_horizons",
    "value_targets",
    "windowed_value_targets",
]


class ReplayBatch(NamedTuple):
    """A batch of sampled positions with K-step unroll targets (see ``make_batch``)."""

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
    # [B] bool, False where the k=0 value target is the position's own stored value (the newest
    # step of a running episode, the last step of a truncation without a final value, a position
    # whose own move was random): |v - z| says nothing there and must not set its priority (a
    # value-only Reanalyze would make it ~0 and the step would never be drawn again)
    priority_mask: np.ndarray | None = None
    # sample(next_observations=True) only: the stored observations at t+1..t+K [B, K, *obs] and
    # whether each is the episode's (1) or past its end (0, whatever the ring holds there)
    next_observations: np.ndarray | None = None
    next_observation_mask: np.ndarray | None = None


def check_target_args(discount: float, td_steps: int, td_lambda: float) -> None:
    """Raise a ValueError naming the fix when a target hyperparameter is out of range."""
    if isinstance(td_steps, bool) or not isinstance(td_steps, (int, np.integer)) or td_steps < 1:
        raise ValueError(f"td_steps must be an integer >= 1, got {td_steps!r}")
    if not np.isfinite(td_lambda) or not 0.0 <= td_lambda <= 1.0:
        raise ValueError(f"td_lambda must lie in [0, 1], got {td_lambda!r}")
    if not np.isfinite(discount) or abs(discount) > 1.0:
        raise ValueError(
            f"discount must be finite with |discount| <= 1 (use -gamma for two-player games), "
            f"got {discount!r}"
        )


def lambda_weights(td_steps: int, td_lambda: float) -> np.ndarray:
    """Weights of the m-step returns, m = 1..td_steps, in the truncated TD(lambda) mix.

    They sum to 1; with ``td_lambda = 1`` only the last is non-zero (plain n-step).
    """
    n = int(td_steps)
    weights = np.empty(n, dtype=np.float64)
    weights[: n - 1] = (1.0 - td_lambda) * td_lambda ** np.arange(n - 1, dtype=np.float64)
    weights[n - 1] = td_lambda ** (n - 1)
    return weights


def windowed_value_targets(
    rewards: np.ndarray,
    values: np.ndarray,
    remaining: np.ndarray,
    terminated: np.ndarray,
    discount: float,
    weights: np.ndarray,
) -> np.ndarray:
    """Targets for P positions, each given as a window starting at the position.

    rewards: [P, n] rewards r_u..r_{u+n-1}; entries at or past ``remaining`` are ignored.
    values: [P, n+1] values v_u..v_{u+n}; only entries at indices <= ``remaining`` are read, and
        the entry at ``remaining`` must be the trajectory's bootstrap value v_T (ignored where
        terminated).
    remaining: [P] ints, T - u (transitions left from the position to the end).
    terminated: [P] bools, whether the trajectory ended in a true terminal.
    weights: [n] mixing weights of the 1..n-step returns (see ``lambda_weights``).
    Returns float64 [P]. Truncated positions with ``remaining < 0`` get 0 (undefined; mask them).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    remaining = np.asarray(remaining, dtype=np.int64)
    terminated = np.asarray(terminated, dtype=bool)
    n = rewards.shape[1]
    powers = float(discount) ** np.arange(n + 1, dtype=np.float64)
    live = np.arange(n)[None, :] < remaining[:, None]
    # partial[:, m-1] = sum_{i<m} d^i r_{u+i}, rewards past the end counted as 0
    partial = np.cumsum(np.where(live, rewards, 0.0) * powers[:n], axis=1)
    steps = np.clip(np.minimum(np.arange(1, n + 1)[None, :], remaining[:, None]), 0, None)
    boot = np.take_along_axis(values, steps, axis=1) * powers[steps]
    boot = np.where(terminated[:, None] & (steps >= remaining[:, None]), 0.0, boot)
    returns = partial + boot  # [P, n]: column m-1 is the m-step return
    out = returns @ np.asarray(weights, dtype=np.float64)
    return np.where(~terminated & (remaining < 0), 0.0, out)


def value_targets(
    rewards: np.ndarray,
    values: np.ndarray,
    terminated: bool,
    discount: float,
    td_steps: int,
    td_lambda: float = 1.0,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """n-step / TD(lambda) value targets for positions of one trajectory.

    rewards: [T]; values: [T+1] (``values[T]`` bootstraps a truncated or running trajectory and
    is ignored when ``terminated``). positions: ints >= 0, default ``0..T`` (one per value).
    Positions >= T of a terminated trajectory get 0 (absorbing); positions > T of a truncated one
    get 0 too but are not valid targets. Returns float64 with the shape of ``positions``.
    """
    check_target_args(discount, td_steps, td_lambda)
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if rewards.ndim != 1 or values.shape != (rewards.shape[0] + 1,):
        raise ValueError(
            f"expected rewards [T] and values [T+1], got shapes {rewards.shape} and {values.shape}"
        )
    horizon = rewards.shape[0]
    if positions is None:
        positions = np.arange(horizon + 1)
    positions = np.asarray(positions)
    if positions.size and (not np.issubdtype(positions.dtype, np.integer) or positions.min() < 0):
        raise ValueError("positions must be non-negative integers")
    flat = positions.reshape(-1).astype(np.int64)
    n = int(td_steps)
    span = int(flat.max(initial=0)) + n + 1
    padded_rewards = np.zeros(span, dtype=np.float64)
    padded_rewards[:horizon] = rewards
    padded_values = np.zeros(span + 1, dtype=np.float64)
    padded_values[: horizon + 1] = values
    offsets = flat[:, None] + np.arange(n + 1)[None, :]
    out = windowed_value_targets(
        padded_rewards[offsets[:, :n]],
        padded_values[offsets],
        horizon - flat,
        np.full(flat.shape, bool(terminated)),
        discount,
        lambda_weights(n, td_lambda),
    )
    return out.reshape(positions.shape)


def _next_marked(marks: np.ndarray) -> np.ndarray:
    """[B, width]: per index j, the first marked index >= j (width where none is)."""
    width = marks.shape[1]
    marked = np.where(marks, np.arange(width)[None, :], width)
    return np.minimum.accumulate(marked[:, ::-1], axis=1)[:, ::-1]


def return_horizons(window: ReplayWindow, count: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per (sample, k) of the first ``count`` samples (all by default), [count, K+1] each: the
    steps its value target's return runs before bootstrapping (negative past the end of a
    truncated or running episode: no target), and whether it ends in the true terminal.

    That is the value trajectory's end, unless a random move (``window.random_cuts``) comes
    first: the return then stops at it, 0 steps when the position's own move was random.
    """
    steps = np.arange(window.unroll_steps + 1)[None, :]
    remaining = window.value_steps_left[:count, None] - steps
    terminated = np.broadcast_to((window.episode_end[:count] == TERMINATED)[:, None], remaining.shape)
    if window.random_cuts is None:
        return remaining, terminated
    until_cut = _next_marked(window.random_cuts[:count])[:, : window.unroll_steps + 1] - steps
    stops_early = until_cut < remaining
    return np.where(stops_early, until_cut, remaining), terminated & ~stops_early


def make_batch(window: ReplayWindow, *, discount: float, td_lambda: float, two_player: bool) -> ReplayBatch:
    """The K-step unroll targets of a sampled window.

    discount: per-step discount gamma in [0, 1]; td_lambda: the TD(lambda) mix of the 1..n-step
    returns (1 = plain n-step); two_player: rewards and values alternate sign per ply (board
    games), so the discount used is ``-discount``. Reads the window alone.
    """
    check_target_args(discount, window.td_steps, td_lambda)
    if discount < 0:
        raise ValueError(
            f"discount must be >= 0, got {discount!r}; pass two_player=True for alternating signs"
        )
    k, n, a = window.unroll_steps, window.td_steps, window.policies.shape[2]
    terminated = window.episode_end == TERMINATED
    inside = window.inside
    horizons, ends_in_terminal = return_horizons(window)
    remaining = window.value_steps_left[:, None] - np.arange(k + 1)[None, :]
    offsets = np.arange(k + 1)[:, None] + np.arange(n + 1)[None, :]  # [K+1, n+1]
    targets = windowed_value_targets(
        window.rewards[:, offsets[:, :n]].reshape(-1, n),
        window.values[:, offsets].reshape(-1, n + 1),
        horizons.reshape(-1),
        ends_in_terminal.reshape(-1),
        -discount if two_player else discount,
        lambda_weights(n, td_lambda),
    ).reshape(window.batch_size, k + 1)
    value_mask = terminated[:, None] | (remaining >= 0)
    target_rewards = np.zeros((window.batch_size, k + 1), dtype=np.float32)
    target_rewards[:, 1:] = window.rewards[:, :k]
    reward_mask = np.zeros((window.batch_size, k + 1), dtype=bool)
    reward_mask[:, 1:] = terminated[:, None] | inside[:, :k]
    policy_mask = inside[:, : k + 1]
    policies = np.where(policy_mask[:, :, None], window.policies, np.float32(1.0 / a))
    legal = window.legal_masks
    if legal is not None:
        legal = np.where(policy_mask[:, :, None], legal, True)
    nexts = window.next_observations
    return ReplayBatch(
        observations=window.observations,
        actions=window.actions.astype(np.int64),
        target_values=np.where(value_mask, targets, 0.0).astype(np.float32),
        target_rewards=target_rewards,
        target_policies=policies.astype(np.float32),
        value_mask=value_mask.astype(np.float32),
        reward_mask=reward_mask.astype(np.float32),
        policy_mask=policy_mask.astype(np.float32),
        weights=window.weights,
        indices=np.ascontiguousarray(window.indices),
        legal_masks=legal,
        priority_mask=(horizons[:, 0] > 0) | ends_in_terminal[:, 0],
        next_observations=nexts,
        next_observation_mask=None if nexts is None else inside[:, 1 : k + 1].astype(np.float32),
    )

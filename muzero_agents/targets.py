"""Value targets for MuZero: n-step bootstrapped returns and their TD(lambda) mix.

Conventions (shared with the replay buffer):

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

Everything here is plain numpy and works on many positions at once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_target_args", "lambda_weights", "value_targets", "windowed_value_targets"]


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

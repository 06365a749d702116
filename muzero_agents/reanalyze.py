"""Reanalyze: refresh the stored search results a sampled window's targets read.

Values (and, with a search, policies) stored at acting time go stale as the network learns.
Before the targets of a batch are built, a ``Reanalyzer`` re-evaluates the stored observations
that the first ``round(fraction * B)`` samples' targets read, with a function the learner
provides (one value-only network call, or a fresh search), and returns a window whose values
(and policies) are replaced. The replay itself is only read, never changed: its stored values
stay the acting-time search results.

Reanalyze reads the replay while holding the caller's lock and releases it before evaluating,
so another thread may ``add`` meanwhile. A stored step overwritten between the sampling and the
refresh is not re-evaluated: its stored value, copied at sampling time, stays.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from muzero_agents.planning import Planner
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.replay import TERMINATED, TRUNCATED, ReplayWindow, TrajectoryReplay
from muzero_agents.targets import lambda_weights, return_horizons

__all__ = ["Evaluate", "Reanalyzer", "network_evaluate"]

# (observations [M, *obs], legal masks [M, A] bool or None) -> (values [M], policies [M, A] or None)
Evaluate = Callable[[np.ndarray, "np.ndarray | None"], tuple[np.ndarray, "np.ndarray | None"]]


class _Reads(NamedTuple):
    """Which stored data the refreshed samples' targets read, as window coordinates."""

    samples: np.ndarray  # [R] sample index of every stored step read ...
    steps: np.ndarray  # [R] ... and its window index
    finals: np.ndarray  # [F] samples whose truncated episode's final value is read


class ReanalyzeInputs(NamedTuple):
    """The evaluation's inputs, copied out of the replay, and where its outputs go."""

    observations: np.ndarray  # [M, *obs]: distinct stored observations, then final observations
    legal_masks: np.ndarray | None  # [M, A], all True for final observations; None without masks
    samples: np.ndarray  # (sample, window index) of each stored value replaced ...
    steps: np.ndarray
    rows: np.ndarray  # ... and its row in ``observations``
    finals: np.ndarray  # samples whose final value is replaced ...
    final_rows: np.ndarray  # ... and its row in ``observations``


class Reanalyzer:
    """Refreshes the targets' stored values (and policies) of part of each sampled window.

    fraction: the first ``round(fraction * B)`` samples of a window are refreshed (0 = none).
    search: True when ``evaluate`` runs a search whose policies replace the stored policy
    targets: every unroll step inside the episode is then evaluated. False: values only, only the
    observations the value targets read are evaluated (whole-game targets of board games read
    almost none), and policies ``evaluate`` returns are ignored.
    td_lambda: the TD(lambda) of the targets to be built: m-step returns of weight 0 read no
    value, so their observations are not evaluated. Use the value given to ``make_batch``.
    """

    def __init__(self, fraction: float, search: bool, td_lambda: float = 1.0) -> None:
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, (int, float, np.number))
            or not 0 <= fraction <= 1
        ):
            raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")
        if not isinstance(search, (bool, np.bool_)):
            raise ValueError(f"search must be a bool, got {search!r}")
        if not np.isfinite(td_lambda) or not 0.0 <= td_lambda <= 1.0:
            raise ValueError(f"td_lambda must lie in [0, 1], got {td_lambda!r}")
        self.fraction = float(fraction)
        self.search = bool(search)
        self.td_lambda = float(td_lambda)

    def refresh(
        self,
        window: ReplayWindow,
        replay: TrajectoryReplay,
        evaluate: Evaluate,
        replay_lock: contextlib.AbstractContextManager | None = None,
    ) -> ReplayWindow:
        """A copy of ``window`` whose first ``round(fraction * B)`` samples read fresh values.

        Every stored root value their targets read (every policy target inside the episode too
        when ``search``), and the final value of a truncated episode whose final observation was
        kept, is replaced by ``evaluate(observations [M, *obs], legal_masks [M, A] bool or None)
        -> (values [M], policies [M, A] or None)``, each distinct observation evaluated once.
        Legal masks are given when the replay stores them (all True for final observations).
        ``evaluate`` may return None policies to keep the stored ones. ``replay_lock`` (a
        context manager, or None) is held while the replay is read and released for ``evaluate``.
        """
        inputs = self.inputs(window, replay, replay_lock)
        if inputs is None:
            return window
        values, policies = evaluate(inputs.observations, inputs.legal_masks)
        return self.apply(window, inputs, values, policies)

    def inputs(
        self,
        window: ReplayWindow,
        replay: TrajectoryReplay,
        replay_lock: contextlib.AbstractContextManager | None = None,
    ) -> ReanalyzeInputs | None:
        """What ``refresh`` evaluates for ``window``, copied out of the replay under ``replay_lock``
        (None: nothing to evaluate). With :meth:`apply`, the evaluation can run elsewhere."""
        count = round(self.fraction * window.batch_size)
        if count == 0:
            return None
        reads = self._reads(window, count)
        with contextlib.nullcontext() if replay_lock is None else replay_lock:
            inputs = _copy_inputs(window, replay, reads)
        return inputs if inputs.observations.shape[0] else None

    def _reads(self, window: ReplayWindow, count: int) -> _Reads:
        """Which stored steps (and final observations) the first ``count`` samples' targets read."""
        k, n = window.unroll_steps, window.td_steps
        kind, left = window.episode_end[:count], window.steps_left[:count]
        inside = window.inside[:count]
        remaining, _ = return_horizons(window, count)
        horizons = np.arange(1, n + 1)[lambda_weights(n, self.td_lambda) > 0]
        # window index of every value a target reads: k + min(m, remaining), m with weight > 0
        reach = np.clip(np.minimum(horizons[None, None, :], remaining[:, :, None]), 0, None)
        index = np.arange(k + 1)[None, :, None] + reach
        read = (remaining >= 0)[:, :, None] & ~(
            (kind == TERMINATED)[:, None, None] & (index >= left[:, None, None])
        )
        needs_value = np.zeros(inside.shape, dtype=bool)
        sample = np.broadcast_to(np.arange(count)[:, None, None], index.shape)
        needs_value[sample[read], index[read]] = True
        needs = needs_value.copy()
        if self.search:
            needs[:, : k + 1] |= inside[:, : k + 1]  # every policy target inside the episode
        samples, steps = np.nonzero(needs & inside)
        finals = np.flatnonzero((kind == TRUNCATED) & (left < inside.shape[1]))
        return _Reads(samples, steps, finals[needs_value[finals, left[finals]]])

    def apply(self, window: ReplayWindow, inputs: ReanalyzeInputs, new_values, new_policies) -> ReplayWindow:
        """The window with ``evaluate``'s outputs in place of the stored values (and policies)."""
        size, actions = inputs.observations.shape[0], window.policies.shape[2]
        new_values = np.asarray(new_values, dtype=np.float64).reshape(-1)
        # a value-only refresh keeps the stored policies; without search only some unroll steps
        # were evaluated, and replacing just theirs would mix fresh and stale targets
        keep_policies = new_policies is None or not self.search
        new_policies = (
            np.zeros((size, actions), np.float32)
            if keep_policies
            else np.asarray(new_policies, dtype=np.float32)
        )
        if new_values.shape != (size,) or new_policies.shape != (size, actions):
            raise ValueError(
                f"evaluate must return values [{size}] and policies [{size}, {actions}] (or None), "
                f"got {new_values.shape} and {new_policies.shape}"
            )
        values = window.values.copy()
        values[inputs.samples, inputs.steps] = new_values[inputs.rows]
        values[inputs.finals, window.steps_left[inputs.finals]] = new_values[inputs.final_rows]
        policies = window.policies
        if not keep_policies:
            policies = policies.copy()
            in_unroll = inputs.steps <= window.unroll_steps
            policies[inputs.samples[in_unroll], inputs.steps[in_unroll]] = new_policies[
                inputs.rows[in_unroll]
            ]
        return dataclasses.replace(window, values=values, policies=policies)


def _copy_inputs(window: ReplayWindow, replay: TrajectoryReplay, reads: _Reads) -> ReanalyzeInputs:
    """Copy the observations (and legal masks) ``reads`` names out of the replay (call it under
    the replay's lock). Steps overwritten since the sampling, and final observations not kept,
    are left out."""
    handles = window.handles[reads.samples, reads.steps]
    held = replay.holds(handles)
    samples, steps = reads.samples[held], reads.steps[held]
    unique, rows = np.unique(handles[held], return_inverse=True)
    last_steps = window.handles[reads.finals, window.steps_left[reads.finals] - 1]
    found = {int(handle): replay.final_observation(handle) for handle in np.unique(last_steps)}
    kept = np.array([found[int(handle)] is not None for handle in last_steps], dtype=bool)
    unique_last, final_rows = np.unique(last_steps[kept], return_inverse=True)
    observations = replay.observations_at(unique)
    if unique_last.size:
        final_obs = np.stack([found[int(handle)] for handle in unique_last])
        observations = np.concatenate([observations, final_obs])
    legal = None
    if replay.has_legal_masks:  # final observations have no stored mask: all legal
        legal = np.ones((observations.shape[0], window.policies.shape[2]), dtype=bool)
        legal[: unique.size] = replay.legal_masks_at(unique)
    final_rows = unique.size + final_rows.reshape(-1)
    return ReanalyzeInputs(
        observations, legal, samples, steps, rows.reshape(-1), reads.finals[kept], final_rows
    )


def network_evaluate(
    policy: MuZeroPolicy, planner: Planner, num_simulations: int, search: bool, rng: np.random.Generator
) -> Evaluate:
    """Reanalyze's ``evaluate`` with ``policy``: a fresh noise-free search of ``num_simulations``
    (values and policies) when ``search``, else one value-only network call (policies kept)."""

    def evaluate(observations: np.ndarray, legal_masks: np.ndarray | None):
        if search:
            result = planner.plan(
                policy, observations, legal_masks, num_simulations=num_simulations,
                explore=False, temperature=0.0, rng=rng,
            )  # fmt: skip
            return result.root_value, result.policy
        policy.set_training_mode(False)
        _, values, _ = policy.initial_inference_numpy(observations)
        return values, None

    return evaluate

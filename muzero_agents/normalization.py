"""SB3's ``VecNormalize`` with a replay: store what the env gave, normalize when reading.

``VecNormalize`` scales observations and rewards with running statistics that move as training
goes on. A step stored as the wrapper returned it keeps the scale of its time, so older and newer
steps disagree, most of all the first episodes'. As SB3's off-policy algorithms do, the replay
keeps the original observations and rewards, and every read (a sampled window, the observations
Reanalyze evaluates) is normalized with the statistics of now. The search's values, stored for
the targets, are kept in the original reward units too (reward normalization only divides by
the return's spread). The search in self-play and ``predict`` sees the wrapper's normalized
observations, as any policy does. As in SB3, a final observation comes back from the wrapper's
normalized copy, so values it clipped (``clip_obs``) stay clipped.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np
from stable_baselines3.common.vec_env import VecNormalize

from muzero_agents.actor import StepRecord
from muzero_agents.reanalyze import Evaluate
from muzero_agents.replay import ReplayWindow


def as_stored(
    record: StepRecord, vec_normalize: VecNormalize | None, original_observations: np.ndarray | None
) -> tuple[StepRecord, np.ndarray | None]:
    """(what the replay stores of ``record``, the original observations of the step's new
    observations). Under ``vec_normalize``: the original rewards, the search's values in original
    reward units and, when it normalizes observations, ``original_observations`` (those the step
    was taken from) and the original final observations; without it, ``record`` unchanged."""
    if vec_normalize is None:
        return record, original_observations
    scale = _return_scale(vec_normalize)  # normalized values -> original reward units
    stored = record._replace(
        rewards=np.asarray(vec_normalize.get_original_reward(), dtype=np.float32),
        root_values=record.root_values * scale,
        final_values={env: value * scale for env, value in record.final_values.items()},
    )
    if not vec_normalize.norm_obs:  # the observations are the env's own
        return stored, None
    if original_observations is None:  # envs not reset by this learn(): undo the normalization
        original_observations = vec_normalize.unnormalize_obs(record.observations)
    finals = {env: vec_normalize.unnormalize_obs(obs) for env, obs in record.final_observations.items()}
    stored = stored._replace(observations=original_observations, final_observations=finals)
    return stored, vec_normalize.get_original_obs()


def check_wrapping(env, vec_normalize: VecNormalize | None) -> None:
    """A ValueError naming the fix when a wrapper outside a ``vec_normalize`` that normalizes
    observations reshapes them (``VecFrameStack``): the replay could not store the env's original
    observations. Wrappers that keep the observations' shape and type (``VecMonitor``) are fine."""
    if vec_normalize is None or not vec_normalize.norm_obs:
        return
    inner, outer = vec_normalize.observation_space, env.observation_space
    if (inner.shape, inner.dtype) == (outer.shape, outer.dtype):
        return
    outside = []
    while env is not vec_normalize and hasattr(env, "venv"):
        outside.append(type(env).__name__)
        env = env.venv
    raise ValueError(
        f"VecNormalize(norm_obs=True) is wrapped in {', '.join(outside)}, which change the observations "
        f"after it ({inner.shape} -> {outer.shape}), so the replay cannot store the env's original "
        "observations. Wrap VecNormalize outside them (VecNormalize(VecFrameStack(env, n))), or pass "
        "norm_obs=False (in the RL Zoo, which stacks outside VecNormalize: normalize: "
        '"dict(norm_obs=False)").'
    )


def check_loaded_replay(replay, vec_normalize: VecNormalize | None, path) -> None:
    """A ValueError when a replay saved before this storage (format 4) would feed a model under
    ``vec_normalize``: it may hold normalized data, which reads would normalize again."""
    if vec_normalize is not None and replay.may_hold_normalized_data:
        raise ValueError(
            f"the replay buffer in {path} was saved by an earlier muzero-agents, which may have stored "
            "VecNormalize's normalized observations and rewards; this version stores the env's "
            "original ones and normalizes them when it samples, so they would be normalized twice. "
            "Collect new data with this version."
        )


def replay_reads(
    evaluate: Evaluate, vec_normalize: VecNormalize | None
) -> tuple[Evaluate, Callable[[ReplayWindow], ReplayWindow] | None]:
    """(Reanalyze's ``evaluate``, the sampled windows' transform) over a replay that stores the
    env's original data under ``vec_normalize``; without it, ``evaluate`` and no transform."""
    if vec_normalize is None:
        return evaluate, None
    return normalized_evaluate(evaluate, vec_normalize), functools.partial(
        normalized_window, vec_normalize=vec_normalize
    )


def normalized_window(window: ReplayWindow, vec_normalize: VecNormalize) -> ReplayWindow:
    """A sampled window's observations, rewards and values on the statistics of now."""
    scale = _return_scale(vec_normalize)  # one reading of the statistics for the whole window
    rewards, next_observations = window.rewards, window.next_observations
    if vec_normalize.norm_reward:  # VecNormalize.normalize_reward, with this reading
        clip = vec_normalize.clip_reward
        rewards = np.clip(rewards / scale, -clip, clip).astype(np.float32)
    if next_observations is not None:
        next_observations = _observations(vec_normalize, next_observations)
    return dataclasses.replace(
        window,
        observations=_observations(vec_normalize, window.observations),
        rewards=rewards,
        values=window.values / scale,
        next_observations=next_observations,
    )


def normalized_evaluate(evaluate: Evaluate, vec_normalize: VecNormalize) -> Evaluate:
    """Reanalyze's ``evaluate`` over stored (original) observations."""

    def evaluate_normalized(observations: np.ndarray, legal_masks: np.ndarray | None):
        return evaluate(_observations(vec_normalize, observations), legal_masks)

    return evaluate_normalized


def _return_scale(vec_normalize: VecNormalize) -> float:
    """What ``VecNormalize`` divides rewards by now (clipping aside)."""
    return (
        float(np.sqrt(vec_normalize.ret_rms.var + vec_normalize.epsilon))
        if vec_normalize.norm_reward
        else 1.0
    )


def _observations(vec_normalize: VecNormalize, observations: np.ndarray) -> np.ndarray:
    if not vec_normalize.norm_obs:
        return observations
    return np.asarray(vec_normalize.normalize_obs(observations), dtype=np.float32)

"""What ``MuZero`` writes to SB3's logger: the gradient steps' statistics (``train/*``) and SB3's
standard ``time/*`` and ``rollout/*`` keys. Self-play's ``search/*`` keys are recorded where
each env step is taken; a distributed run adds its ``distributed/*`` keys."""

from __future__ import annotations

import sys
import time

from stable_baselines3.common.utils import safe_mean


def record_training(model, statistics: list[dict[str, float]], steps_owed: int | None = None) -> None:
    """Average each gradient step's scalars into ``train/*``; a background trainer also records
    the steps it still owes."""
    logger = model.logger
    for scalars in statistics:
        for name, value in scalars.items():
            logger.record_mean(f"train/{name}", value)
    if model.background_training and steps_owed is not None:
        logger.record("train/steps_owed", steps_owed)
    logger.record("train/n_updates", model._n_updates, exclude="tensorboard")
    logger.record("train/learning_rate", model.lr_schedule(model._current_progress_remaining))


def dump(model) -> None:
    """Record SB3's standard time and rollout keys, then write everything recorded."""
    logger = model.logger
    elapsed = max((time.time_ns() - model.start_time) / 1e9, sys.float_info.epsilon)
    fps = int((model.num_timesteps - model._num_timesteps_at_start) / elapsed)
    logger.record("time/episodes", model._episode_num, exclude="tensorboard")
    if model.ep_info_buffer:
        logger.record("rollout/ep_rew_mean", safe_mean([ep["r"] for ep in model.ep_info_buffer]))
        logger.record("rollout/ep_len_mean", safe_mean([ep["l"] for ep in model.ep_info_buffer]))
    if model.ep_success_buffer:  # envs whose final info has "is_success"
        logger.record("rollout/success_rate", safe_mean(model.ep_success_buffer))
    logger.record("time/fps", fps)
    logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
    logger.record("time/total_timesteps", model.num_timesteps, exclude="tensorboard")
    logger.dump(step=model.num_timesteps)

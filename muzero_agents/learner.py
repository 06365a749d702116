"""The learner: batch -> loss -> optimizer step, plus the moving average of the weights.

It knows the network, its optimizer and the loss, never the envs: batches come from the replay
(through the targets and Reanalyze), and the network it trains is the one self-play and
``predict`` copy or read.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.utils import update_learning_rate

from muzero_agents.augment import Symmetries, augment
from muzero_agents.averaging import update_average
from muzero_agents.diagnostics import priority_diagnostics
from muzero_agents.losses import muzero_loss
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.reanalyze import Evaluate, Reanalyzer
from muzero_agents.replay import ReplayWindow, TrajectoryReplay
from muzero_agents.support import max_support_value
from muzero_agents.targets import ReplayBatch, make_batch

# (source, batch_size, beta, next_observations, replay_lock) -> a sampled window, refreshed by Reanalyze
WindowSource = Callable[["ReplayStep", int, float, bool, contextlib.AbstractContextManager], ReplayWindow]


class Learner:
    """Takes gradient steps (after ``configure``) on ``policy`` and keeps the weight average ``predict`` may play with.

    :param policy: the network to train (its ``optimizer`` is used)
    :param make_copy: builds an inference-mode network of the same layout (for the average)
    :param unroll_steps: K, the unrolled model steps per sample
    :param symmetries: the board's symmetries, for augmentation (None: no augmentation)
    """

    def __init__(
        self,
        policy: MuZeroPolicy,
        make_copy: Callable[[], MuZeroPolicy],
        unroll_steps: int,
        symmetries: Symmetries | None = None,
    ) -> None:
        self.policy = policy
        self._make_copy = make_copy
        self.unroll_steps = unroll_steps
        self.symmetries = symmetries
        self.weight_average: MuZeroPolicy | None = None
        self._acting: MuZeroPolicy | None = None
        self.value_loss_coef, self.max_grad_norm, self.settings = 0.25, 5.0, {}  # see configure()
        self._value_limit, self._warned_saturation = max_support_value(policy.support_size), False

    def configure(
        self, value_loss_coef: float, max_grad_norm: float, learner_kwargs: Mapping[str, Any]
    ) -> None:
        """Take the loss and optimizer settings (``learner_kwargs``: the model's own group, so
        changes to it apply at the next step)."""
        self.value_loss_coef, self.max_grad_norm, self.settings = (
            value_loss_coef,
            max_grad_norm,
            learner_kwargs,
        )
        if learner_kwargs["mixed_precision"] and self.policy.device.type == "cuda":
            if not torch.cuda.is_bf16_supported():
                raise ValueError(
                    f"learner_kwargs mixed_precision=True needs bfloat16, which this GPU "
                    f"({torch.cuda.get_device_name(self.policy.device)}) lacks: pass mixed_precision=False"
                )

    @property
    def wants_next_observations(self) -> bool:
        """The consistency loss compares the unroll with the real observations that followed."""
        return self.settings["consistency_loss_coef"] > 0

    def copy_weights(self, into: MuZeroPolicy | None = None) -> MuZeroPolicy:
        """The learner's weights in an inference-mode network (``into``, else a new one)."""
        copy = self._make_copy() if into is None else into
        copy.load_state_dict(self.policy.state_dict())
        copy.set_training_mode(False)
        return copy

    def acting_copy(self) -> MuZeroPolicy:
        """A copy of the newest weights for self-play to play with beside training (kept and
        reused from one call to the next)."""
        self._acting = self.copy_weights(into=self._acting)
        return self._acting

    def average(self) -> MuZeroPolicy:
        """The weight average, started at the weights of now if there is none yet."""
        if self.weight_average is None:
            self.weight_average = self.copy_weights()
        return self.weight_average

    def step(
        self, batch: ReplayBatch, learning_rate: float, ema_decay: float | None, rng: np.random.Generator
    ) -> tuple[dict[str, float], np.ndarray]:
        """One optimizer step on ``batch``; returns the loss scalars and the new priorities.

        ``ema_decay`` moves the weight average after the step (None drops it, so that setting a
        decay again later starts from the weights of then). ``rng`` draws the symmetries.
        """
        update_learning_rate(self.policy.optimizer, learning_rate)
        self._warn_if_values_saturate(batch)
        settings = self.settings
        batch = augment(batch, self.symmetries if settings["augment_symmetries"] else None, rng)
        self.policy.set_training_mode(True)
        coefs = self.value_loss_coef, settings["reward_loss_coef"], settings["consistency_loss_coef"]
        with torch.autocast(self.policy.device.type, torch.bfloat16, enabled=settings["mixed_precision"]):
            losses = muzero_loss(self.policy, batch, self.unroll_steps, self.policy.support_size, *coefs)
        self.policy.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        if ema_decay is None:
            self.weight_average = None
        else:
            update_average(self.average(), self.policy, ema_decay)
        return losses.scalars(), losses.priorities

    def _warn_if_values_saturate(self, batch: ReplayBatch) -> None:
        """Warn once when value targets reach beyond what the value support represents (rewards
        can each fit while their discounted sums do not)."""
        if self._warned_saturation:
            return
        largest = float(np.abs(batch.target_values * batch.value_mask).max(initial=0.0))
        if largest > self._value_limit:
            self._warned_saturation = True
            size = self.policy.support_size
            warnings.warn(
                f"value targets reach {largest:g}, beyond {self._value_limit:.0f}, the most "
                f'policy_kwargs["support_size"]={size} represents: the value head saturates there. Raise '
                'policy_kwargs["support_size"], or scale the rewards (SB3\'s VecNormalize(env, '
                "norm_reward=True), or gymnasium.wrappers.TransformReward).",
                UserWarning,
                stacklevel=2,
            )


@dataclass(frozen=True)
class ReplayStep:
    """Where one gradient step's batch comes from, and the targets it is built with.

    :param replay: the replay sampled from
    :param reanalyzer: refreshes the window's stored search results (``evaluate``)
    :param evaluate: the newest network's values (and policies), for Reanalyze
    :param targets: ``make_batch``'s settings (``discount``, ``td_lambda``, ``two_player``)
    :param windows: gives the refreshed window instead (None: sampled and refreshed here); the
        Reanalyze workers' source samples windows ahead and has them evaluated elsewhere
    :param normalize: turns a sampled window into what the network reads (None: as stored);
        with SB3's ``VecNormalize`` the replay stores the env's original data
    """

    replay: TrajectoryReplay
    reanalyzer: Reanalyzer
    evaluate: Evaluate
    targets: Mapping[str, Any]
    windows: WindowSource | None = None
    normalize: Callable[[ReplayWindow], ReplayWindow] | None = None


def gradient_step_on_replay(
    learner: Learner,
    source: ReplayStep,
    batch_size: int,
    beta: float,
    step_args: tuple[float, float | None, np.random.Generator],
    replay_lock: contextlib.AbstractContextManager,
) -> dict[str, float]:
    """Sample a window (importance exponent ``beta``), refresh it with Reanalyze, build its targets,
    take one learner step (``step_args``: learning rate, ema decay, rng) and write the priorities
    back. ``replay_lock`` is held around every read and write of the replay."""
    replay = source.replay
    if source.windows is not None:  # sampled ahead, refreshed by Reanalyze workers
        assert source.normalize is None, "Reanalyze workers read the replay as stored"
        window = source.windows(source, batch_size, beta, learner.wants_next_observations, replay_lock)
    else:
        with replay_lock:
            replay.beta = beta
            window = replay.sample(batch_size, next_observations=learner.wants_next_observations)
        if source.normalize is not None:
            window = source.normalize(window)
        window = source.reanalyzer.refresh(window, replay, source.evaluate, replay_lock)
    batch = make_batch(window, **source.targets)
    scalars, priorities = learner.step(batch, *step_args)
    keep = batch.priority_mask  # positions whose k=0 target is their own value keep their priority
    with replay_lock:
        replay.update_priorities(batch.indices[keep], priorities[keep])
    return {**scalars, **priority_diagnostics(priorities[keep])}


def match_saved_average(learner: Learner, params: dict[str, Any], ema_decay: float | None) -> dict[str, Any]:
    """Saved parameters made to fit ``ema_decay``: without a decay a saved average is dropped;
    with one, a save without an average starts it at the saved weights."""
    params = dict(params)
    if ema_decay is None:  # an average kept from before belongs to other weights
        params.pop("learner.weight_average", None)
        learner.weight_average = None
        return params
    learner.average()  # exists before it is loaded into
    if "learner.weight_average" not in params and "policy" in params:
        params["learner.weight_average"] = params["policy"]
    return params

"""The learner: batch -> loss -> optimizer step, plus the moving average of the weights.

It knows the network, its optimizer and the loss, never the envs: batches come from the replay
(through the targets and Reanalyze), and the network it trains is the one self-play and
``predict`` copy or read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.utils import update_learning_rate

from muzero_agents.augment import Symmetries, augment
from muzero_agents.averaging import update_average
from muzero_agents.losses import muzero_loss
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.targets import ReplayBatch


class Learner:
    """Takes gradient steps on ``policy`` and keeps the weight average ``predict`` may play with.

    :param policy: the network to train (its ``optimizer`` is used)
    :param make_copy: builds an inference-mode network of the same layout (for the average)
    :param unroll_steps: K, the unrolled model steps per sample
    :param value_loss_coef: weight of the value loss
    :param max_grad_norm: gradient clipping norm
    :param learner_kwargs: ``reward_loss_coef``, ``consistency_loss_coef``, ``mixed_precision``,
        ``augment_symmetries`` (``weight_decay`` is the optimizer's)
    :param symmetries: the board's symmetries, for augmentation (None: no augmentation)
    """

    def __init__(
        self,
        policy: MuZeroPolicy,
        make_copy: Callable[[], MuZeroPolicy],
        unroll_steps: int,
        value_loss_coef: float,
        max_grad_norm: float,
        learner_kwargs: Mapping[str, Any],
        symmetries: Symmetries | None = None,
    ) -> None:
        self.policy = policy
        self._make_copy = make_copy
        self.unroll_steps = unroll_steps
        self.value_loss_coef = value_loss_coef
        self.max_grad_norm = max_grad_norm
        self.reward_loss_coef = learner_kwargs["reward_loss_coef"]
        self.consistency_loss_coef = learner_kwargs["consistency_loss_coef"]
        self.mixed_precision = learner_kwargs["mixed_precision"]
        self.augment_symmetries = learner_kwargs["augment_symmetries"]
        self.symmetries = symmetries
        self.weight_average: MuZeroPolicy | None = None
        self.num_updates = 0

    @property
    def wants_next_observations(self) -> bool:
        """The consistency loss compares the unroll with the real observations that followed."""
        return self.consistency_loss_coef > 0

    def copy_weights(self, into: MuZeroPolicy | None = None) -> MuZeroPolicy:
        """The learner's weights in an inference-mode network (``into``, else a new one)."""
        copy = self._make_copy() if into is None else into
        copy.load_state_dict(self.policy.state_dict())
        copy.set_training_mode(False)
        return copy

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
        batch = augment(batch, self.symmetries if self.augment_symmetries else None, rng)
        self.policy.set_training_mode(True)
        with torch.autocast(self.policy.device.type, torch.bfloat16, enabled=self.mixed_precision):
            losses = muzero_loss(
                self.policy,
                batch,
                self.unroll_steps,
                self.policy.support_size,
                self.value_loss_coef,
                self.reward_loss_coef,
                self.consistency_loss_coef,
            )
        self.policy.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        if ema_decay is None:
            self.weight_average = None
        else:
            update_average(self.average(), self.policy, ema_decay)
        self.num_updates += 1
        return losses.scalars(), losses.priorities

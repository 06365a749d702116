"""MuZero's unified loss over K unrolled steps (paper, equation 1 and appendix G).

l = sum_k [ l_value(z_{t+k}, v_k) + l_reward(u_{t+k}, r_k) + l_policy(pi_{t+k}, p_k) ], with
categorical cross-entropies for value and reward (weighted by value_loss_coef and
reward_loss_coef), the dynamics input gradient halved at each step, and the unrolled steps'
losses scaled by 1/K so K does not change the effective step size. Optionally EfficientZero's
temporal consistency term (muzero_agents/consistency.py), weighted by consistency_loss_coef.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from muzero_agents.consistency import negative_cosine
from muzero_agents.networks import scale_hidden_state
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.targets import ReplayBatch
from muzero_agents.support import scalar_to_support, support_to_scalar


def scale_gradient(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``scale`` backward."""
    return tensor * scale + tensor.detach() * (1.0 - scale)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution, per sample: [B, C] -> [B].

    Computed in float32 even when the network ran under bfloat16 autocast (``mixed_precision``).
    """
    return -(target * torch.log_softmax(logits.float(), dim=-1)).sum(-1)


@dataclass
class MuZeroLosses:
    total: torch.Tensor
    value: float
    reward: float
    policy: float
    priorities: np.ndarray  # |v_0 - z_0| per sample, for prioritized replay
    consistency: float | None = None  # batch mean of ConsistencyTerm.loss, when the term is on

    def scalars(self) -> dict[str, float]:
        scalars = {
            "value_loss": self.value,
            "reward_loss": self.reward,
            "policy_loss": self.policy,
            "loss": float(self.total.detach()),
        }
        if self.consistency is not None:
            scalars["consistency_loss"] = self.consistency
        return scalars


def muzero_loss(
    policy: MuZeroPolicy,
    batch: ReplayBatch,
    unroll_steps: int,
    support_size: int,
    value_loss_coef: float = 0.25,
    reward_loss_coef: float = 1.0,
    consistency_loss_coef: float = 0.0,
) -> MuZeroLosses:
    """Unroll the model K steps from the sampled observations and score it against the targets.

    ``consistency_loss_coef > 0`` needs the policy's consistency head and a batch sampled with
    ``next_observations=True``.
    """
    targets = _Targets.of(batch, policy.device, support_size)
    out = policy.network.initial_inference(policy.prepare_obs(batch.observations))
    first_value = support_to_scalar(out.value_logits.detach().float(), support_size)
    losses = targets.step_losses(out, 0, 1.0)
    consistency = ConsistencyTerm.start(policy, batch, consistency_loss_coef)
    hidden = out.hidden
    for k in range(1, unroll_steps + 1):
        out = policy.network.recurrent_inference(scale_gradient(hidden, 0.5), targets.actions[:, k - 1])
        hidden = out.hidden
        losses = [
            total + step for total, step in zip(losses, targets.step_losses(out, k, 1.0 / unroll_steps))
        ]
        if consistency is not None:
            consistency.add_step(hidden, k, 1.0 / unroll_steps)
    value_loss, reward_loss, policy_loss = losses
    per_sample = value_loss_coef * value_loss + reward_loss_coef * reward_loss + policy_loss
    if consistency is not None:
        per_sample = per_sample + consistency_loss_coef * consistency.loss
    total = (targets.weights * per_sample).mean()
    priorities = (first_value - targets.values[:, 0]).abs().cpu().numpy() + 1e-6
    return MuZeroLosses(
        total=total,
        value=float(value_loss.detach().mean()),
        reward=float(reward_loss.detach().mean()),
        policy=float(policy_loss.detach().mean()),
        priorities=priorities,
        consistency=None if consistency is None else float(consistency.loss.detach().mean()),
    )


@dataclass
class _Targets:
    """A batch's targets and masks as tensors on the network's device."""

    values: torch.Tensor  # [B, K+1]
    value_support: torch.Tensor  # [B, K+1, 2S+1]
    reward_support: torch.Tensor  # [B, K+1, 2S+1]
    policies: torch.Tensor  # [B, K+1, A]
    actions: torch.Tensor  # [B, K]
    value_mask: torch.Tensor  # [B, K+1]
    reward_mask: torch.Tensor  # [B, K+1]
    policy_mask: torch.Tensor  # [B, K+1]
    weights: torch.Tensor  # [B]

    @classmethod
    def of(cls, batch: ReplayBatch, device: torch.device, support_size: int) -> _Targets:
        as_tensor = lambda array: torch.as_tensor(array, device=device)
        values = as_tensor(batch.target_values)
        return cls(
            values=values,
            value_support=scalar_to_support(values, support_size),
            reward_support=scalar_to_support(as_tensor(batch.target_rewards), support_size),
            policies=as_tensor(batch.target_policies),
            actions=as_tensor(batch.actions),
            value_mask=as_tensor(batch.value_mask),
            reward_mask=as_tensor(batch.reward_mask),
            policy_mask=as_tensor(batch.policy_mask),
            weights=as_tensor(batch.weights),
        )

    def step_losses(self, out, k: int, scale: float) -> list[torch.Tensor]:
        """Per-sample value, reward and policy losses of unroll step ``k``, times ``scale``.

        Step 0 has no reward (its mask is 0).
        """
        value = soft_cross_entropy(out.value_logits, self.value_support[:, k]) * self.value_mask[:, k]
        policy = soft_cross_entropy(out.policy_logits, self.policies[:, k]) * self.policy_mask[:, k]
        if k == 0:
            reward = torch.zeros_like(value)
        else:
            reward = soft_cross_entropy(out.reward_logits, self.reward_support[:, k]) * self.reward_mask[:, k]
        return [scale * value, scale * reward, scale * policy]


class ConsistencyTerm:
    """EfficientZero's consistency loss, accumulated over the unroll: per sample, the sum over the
    steps still inside the episode of -cos(predictor(projector(s_k)), projector(h(o_{t+k}))), each
    scaled by 1/K like the other unrolled losses (so masked steps pull it towards 0)."""

    def __init__(self, policy: MuZeroPolicy, targets: torch.Tensor, mask: torch.Tensor) -> None:
        self.head = policy.consistency_head
        self.targets = targets  # [B, K, D] detached projections of the real observations
        self.mask = mask  # [B, K]
        self.loss = torch.zeros(mask.shape[0], device=mask.device)

    @classmethod
    def start(cls, policy: MuZeroPolicy, batch: ReplayBatch, coef: float) -> ConsistencyTerm | None:
        """Project the representations of the unroll's real observations (None when off)."""
        if coef <= 0:
            return None
        if policy.consistency_head is None or batch.next_observations is None:
            raise ValueError(
                "consistency_loss_coef > 0 needs a policy built with consistency_kwargs and a batch "
                "sampled with next_observations=True (MuZero sets both up when the coefficient is > 0)"
            )
        later = batch.next_observations
        size, steps = later.shape[:2]
        with torch.no_grad():
            flat = policy.prepare_obs(later.reshape(size * steps, *later.shape[2:]))
            hidden = scale_hidden_state(policy.network.represent(flat))
            targets = policy.consistency_head.target(hidden).float().view(size, steps, -1)
        mask = torch.as_tensor(batch.next_observation_mask, device=policy.device)
        return cls(policy, targets, mask)

    def add_step(self, hidden: torch.Tensor, k: int, step_scale: float) -> None:
        """Score the dynamics' hidden state of unroll step ``k`` (1-based)."""
        online = self.head.online(hidden)
        self.loss = (
            self.loss + step_scale * negative_cosine(online, self.targets[:, k - 1]) * self.mask[:, k - 1]
        )

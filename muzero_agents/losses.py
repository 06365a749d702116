"""MuZero's unified loss over K unrolled steps (paper, equation 1 and appendix G).

l = sum_k [ l_value(z_{t+k}, v_k) + l_reward(u_{t+k}, r_k) + l_policy(pi_{t+k}, p_k) ], with
categorical cross-entropies for value and reward (weighted by value_loss_coef and
reward_loss_coef), the dynamics input gradient halved at each step (the first step's input,
the representation's output, included: the paper's text says "at the start of the dynamics
function", while its pseudocode halves only the hidden states that dynamics returns), and the
unrolled steps' losses scaled by 1/K so K does not change the effective step size. Optionally EfficientZero's
temporal consistency term (muzero_agents/consistency.py), weighted by consistency_loss_coef.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from muzero_agents.consistency import negative_cosine
from muzero_agents.diagnostics import unroll_diagnostics
from muzero_agents.networks import MuZeroNetwork, scale_hidden_state
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.targets import ReplayBatch
from muzero_agents.support import scalar_to_support, support_to_scalar


def scale_gradient(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; gradient multiplied by ``scale`` backward."""
    return tensor * scale + tensor.detach() * (1.0 - scale)


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a target distribution, per sample: [..., C] -> [...].

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
    diagnostics: dict[str, float] = field(default_factory=dict)  # see muzero_agents.diagnostics

    def scalars(self) -> dict[str, float]:
        scalars = {
            "value_loss": self.value,
            "reward_loss": self.reward,
            "policy_loss": self.policy,
            "loss": float(self.total.detach()),
        }
        if self.consistency is not None:
            scalars["consistency_loss"] = self.consistency
        return {**scalars, **self.diagnostics}


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
    unroll = _Unroll(policy.network, policy.prepare_obs(batch.observations))
    consistency = ConsistencyTerm.start(policy, batch, consistency_loss_coef)
    for k in range(1, unroll_steps + 1):
        hidden = unroll.step(targets.actions[:, k - 1])
        if consistency is not None:
            consistency.add_step(hidden, k, 1.0 / unroll_steps)
    reward_logits, value_logits, policy_logits = unroll.logits()
    # per sample and step [B, K+1] (rewards [B, K]): one cross-entropy call per head for all steps
    steps = torch.full((unroll_steps + 1,), 1.0 / unroll_steps, device=targets.values.device)
    steps[0] = 1.0  # the unrolled steps' losses are scaled by 1/K, the first step's is not
    value_loss = (soft_cross_entropy(value_logits, targets.value_support) * targets.value_mask * steps).sum(1)
    policy_loss = (soft_cross_entropy(policy_logits, targets.policies) * targets.policy_mask * steps).sum(1)
    reward_loss = (
        soft_cross_entropy(reward_logits, targets.reward_support[:, 1:]) * targets.reward_mask[:, 1:]
    ).sum(1) / unroll_steps  # step 0 has no reward (its mask is 0)
    per_sample = value_loss_coef * value_loss + reward_loss_coef * reward_loss + policy_loss
    if consistency is not None:
        per_sample = per_sample + consistency_loss_coef * consistency.loss
    total = (targets.weights * per_sample).mean()
    values = support_to_scalar(value_logits.detach().float(), support_size)  # [B, K+1]
    priorities = (values[:, 0] - targets.values[:, 0]).abs().cpu().numpy() + 1e-6
    means = torch.stack([value_loss.mean(), reward_loss.mean(), policy_loss.mean()]).tolist()
    hiddens = (unroll.hiddens[0], unroll.hidden)
    diagnostics = unroll_diagnostics(values, reward_logits, policy_logits, hiddens, targets, support_size)
    return MuZeroLosses(
        total=total,
        value=means[0],
        reward=means[1],
        policy=means[2],
        priorities=priorities,
        consistency=None if consistency is None else float(consistency.loss.detach().mean()),
        diagnostics=diagnostics,
    )


class _Unroll:
    """The representation, then one dynamics step per ``step`` (its input gradient halved), and
    the logits of every step (``logits``).

    The prediction function runs once on all steps' hidden states where that computes the same
    as once per step: the network composes the base class's inference from ``represent``,
    ``dynamics`` and ``predict_heads`` and has no batch norm (whose statistics would mix steps).
    """

    def __init__(self, network: MuZeroNetwork, observations: torch.Tensor) -> None:
        self.network = network
        self.together = _predicts_steps_together(network)
        if self.together:
            self.hidden = scale_hidden_state(network.represent(observations))
            self.values, self.policies = [], []
        else:
            out = network.initial_inference(observations)
            self.hidden, self.values, self.policies = out.hidden, [out.value_logits], [out.policy_logits]
        self.hiddens, self.rewards = [self.hidden], []

    def step(self, action: torch.Tensor) -> torch.Tensor:
        """One dynamics step with ``action`` [B]; returns the new (scaled) hidden state."""
        if self.together:
            hidden, reward = self.network.dynamics(scale_gradient(self.hidden, 0.5), action)
            self.hidden = scale_hidden_state(hidden)
            self.hiddens.append(self.hidden)
        else:
            out = self.network.recurrent_inference(scale_gradient(self.hidden, 0.5), action)
            self.hidden, reward = out.hidden, out.reward_logits
            self.values.append(out.value_logits)
            self.policies.append(out.policy_logits)
        self.rewards.append(reward)
        return self.hidden

    def logits(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reward logits [B, K, C], value logits [B, K+1, C], policy logits [B, K+1, A])."""
        rewards = torch.stack(self.rewards, 1)
        if not self.together:
            return rewards, torch.stack(self.values, 1), torch.stack(self.policies, 1)
        policies, values = self.network.predict_heads(torch.cat(self.hiddens))  # step-major [(K+1)B, ..]
        steps, size = len(self.hiddens), self.hidden.shape[0]
        samples_first = lambda logits: logits.view(steps, size, -1).transpose(0, 1)
        return rewards, samples_first(values), samples_first(policies)


def _predicts_steps_together(network: MuZeroNetwork) -> bool:
    """Whether one prediction call on all steps' hidden states equals one call per step."""
    kind = type(network)
    return (
        kind.initial_inference is MuZeroNetwork.initial_inference
        and kind.recurrent_inference is MuZeroNetwork.recurrent_inference
        and not any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in network.modules())
    )


@dataclass
class _Targets:
    """A batch's targets and masks as tensors on the network's device."""

    values: torch.Tensor  # [B, K+1]
    rewards: torch.Tensor  # [B, K+1], index 0 unused
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
        values, rewards = as_tensor(batch.target_values), as_tensor(batch.target_rewards)
        supports = scalar_to_support(torch.stack([values, rewards]), support_size)  # one projection
        return cls(
            values=values,
            rewards=rewards,
            value_support=supports[0],
            reward_support=supports[1],
            policies=as_tensor(batch.target_policies),
            actions=as_tensor(batch.actions),
            value_mask=as_tensor(batch.value_mask),
            reward_mask=as_tensor(batch.reward_mask),
            policy_mask=as_tensor(batch.policy_mask),
            weights=as_tensor(batch.weights),
        )


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

"""What the learner logs beside its losses, to see why learning goes wrong (``train/*`` keys).

Per unroll step ``k``, over the positions the loss scores (the absorbing steps after a terminal,
whose targets are 0, included): the mean absolute error of the predicted value against its target
(``value_error_k{k}``) and of the predicted reward (``reward_error_k{k}``, from k = 1); a step
with no such position in the batch is left out, not logged as 0. Over the batch: the entropy of
the predicted policy over every action at the sampled positions (``policy_entropy``; the search's
``search/prior_entropy`` counts legal actions only), the spread of the scaled hidden states at the first and
the last unrolled step (``hidden_std_first``, ``hidden_std_last``: the mean over samples of each
state's standard deviation; near 0 the states have collapsed), the spread of the value targets
(``value_target_std``) and the new priorities (``priority_mean``, ``priority_max``).
"""

from __future__ import annotations

import numpy as np
import torch

from muzero_agents.support import support_to_scalar


def masked_step_means(errors: torch.Tensor, mask: torch.Tensor) -> list[float | None]:
    """Per column (step) of ``errors`` [B, S], the mean over the rows ``mask`` keeps (None if none)."""
    kept = mask.sum(0)
    means = ((errors * mask).sum(0) / kept.clamp(min=1.0)).tolist()
    return [mean if count > 0 else None for mean, count in zip(means, kept.tolist())]


@torch.no_grad()
def unroll_diagnostics(
    values: torch.Tensor,
    reward_logits: torch.Tensor,
    policy_logits: torch.Tensor,
    hiddens: tuple[torch.Tensor, torch.Tensor],
    targets,
    support_size: int,
) -> dict[str, float]:
    """The per-step prediction errors, policy entropy, hidden-state spread and value-target spread.

    ``values`` [B, K+1]: the predicted values as scalars; ``reward_logits`` [B, K, C];
    ``policy_logits`` [B, K+1, A]; ``hiddens``: the first and last scaled hidden states;
    ``targets``: the loss's targets (``values``, ``rewards`` [B, K+1] and the masks).
    """
    rewards = support_to_scalar(reward_logits.float(), support_size)
    value_errors = masked_step_means((values - targets.values).abs(), targets.value_mask)
    reward_errors = masked_step_means((rewards - targets.rewards[:, 1:]).abs(), targets.reward_mask[:, 1:])
    first_policy = torch.log_softmax(policy_logits[:, 0].float(), dim=-1)
    scalars = {f"value_error_k{k}": error for k, error in enumerate(value_errors) if error is not None}
    scalars.update(
        {f"reward_error_k{k}": error for k, error in enumerate(reward_errors, start=1) if error is not None}
    )
    scalars["policy_entropy"] = float(-(first_policy.exp() * first_policy).sum(-1).mean())
    for name, hidden in zip(("hidden_std_first", "hidden_std_last"), hiddens):
        scalars[name] = float(hidden.detach().flatten(1).float().std(dim=1).mean())
    scalars["value_target_std"] = float(targets.values[:, 0].std()) if len(targets.values) > 1 else 0.0
    return scalars


def priority_diagnostics(priorities: np.ndarray) -> dict[str, float]:
    """The mean and largest of the priorities a gradient step writes back."""
    if priorities.size == 0:
        return {}
    return {"priority_mean": float(priorities.mean()), "priority_max": float(priorities.max())}

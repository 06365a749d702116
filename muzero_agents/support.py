"""Categorical value/reward representation used by MuZero (paper appendix F).

Scalars are squashed by the invertible transform h(x) = sign(x)(sqrt(|x|+1) - 1) + eps*x, then
written as a two-hot distribution over the integer support {-S, ..., S}. Networks predict logits
over that support and are trained with cross-entropy, which is scale-robust across domains.
"""

from __future__ import annotations

import torch

EPSILON = 0.001


def scale_transform(x: torch.Tensor, eps: float = EPSILON) -> torch.Tensor:
    """h(x): compresses large magnitudes so one support size fits many reward scales."""
    return torch.sign(x) * (torch.sqrt(torch.abs(x) + 1.0) - 1.0) + eps * x


def inverse_scale_transform(y: torch.Tensor, eps: float = EPSILON) -> torch.Tensor:
    """Exact inverse of :func:`scale_transform` (closed form of the quadratic in sqrt(|x|+1)).

    sqrt(|x|+1) = (sqrt(1 + 4 eps t) - 1) / (2 eps) with t = |y| + 1 + eps, computed as
    2t / (sqrt(1 + 4 eps t) + 1): the same number without the cancellation of the difference,
    which in float32 would cost about four decimal digits.
    """
    shifted = torch.abs(y) + (1.0 + eps)
    root = 2.0 * shifted / (torch.sqrt(1.0 + 4.0 * eps * shifted) + 1.0)
    return torch.sign(y) * (root * root - 1.0)


def scalar_to_support(x: torch.Tensor, support_size: int) -> torch.Tensor:
    """Two-hot projection of transformed scalars onto {-S..S}: shape [...] -> [..., 2S+1].

    Values outside the support are clipped to its ends; the expectation of the result under the
    support equals h(x) exactly for clipped-in values.
    """
    y = scale_transform(x).clamp(-support_size, support_size)
    low = torch.floor(y)
    upper_weight = y - low
    low_index = (low + support_size).long()
    high_index = (low_index + 1).clamp(max=2 * support_size)
    dist = torch.zeros(*x.shape, 2 * support_size + 1, dtype=x.dtype, device=x.device)
    dist.scatter_add_(-1, low_index.unsqueeze(-1), (1.0 - upper_weight).unsqueeze(-1))
    dist.scatter_add_(-1, high_index.unsqueeze(-1), upper_weight.unsqueeze(-1))
    return dist


def support_to_scalar(logits: torch.Tensor, support_size: int) -> torch.Tensor:
    """Expected value under softmax(logits) over the support, mapped back through h^-1."""
    probs = torch.softmax(logits, dim=-1)
    support = torch.arange(-support_size, support_size + 1, dtype=probs.dtype, device=probs.device)
    return inverse_scale_transform((probs * support).sum(-1))


def max_support_value(support_size: int) -> float:
    """The largest magnitude the value and reward support {-S..S} can represent: h^-1(S)."""
    return float(inverse_scale_transform(torch.tensor(float(support_size), dtype=torch.float64)))

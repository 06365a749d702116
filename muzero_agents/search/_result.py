"""The search result and the visit-count action choice shared by all search variants."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SearchResult(NamedTuple):
    """What a batched search returns for B roots with A actions.

    - ``action`` [B] int64: the chosen action, never a masked one.
    - ``visit_counts`` [B, A] int32: visit counts of the root's children.
    - ``policy`` [B, A] float32: the improved policy, the training target (0 on masked
      actions): normalized root visits for MuZero, completed-Q policy for Gumbel MuZero.
    - ``root_value`` [B] float32: the root's search value (value_sum / visits, the root's own
      network value counted as one visit).
    - ``q_values`` [B, A] float32: Q of the root's children from the root player's perspective,
      ``reward + disc * child value``; 0 for unvisited children.
    """

    action: np.ndarray
    visit_counts: np.ndarray
    policy: np.ndarray
    root_value: np.ndarray
    q_values: np.ndarray


def visit_policy(visit_counts: np.ndarray) -> np.ndarray:
    """Root visit counts normalized per row, float32 (rows always have at least one visit)."""
    counts = visit_counts.astype(np.float64)
    return (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)


def choose_by_visits(
    visit_counts: np.ndarray, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Sample each row's action from visits^(1/temperature); temperature 0 takes the argmax.

    Argmax ties go to the lowest action index. Actions with 0 visits (masked ones among them)
    have probability 0, so they are never chosen.
    """
    counts = visit_counts.astype(np.float64)
    if temperature == 0.0:
        return counts.argmax(axis=1).astype(np.int64)
    # (n / max)^(1/T) keeps the powers in [0, 1] for any temperature.
    weights = (counts / counts.max(axis=1, keepdims=True)) ** (1.0 / temperature)
    cumulative = np.cumsum(weights, axis=1)
    threshold = rng.random(counts.shape[0]) * cumulative[:, -1]
    # First index whose cumulative weight exceeds the threshold; zero weights never qualify.
    chosen = (cumulative <= threshold[:, None]).sum(axis=1)
    # Guard against threshold rounding up to the total: fall back to the last positive weight.
    last_positive = weights.shape[1] - 1 - (weights[:, ::-1] > 0).argmax(axis=1)
    return np.minimum(chosen, last_positive).astype(np.int64)

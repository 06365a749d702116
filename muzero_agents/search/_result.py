"""The search result and the visit-count read-out (policy target and action choice)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit


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
    - ``prior_logits`` [B, A] float32: the network's policy logits at the roots, where the caller
      attached them (MuZero's planner does); None otherwise.
    """

    action: np.ndarray
    visit_counts: np.ndarray
    policy: np.ndarray
    root_value: np.ndarray
    q_values: np.ndarray
    prior_logits: np.ndarray | None = None


@njit(cache=True)
def visit_policy_and_action(
    visits: np.ndarray,
    temperature: float,
    uniforms: np.ndarray,
    out_policy: np.ndarray,
    out_action: np.ndarray,
) -> None:
    """Normalized visits per row, and an action sampled from visits^(1/temperature).

    Temperature 0 takes the most visited action (lowest index on ties). Sampling inverts the
    cumulative weights (n / max)^(1/T) at ``uniforms[b] * total``; actions with 0 visits
    (masked ones among them) have weight 0 and are never chosen. Rows need a visit.
    """
    batch, num_actions = visits.shape
    for b in range(batch):
        total = 0
        most = 0
        best = 0
        for a in range(num_actions):
            total += visits[b, a]
            if visits[b, a] > most:
                most = visits[b, a]
                best = a
        for a in range(num_actions):
            out_policy[b, a] = visits[b, a] / total
        if temperature == 0.0:
            out_action[b] = best
            continue
        weight_sum = 0.0
        for a in range(num_actions):
            if visits[b, a] > 0:
                weight_sum += (visits[b, a] / most) ** (1.0 / temperature)
        threshold = uniforms[b] * weight_sum
        cumulative = 0.0
        chosen = -1
        for a in range(num_actions):
            if visits[b, a] > 0:
                chosen = a  # the last positive weight, should rounding leave us past the end
                cumulative += (visits[b, a] / most) ** (1.0 / temperature)
                if cumulative > threshold:
                    break
        out_action[b] = chosen


def policy_and_action_from_visits(
    visit_counts: np.ndarray, temperature: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(normalized visits float32 [B, A], action int64 [B] drawn from visits^(1/temperature)).

    Temperature 0 takes the most visited action (ties to the lowest) and draws nothing from
    ``rng``; otherwise one uniform per row is drawn.
    """
    visits = np.ascontiguousarray(visit_counts, dtype=np.int32)
    batch, num_actions = visits.shape
    policy = np.empty((batch, num_actions), dtype=np.float32)
    action = np.empty(batch, dtype=np.int64)
    uniforms = rng.random(batch) if temperature > 0 else np.zeros(batch)
    visit_policy_and_action(visits, float(temperature), uniforms, policy, action)
    return policy, action


def choose_by_visits(visit_counts: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Each row's action from visits^(1/temperature) (0: most visited, ties to the lowest)."""
    return policy_and_action_from_visits(visit_counts, temperature, rng)[1]

"""Gumbel MuZero's selection rules (Danihelka et al., 2022) as Numba functions over tree b.

Completed Q at a node: visited children keep Q(a) = reward + disc * value; unvisited children
get v_mix, the node's network value mixed with the prior-weighted mean Q of the visited ones:
    v_mix = (v + sum(N) / sum_visited(p) * sum_visited(p * Q)) / (1 + sum(N)).
The completed values are min-max rescaled to [0, 1] over the node's (legal) actions, with the
range floored at 1e-8, and transformed by sigma(q) = (c_visit + max_a N(a)) * c_scale * q.

- Root: the action with the largest g(a) + logits(a) + sigma(q(a)) among the legal actions
  whose visit count equals the sequential-halving target for this simulation (see
  ``gumbel_schedule``); g is the root's Gumbel noise.
- Interior: deterministic, argmax of pi'(a) - N(a) / (1 + sum(N)) with the improved policy
  pi' = softmax(logits + sigma(completed Q)); ties to the lowest action.

Unvisited children share one completed value, so among them the largest prior wins: the rules
walk only the expanded children plus the node's best unexpanded child, never all A actions
(the sum of pi' over unvisited children is their prior mass times one factor). Sums over the
children run from the latest expanded to the first.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from muzero_agents.search._minmax import larger, smaller
from muzero_agents.search._numba_cache import NO_REFCOUNTING

from muzero_agents.search._puct import better
from muzero_agents.search._tree import C_SCALE, C_VISIT

RESCALE_EPS = 1e-8


@njit(cache=True, inline="always")
def completed_q_stats(
    b: int,
    node: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_prior: np.ndarray,
    params: np.ndarray,
    num_actions: int,
) -> tuple[float, float, float, float, float]:
    """(v_mix, low, scale, sigma_factor, visited prior mass) of ``node`` in tree ``b``.

    ``num_actions`` counts the node's selectable actions (legal ones at the root), to know
    whether any unvisited child (valued v_mix) takes part in the min-max range. A completed
    value q maps to sigma = sigma_factor * (q - low) / scale.
    """
    sum_n = 0
    max_n = 0
    count = nodes[b, node].num_children
    sum_p = 0.0
    sum_pq = 0.0
    sum_q = 0.0
    lo = np.inf
    hi = -np.inf
    for k in range(count - 1, -1, -1):
        child = children[b, node, k]
        n = nodes[b, child].visits
        q = nodes[b, child].q
        p = np.float64(children_prior[b, node, nodes[b, child].action])
        sum_n += n
        max_n = larger(max_n, n)
        sum_p += p
        sum_pq += p * q
        sum_q += q
        lo = smaller(lo, q)
        hi = larger(hi, q)
    v_mix = nodes[b, node].raw_value
    if sum_n > 0:
        # Prior-weighted mean of the visited Q (plain mean if their priors all underflowed).
        mean_q = sum_pq / sum_p if sum_p > 0.0 else sum_q / count
        v_mix = (v_mix + sum_n * mean_q) / (1.0 + sum_n)
    if count < num_actions:
        lo = smaller(lo, v_mix)
        hi = larger(hi, v_mix)
    scale = larger(hi - lo, RESCALE_EPS)
    sigma_factor = (params[C_VISIT] + max_n) * params[C_SCALE]
    return v_mix, lo, scale, sigma_factor, sum_p


@njit(cache=True, inline="always")
def gumbel_interior_action(
    b: int,
    node: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_prior: np.ndarray,
    params: np.ndarray,
    scratch: np.ndarray,
) -> tuple[int, int]:
    """argmax_a pi'(a) - N(a) / (1 + sum N) at an interior node (all actions allowed):
    (action, child node or -1 if unexpanded). ``scratch[b, k]`` keeps child k's exponential."""
    num_actions = children_prior.shape[2]
    v_mix, lo, scale, factor, sum_p = completed_q_stats(
        b, node, nodes, children, children_prior, params, num_actions
    )
    # pi'(a) = p(a) exp(sigma(a) - factor) / z; sigma <= factor keeps the exponents <= 0.
    # Unvisited children (if any) share the weight of v_mix and hold the rest of the prior.
    unexpanded = nodes[b, node].best_unexpanded
    mix_weight = 0.0
    if unexpanded >= 0:
        mix_weight = math.exp(factor * (v_mix - lo) / scale - factor)
    z = larger(1.0 - sum_p, 0.0) * mix_weight
    count = nodes[b, node].num_children
    for k in range(count - 1, -1, -1):
        child = children[b, node, k]
        weight = math.exp(factor * (nodes[b, child].q - lo) / scale - factor)
        scratch[b, k] = weight
        z += np.float64(children_prior[b, node, nodes[b, child].action]) * weight
    total_n = 1.0 + (nodes[b, node].visits - 1)
    best = -1
    best_child = -1
    best_score = -np.inf
    for k in range(count - 1, -1, -1):
        child = children[b, node, k]
        a = nodes[b, child].action
        p = np.float64(children_prior[b, node, a])
        score = p * scratch[b, k] / z - nodes[b, child].visits / total_n
        if better(score, a, best_score, best):
            best = a
            best_child = child
            best_score = score
    a = unexpanded
    if a >= 0:
        score = np.float64(children_prior[b, node, a]) * mix_weight / z
        if better(score, a, best_score, best):
            best = a
            best_child = -1
    return best, best_child


@njit(cache=True, inline="always")
def _best_root_child(
    b: int,
    target_visits: int,
    nodes: np.ndarray,
    children: np.ndarray,
    root_score: np.ndarray,
    lo: float,
    scale: float,
    factor: float,
) -> int:
    """Best g + logits + sigma(q) among visited root children with N = target (any N if < 0)."""
    best = -1
    best_score = -np.inf
    for k in range(nodes[b, 0].num_children):
        child = children[b, 0, k]
        n = nodes[b, child].visits
        if target_visits < 0 or n == target_visits:
            a = nodes[b, child].action
            score = root_score[b, a] + factor * (nodes[b, child].q - lo) / scale
            if better(score, a, best_score, best):
                best = a
                best_score = score
    return best


@njit(cache=True, inline="always")
def gumbel_root_action(
    b: int,
    target_visits: int,
    num_legal: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    params: np.ndarray,
    root_score: np.ndarray,
    legal: np.ndarray,
) -> int:
    """Sequential halving at the root: best g + logits + sigma(q) among actions with N = target.

    ``root_score[b]`` holds g + logits per action. Unvisited actions share sigma(v_mix), so
    for target 0 the best unvisited legal action by g + logits is taken. Should no action
    have the target count, the best unvisited and then the best visited action is taken.
    """
    _v_mix, lo, scale, factor, _ = completed_q_stats(b, 0, nodes, children, children_prior, params, num_legal)
    best = -1
    if target_visits > 0:
        best = _best_root_child(b, target_visits, nodes, children, root_score, lo, scale, factor)
    if best < 0:
        best_score = -np.inf
        for a in range(children_index.shape[2]):
            if legal[b, a] and children_index[b, 0, a] < 0:
                score = root_score[b, a]
                if better(score, a, best_score, best):
                    best = a
                    best_score = score
    if best < 0:
        best = _best_root_child(b, -1, nodes, children, root_score, lo, scale, factor)
    return best


@njit(cache=True, **NO_REFCOUNTING)
def improved_policy_and_action(
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    params: np.ndarray,
    root_logits: np.ndarray,
    root_score: np.ndarray,
    legal: np.ndarray,
    num_legal: np.ndarray,
    out_policy: np.ndarray,
    out_action: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Gumbel MuZero's read-out at each root: the training target and the action to play.

    - policy: pi' = softmax(logits + sigma(completed Q)) over legal actions (0 elsewhere);
    - action: among the legal actions visited most, the best g + logits + sigma(q)
      (the survivor of sequential halving).
    """
    batch, _, num_actions = children_index.shape
    for b in range(batch):
        v_mix, lo, scale, factor, _ = completed_q_stats(
            b, 0, nodes, children, children_prior, params, num_legal[b]
        )
        max_n = 0
        for k in range(nodes[b, 0].num_children):
            max_n = larger(max_n, nodes[b, children[b, 0, k]].visits)
        top = -np.inf
        best = -1
        best_score = -np.inf
        for a in range(num_actions):
            if not legal[b, a]:
                scratch[b, a] = -np.inf
                continue
            child = children_index[b, 0, a]
            q = v_mix
            n = 0
            if child >= 0:
                n = nodes[b, child].visits
                q = nodes[b, child].q
            sigma = factor * (q - lo) / scale
            x = np.float64(root_logits[b, a]) + sigma
            scratch[b, a] = x
            top = larger(top, x)
            if n == max_n and better(root_score[b, a] + sigma, a, best_score, best):
                best = a
                best_score = root_score[b, a] + sigma
        total = 0.0
        for a in range(num_actions):
            e = math.exp(scratch[b, a] - top) if legal[b, a] else 0.0
            scratch[b, a] = e
            total += e
        for a in range(num_actions):
            out_policy[b, a] = scratch[b, a] / total
        out_action[b] = best

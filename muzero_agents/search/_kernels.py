"""Numba kernels over the struct-of-arrays search tree (arrays in, arrays out).

The tree of every root b lives in preallocated arrays (see ``_tree.Tree``):

- per node ``[B, N]``: ``visit_count`` (int32), ``value_sum`` (float64), ``reward`` (float64),
  ``parent`` (int32, -1 at the root), ``action_from_parent`` (int32, -1 at the root);
- per node and action ``[B, N, A]``: ``children_index`` (int32, -1 = not expanded) and
  ``children_prior`` (float32);
- per tree ``minmax`` ``[B, 2]`` (float64): the smallest and largest value seen (paper's
  ``MinMaxStats``), ``+inf``/``-inf`` while empty.

Node 0 is the root; simulation ``s`` (0-based) creates node ``s + 1`` in every tree, so the
node index of a new leaf is the same for all B trees.

Conventions (the paper's pseudocode, negamax for two players):

- ``value_sum`` is from the perspective of the player to move at that node; ``reward`` is the
  reward of the transition into the node, from the perspective of the player who moved.
- ``disc`` is the per-ply discount: ``discount`` for one player, ``-discount`` for two-player
  zero-sum games. Q of a child seen from its parent is ``reward + disc * value_sum / visits``.

Values are float64 so the engine and the plain-Python reference add up identically.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _normalized(value: float, minmax: np.ndarray, b: int) -> float:
    """Min-max normalize ``value`` with tree ``b``'s stats; raw value while max <= min."""
    lo = minmax[b, 0]
    hi = minmax[b, 1]
    if hi > lo:
        return (value - lo) / (hi - lo)
    return value


@njit(cache=True)
def _softmax_into(logits: np.ndarray, legal: np.ndarray, out: np.ndarray) -> None:
    """Write the softmax of ``logits`` over the ``legal`` entries into ``out`` (0 elsewhere).

    Computed in float64 (max-shifted, summed left to right) and rounded to ``out``'s dtype.
    """
    n = logits.shape[0]
    m = -np.inf
    for a in range(n):
        if legal[a] and logits[a] > m:
            m = logits[a]
    total = 0.0
    for a in range(n):
        if legal[a]:
            total += math.exp(np.float64(logits[a]) - m)
    for a in range(n):
        if legal[a]:
            out[a] = math.exp(np.float64(logits[a]) - m) / total
        else:
            out[a] = 0.0


@njit(cache=True)
def puct_child(
    b: int,
    node: int,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    minmax: np.ndarray,
    legal: np.ndarray,
    use_legal: bool,
    disc: float,
    pb_c_init: float,
    pb_c_base: float,
) -> int:
    """The paper's pUCT choice at ``node`` of tree ``b``: argmax of the UCB score.

    score = normalized Q (0 if unvisited) + prior * sqrt(N) / (1 + n) * (c1 + log((N + c2 + 1) / c2)),
    ties to the lowest action; where ``use_legal`` only actions with ``legal[b, a]`` count.
    """
    num_actions = children_index.shape[2]
    parent_visits = visit_count[b, node]
    pb_c = math.log((parent_visits + pb_c_base + 1.0) / pb_c_base) + pb_c_init
    sqrt_parent = math.sqrt(parent_visits)
    best = -1
    best_score = -np.inf
    for a in range(num_actions):
        if use_legal and not legal[b, a]:
            continue
        child = children_index[b, node, a]
        if child >= 0:
            n = visit_count[b, child]
            q = reward[b, child] + disc * (value_sum[b, child] / n)
            value_score = _normalized(q, minmax, b)
        else:
            n = 0
            value_score = 0.0
        prior_score = pb_c * (sqrt_parent / (n + 1)) * np.float64(children_prior[b, node, a])
        score = prior_score + value_score
        if best < 0 or score > best_score:
            best = a
            best_score = score
    return best


@njit(cache=True)
def init_roots(
    root_logits: np.ndarray,
    root_value: np.ndarray,
    legal: np.ndarray,
    noise: np.ndarray,
    noise_fraction: float,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    parent: np.ndarray,
    action_from_parent: np.ndarray,
    minmax: np.ndarray,
) -> None:
    """Expand every root from its logits (softmax over legal actions), mix in root noise.

    The root counts as visited once with its own network value (as mctx does), so the very
    first selection already weighs the priors. The min-max stats start empty.
    """
    batch, num_actions = root_logits.shape
    prior = np.empty(num_actions, dtype=np.float64)
    for b in range(batch):
        _softmax_into(root_logits[b], legal[b], prior)
        for a in range(num_actions):
            p = prior[a]
            if noise_fraction > 0.0 and legal[b, a]:
                p = (1.0 - noise_fraction) * p + noise_fraction * noise[b, a]
            children_prior[b, 0, a] = p
            children_index[b, 0, a] = -1
        visit_count[b, 0] = 1
        value_sum[b, 0] = root_value[b]
        reward[b, 0] = 0.0
        parent[b, 0] = -1
        action_from_parent[b, 0] = -1
        minmax[b, 0] = np.inf
        minmax[b, 1] = -np.inf


@njit(cache=True)
def select_puct(
    children_index: np.ndarray,
    children_prior: np.ndarray,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    minmax: np.ndarray,
    legal: np.ndarray,
    disc: float,
    pb_c_init: float,
    pb_c_base: float,
    out_parent: np.ndarray,
    out_action: np.ndarray,
    out_flat: np.ndarray,
) -> None:
    """Descend every tree by pUCT from the root to an unexpanded edge.

    Writes the node to expand from (``out_parent``), the action to take there
    (``out_action``) and ``b * N + parent`` (``out_flat``, to gather embeddings) for each b.
    The root legal mask applies at the root only.
    """
    batch = children_index.shape[0]
    num_nodes = children_index.shape[1]
    for b in range(batch):
        node = 0
        while True:
            a = puct_child(
                b, node, children_index, children_prior, visit_count, value_sum, reward,
                minmax, legal, node == 0, disc, pb_c_init, pb_c_base,
            )
            child = children_index[b, node, a]
            if child < 0:
                break
            node = child
        out_parent[b] = node
        out_action[b] = a
        out_flat[b] = b * num_nodes + node


@njit(cache=True)
def expand_and_backup(
    new_node: int,
    leaf_parent: np.ndarray,
    leaf_action: np.ndarray,
    leaf_reward: np.ndarray,
    leaf_value: np.ndarray,
    leaf_logits: np.ndarray,
    disc: float,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    parent: np.ndarray,
    action_from_parent: np.ndarray,
    minmax: np.ndarray,
) -> None:
    """Attach node ``new_node`` under (leaf_parent, leaf_action) in every tree and back up.

    The new node gets the transition reward and the softmax of its prior logits (all actions,
    the model knows no rules). Backup from the leaf with g = its network value: at each node
    on the way to the root, value_sum += g, visits += 1, the min-max stats see
    reward + disc * value, then g = reward + disc * g.
    """
    batch = children_index.shape[0]
    num_actions = children_index.shape[2]
    all_legal = np.ones(num_actions, dtype=np.bool_)
    for b in range(batch):
        p = leaf_parent[b]
        a = leaf_action[b]
        children_index[b, p, a] = new_node
        parent[b, new_node] = p
        action_from_parent[b, new_node] = a
        reward[b, new_node] = leaf_reward[b]
        visit_count[b, new_node] = 0
        value_sum[b, new_node] = 0.0
        _softmax_into(leaf_logits[b], all_legal, children_prior[b, new_node])
        for k in range(num_actions):
            children_index[b, new_node, k] = -1
        backup(b, new_node, np.float64(leaf_value[b]), disc, visit_count, value_sum, reward,
               parent, minmax)


@njit(cache=True)
def backup(
    b: int,
    leaf: int,
    value: float,
    disc: float,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    parent: np.ndarray,
    minmax: np.ndarray,
) -> None:
    """Back ``value`` (leaf player's perspective) up from ``leaf`` to the root of tree ``b``."""
    node = leaf
    g = value
    while node >= 0:
        value_sum[b, node] += g
        visit_count[b, node] += 1
        q = reward[b, node] + disc * (value_sum[b, node] / visit_count[b, node])
        if q < minmax[b, 0]:
            minmax[b, 0] = q
        if q > minmax[b, 1]:
            minmax[b, 1] = q
        g = reward[b, node] + disc * g
        node = parent[b, node]


@njit(cache=True)
def read_root(
    children_index: np.ndarray,
    visit_count: np.ndarray,
    value_sum: np.ndarray,
    reward: np.ndarray,
    disc: float,
    out_visits: np.ndarray,
    out_q: np.ndarray,
    out_root_value: np.ndarray,
) -> None:
    """Root children's visit counts and Q (root player's view, 0 if unvisited), root value."""
    batch = children_index.shape[0]
    num_actions = children_index.shape[2]
    for b in range(batch):
        out_root_value[b] = value_sum[b, 0] / visit_count[b, 0]
        for a in range(num_actions):
            child = children_index[b, 0, a]
            if child >= 0 and visit_count[b, child] > 0:
                n = visit_count[b, child]
                out_visits[b, a] = n
                out_q[b, a] = reward[b, child] + disc * (value_sum[b, child] / n)
            else:
                out_visits[b, a] = 0
                out_q[b, a] = 0.0

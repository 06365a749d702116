"""The tree engine: Numba kernels that initialise roots, select leaves, expand and back up.

Every kernel works on all B trees of a ``Tree`` (layout in ``_tree``) and takes arrays only.
The selection rule is a pluggable piece: ``select_leaves`` descends with ``rule``:

- ``PUCT``: the paper's pUCT everywhere (``_puct``);
- ``GUMBEL``: sequential halving at the root, the deterministic improved-policy rule inside
  (``_gumbel_rules``).

Conventions (the paper's pseudocode, negamax for two players): value_sum is from the view of
the player to move at the node, reward is the reward of the transition into it from the
mover's view, and ``params[DISC]`` is the per-ply discount (``-discount`` for two players), so
Q of a child seen from its parent is reward + disc * value_sum / visits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from muzero_agents.search._fastexp import exp_nonpositive
from muzero_agents.search._gumbel_rules import gumbel_interior_action, gumbel_root_action
from muzero_agents.search._puct import puct_action
from muzero_agents.search._tree import (
    ACTION,
    BEST_UNEXPANDED,
    DISC,
    FIRST_CHILD,
    LEAF_ACTION,
    LEAF_FLAT,
    LEAF_PARENT,
    NEXT_SIBLING,
    PARENT,
    RAW_VALUE,
    REWARD,
    VALUE_SUM,
    VISITS,
)

PUCT = 0
GUMBEL = 1
# BEST_UNEXPANDED of a node whose children_prior row still holds the raw network logits.
LOGITS_PENDING = -2


@njit(cache=True)
def softmax_into(
    logits: np.ndarray, legal: np.ndarray, use_legal: bool, out: np.ndarray, scratch: np.ndarray
) -> int:
    """Softmax of ``logits`` over legal entries into float32 ``out`` (0 elsewhere).

    Computed in float64 (max-shifted, summed left to right, times 1 / sum; ``_fastexp``'s
    exp, equal to libm's after the rounding), then rounded to float32. Returns
    the action with the largest stored prior (lowest on ties), -1 if nothing is legal.
    ``out`` may be ``logits`` itself (the logits are read before any prior is written).
    """
    n = logits.shape[0]
    m = -np.inf
    for a in range(n):
        if (not use_legal or legal[a]) and logits[a] > m:
            m = logits[a]
    if use_legal:
        for a in range(n):
            scratch[a] = exp_nonpositive(np.float64(logits[a]) - m) if legal[a] else 0.0
    else:
        for a in range(n):  # vectorized: most priors are computed here
            scratch[a] = exp_nonpositive(np.float64(logits[a]) - m)
    total = 0.0
    for a in range(n):
        total += scratch[a]
    inv_total = 1.0 / total
    best = -1
    best_p = np.float32(-1.0)
    for a in range(n):
        p = np.float32(scratch[a] * inv_total)
        out[a] = p
        if (not use_legal or legal[a]) and p > best_p:
            best = a
            best_p = p
    return best


@njit(cache=True)
def best_unexpanded(
    b: int,
    node: int,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    legal: np.ndarray,
    use_legal: bool,
) -> int:
    """The unexpanded (legal, if ``use_legal``) child with the largest prior; -1 if none."""
    best = -1
    best_p = np.float32(-1.0)
    for a in range(children_index.shape[2]):
        if children_index[b, node, a] < 0 and (not use_legal or legal[b, a]):
            p = children_prior[b, node, a]
            if p > best_p:
                best = a
                best_p = p
    return best


@njit(cache=True)
def normalize_priors(
    b: int,
    node: int,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    legal: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Turn the logits stored in ``children_prior[b, node]`` into priors, in place, and find
    the best unexpanded child (the node may already have expanded children)."""
    row = children_prior[b, node]
    best = softmax_into(row, row, False, row, scratch[b])
    if ints[FIRST_CHILD, b, node] >= 0:
        best = best_unexpanded(b, node, children_index, children_prior, legal, False)
    ints[BEST_UNEXPANDED, b, node] = best


@njit(cache=True)
def clear_argmax(logits: np.ndarray) -> int:
    """The largest logit's action, or -1 if another logit is within 1e-5 of it.

    Only logits that close can round to the same float32 prior, so otherwise this is the
    argmax of the priors (lowest action on ties) without computing them.
    """
    best = 0
    for a in range(1, logits.shape[0]):
        if logits[a] > logits[best]:
            best = a
    top = np.float64(logits[best])
    for a in range(logits.shape[0]):
        if a != best and np.float64(logits[a]) >= top - 1e-5:
            return -1
    return best


@njit(cache=True)
def mix_noise(
    b: int, gammas: np.ndarray, fraction: float, legal: np.ndarray, children_prior: np.ndarray
) -> None:
    """Root prior = (1 - fraction) * prior + fraction * Dirichlet noise, over legal actions.

    The Dirichlet sample is the Gamma draws normalized over the legal actions (uniform if
    they all underflowed to 0, possible for a tiny alpha).
    """
    num_actions = gammas.shape[1]
    total = 0.0
    count = 0
    for a in range(num_actions):
        if legal[b, a]:
            total += gammas[b, a]
            count += 1
    for a in range(num_actions):
        if legal[b, a]:
            noise = gammas[b, a] / total if total > 0.0 else 1.0 / count
            prior = np.float64(children_prior[b, 0, a])
            children_prior[b, 0, a] = (1.0 - fraction) * prior + fraction * noise


@njit(cache=True)
def init_roots(
    root_logits: np.ndarray,
    root_value: np.ndarray,
    legal: np.ndarray,
    noise: np.ndarray,
    noise_fraction: float,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Expand every root from its logits (softmax over legal actions), mix in root noise.

    ``noise`` [B, A] holds Gamma(alpha) draws, normalized here over each root's legal actions
    into Dirichlet(alpha) noise (read only when ``noise_fraction`` > 0).

    The root counts as visited once with its own network value (as mctx does), so the very
    first selection already weighs the priors. The min-max stats start empty.
    """
    batch, num_actions = root_logits.shape
    for b in range(batch):
        softmax_into(root_logits[b], legal[b], True, children_prior[b, 0], scratch[b])
        if noise_fraction > 0.0:
            mix_noise(b, noise, noise_fraction, legal, children_prior)
        for a in range(num_actions):
            children_index[b, 0, a] = -1
        ints[VISITS, b, 0] = 1
        ints[PARENT, b, 0] = -1
        ints[ACTION, b, 0] = -1
        ints[FIRST_CHILD, b, 0] = -1
        ints[NEXT_SIBLING, b, 0] = -1
        ints[BEST_UNEXPANDED, b, 0] = best_unexpanded(b, 0, children_index, children_prior, legal, True)
        floats[VALUE_SUM, b, 0] = root_value[b]
        floats[RAW_VALUE, b, 0] = root_value[b]
        floats[REWARD, b, 0] = 0.0
        minmax[b, 0] = np.inf
        minmax[b, 1] = -np.inf


@njit(cache=True)
def select_tree(
    b: int,
    rule: int,
    simulation: int,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    scratch: np.ndarray,
) -> tuple[int, int]:
    """Descend tree ``b`` from the root to an unexpanded edge; returns (node, action).

    A node's priors are computed only when a rule needs them: a descent that reaches a node
    with no expanded child takes the largest logit (what every rule picks then), so only
    nodes descended through twice pay for A exponentials. Gumbel only: ``root_score`` [B, A] holds
    g + logits, ``schedule[k, simulation]`` the visit count the root action must have when k
    actions are considered, ``num_considered`` [B] that k per tree.
    """
    node = 0
    while True:
        if ints[BEST_UNEXPANDED, b, node] == LOGITS_PENDING:
            if ints[FIRST_CHILD, b, node] < 0:
                # All children unvisited: every rule takes the largest prior.
                a = clear_argmax(children_prior[b, node])
                if a >= 0:
                    return node, a
            normalize_priors(b, node, children_index, children_prior, ints, legal, scratch)
        if rule == GUMBEL:
            if node == 0:
                k = num_considered[b]
                a = gumbel_root_action(
                    b,
                    schedule[k, simulation],
                    k,
                    children_index,
                    children_prior,
                    ints,
                    floats,
                    params,
                    root_score,
                    legal,
                )
            else:
                a = gumbel_interior_action(b, node, children_prior, ints, floats, params)
        else:
            a = puct_action(b, node, children_prior, ints, floats, minmax, params)
        child = children_index[b, node, a]
        if child < 0:
            return node, a
        node = child


@njit(cache=True)
def expand_tree(
    b: int,
    new_node: int,
    parent: int,
    action: int,
    reward: float,
    value: float,
    logits: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    legal: np.ndarray,
    params: np.ndarray,
) -> None:
    """Attach ``new_node`` under (parent, action) in tree ``b`` and back its value up.

    The new node gets the transition reward, its network value and its prior logits over all
    actions (the model knows no rules), kept raw until a descent first passes through the
    node (``normalize_priors``). The parent's best unexpanded child is recomputed (legal
    actions only at the root).
    """
    children_index[b, parent, action] = new_node
    ints[PARENT, b, new_node] = parent
    ints[ACTION, b, new_node] = action
    ints[NEXT_SIBLING, b, new_node] = ints[FIRST_CHILD, b, parent]
    ints[FIRST_CHILD, b, parent] = new_node
    if ints[BEST_UNEXPANDED, b, parent] == action:
        ints[BEST_UNEXPANDED, b, parent] = best_unexpanded(
            b, parent, children_index, children_prior, legal, parent == 0
        )
    ints[FIRST_CHILD, b, new_node] = -1
    ints[VISITS, b, new_node] = 0
    floats[VALUE_SUM, b, new_node] = 0.0
    floats[REWARD, b, new_node] = reward
    floats[RAW_VALUE, b, new_node] = value
    children_index[b, new_node, :] = -1
    children_prior[b, new_node, :] = logits
    ints[BEST_UNEXPANDED, b, new_node] = LOGITS_PENDING
    backup(b, new_node, value, params[DISC], ints, floats, minmax)


@njit(cache=True, inline="always")
def copy_row(src: np.ndarray, src_row: int, dst: np.ndarray, dst_row: int) -> None:
    """dst[dst_row] = src[src_row] for byte matrices (hidden states of any dtype)."""
    for i in range(src.shape[1]):
        dst[dst_row, i] = src[src_row, i]


@njit(cache=True, nogil=True)  # nogil: a background trainer's search runs beside self-play's
def select_leaves(
    rule: int,
    simulation: int,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    scratch: np.ndarray,
    leaf: np.ndarray,
    hidden_nodes: np.ndarray,
    hidden_out: np.ndarray,
) -> None:
    """Select an edge in every tree (``select_tree``) and gather the parents' hidden states.

    Writes per tree the node to expand from, the action to take there and b * N + node into
    ``leaf``. ``hidden_nodes`` [B * N, bytes] holds every node's hidden state as bytes and
    ``hidden_out`` [B, bytes] receives the selected parents' (skipped when 0 rows, e.g. for
    GPU tensors, which the driver gathers itself).
    """
    num_nodes = children_index.shape[1]
    for b in range(children_index.shape[0]):
        node, a = select_tree(
            b,
            rule,
            simulation,
            children_index,
            children_prior,
            ints,
            floats,
            minmax,
            params,
            legal,
            root_score,
            schedule,
            num_considered,
            scratch,
        )
        leaf[LEAF_PARENT, b] = node
        leaf[LEAF_ACTION, b] = a
        leaf[LEAF_FLAT, b] = b * num_nodes + node
        if hidden_out.shape[0] > 0:
            copy_row(hidden_nodes, b * num_nodes + node, hidden_out, b)


@njit(cache=True, nogil=True)  # nogil: a background trainer's search runs beside self-play's
def expand_and_backup(
    new_node: int,
    leaf: np.ndarray,
    leaf_reward: np.ndarray,
    leaf_value: np.ndarray,
    leaf_logits: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    legal: np.ndarray,
    params: np.ndarray,
    hidden_next: np.ndarray,
    hidden_nodes: np.ndarray,
) -> None:
    """Attach node ``new_node`` at each tree's selected edge (``expand_tree``) and store its
    hidden state (bytes ``hidden_next[b]`` into row b * N + new_node; skipped when 0 rows)."""
    num_nodes = children_index.shape[1]
    for b in range(children_index.shape[0]):
        if hidden_next.shape[0] > 0:
            copy_row(hidden_next, b, hidden_nodes, b * num_nodes + new_node)
        expand_tree(
            b,
            new_node,
            leaf[LEAF_PARENT, b],
            leaf[LEAF_ACTION, b],
            leaf_reward[b],
            np.float64(leaf_value[b]),
            leaf_logits[b],
            children_index,
            children_prior,
            ints,
            floats,
            minmax,
            legal,
            params,
        )


@njit(cache=True)
def backup(
    b: int,
    leaf: int,
    value: float,
    disc: float,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
) -> None:
    """Back ``value`` (leaf player's view) up from ``leaf`` to the root of tree ``b``.

    At each node: value_sum += g, visits += 1, the min-max stats see reward + disc * value,
    then g = reward + disc * g.
    """
    node = leaf
    g = value
    while node >= 0:
        floats[VALUE_SUM, b, node] += g
        ints[VISITS, b, node] += 1
        r = floats[REWARD, b, node]
        q = r + disc * (floats[VALUE_SUM, b, node] / ints[VISITS, b, node])
        minmax[b, 0] = min(minmax[b, 0], q)
        minmax[b, 1] = max(minmax[b, 1], q)
        g = r + disc * g
        node = ints[PARENT, b, node]


@njit(cache=True)
def read_root(
    children_index: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    disc: float,
    out_visits: np.ndarray,
    out_q: np.ndarray,
    out_root_value: np.ndarray,
) -> None:
    """Root children's visit counts and Q (root player's view, 0 if unvisited), root value."""
    batch, _, num_actions = children_index.shape
    for b in range(batch):
        out_root_value[b] = floats[VALUE_SUM, b, 0] / ints[VISITS, b, 0]
        for a in range(num_actions):
            child = children_index[b, 0, a]
            if child >= 0 and ints[VISITS, b, child] > 0:
                n = ints[VISITS, b, child]
                out_visits[b, a] = n
                out_q[b, a] = floats[REWARD, b, child] + disc * (floats[VALUE_SUM, b, child] / n)
            else:
                out_visits[b, a] = 0
                out_q[b, a] = 0.0

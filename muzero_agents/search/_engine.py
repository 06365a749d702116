"""The tree engine: Numba kernels that initialise roots, select leaves, expand and back up.

Every kernel works on all B trees of a ``Tree`` (layout in ``_tree``) and takes arrays only.
A search calls ``init_roots`` once, then ``step`` once per simulation and once more: each call
expands the leaves the previous one selected and selects the next ones, so a simulation costs
one kernel call. The selection rule is a pluggable piece: ``step`` descends with ``rule``:

- ``PUCT``: the paper's pUCT everywhere (``_puct``);
- ``GUMBEL``: sequential halving at the root, the deterministic improved-policy rule inside
  (``_gumbel_rules``).

Conventions (the paper's pseudocode, negamax for two players): value_sum is from the view of
the player to move at the node, reward is the reward of the transition into it from the
mover's view, and ``params[DISC]`` is the per-ply discount (``-discount`` for two players), so
Q of a child seen from its parent is reward + disc * value_sum / visits.

The kernels are compiled without Numba's reference counting (``_nrt=False``): they allocate
nothing, and every helper is inlined into them, so no array changes hands in a call that would
count references (two atomic operations per array and call, which cost more than the
selection itself). They release the GIL (``nogil``): a background trainer's search runs beside
self-play's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from muzero_agents.search._minmax import larger, smaller
from muzero_agents.search._numba_cache import NO_REFCOUNTING

from muzero_agents.search._fastexp import exp_nonpositive
from muzero_agents.search._gumbel_rules import gumbel_interior_action, gumbel_root_action
from muzero_agents.search._puct import puct_action
from muzero_agents.search._tree import DISC, LEAF_ACTION, LEAF_DEPTH, LEAF_FLAT, LEAF_PARENT

PUCT = 0
GUMBEL = 1
# best_unexpanded of a node whose children_prior row still holds the raw network logits.
LOGITS_PENDING = -2


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def normalize_priors(
    b: int,
    node: int,
    nodes: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    legal: np.ndarray,
    scratch: np.ndarray,
) -> None:
    """Turn the logits stored in ``children_prior[b, node]`` into priors, in place, and find
    the best unexpanded child (the node may already have expanded children)."""
    row = children_prior[b, node]
    best = softmax_into(row, row, False, row, scratch[b])
    if nodes[b, node].num_children > 0:
        best = best_unexpanded(b, node, children_index, children_prior, legal, False)
    nodes[b, node].best_unexpanded = best


@njit(cache=True, inline="always")
def clear_argmax(logits: np.ndarray, b: int, node: int) -> int:
    """The largest of the logits ``logits[b, node]``'s action, or -1 if another is within 1e-5 of it.

    Only logits that close can round to the same float32 prior, so otherwise this is the
    argmax of the priors (lowest action on ties) without computing them.
    """
    best = 0
    for a in range(1, logits.shape[2]):
        if logits[b, node, a] > logits[b, node, best]:
            best = a
    top = np.float64(logits[b, node, best])
    for a in range(logits.shape[2]):
        if a != best and np.float64(logits[b, node, a]) >= top - 1e-5:
            return -1
    return best


@njit(cache=True, inline="always")
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


@njit(cache=True, nogil=True, **NO_REFCOUNTING)
def init_roots(
    root_logits: np.ndarray,
    root_value: np.ndarray,
    legal: np.ndarray,
    noise: np.ndarray,
    noise_fraction: float,
    nodes: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
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
        root = nodes[b, 0]
        root.visits = 1
        root.parent = -1
        root.action = -1
        root.num_children = 0
        root.best_unexpanded = best_unexpanded(b, 0, children_index, children_prior, legal, True)
        root.value_sum = root_value[b]
        root.raw_value = root_value[b]
        root.reward = 0.0
        minmax[b, 0] = np.inf
        minmax[b, 1] = -np.inf


@njit(cache=True, inline="always")
def rule_action(
    b: int,
    node: int,
    rule: int,
    simulation: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    num_legal: np.ndarray,
    scratch: np.ndarray,
) -> tuple[int, int]:
    """The rule's (action, child node or -1 if unexpanded) at ``node`` of tree ``b``, whose
    priors are computed. Gumbel only: ``root_score`` [B, A] holds g + logits,
    ``schedule[k, simulation]`` the visit count the root action must have when k actions are
    considered, ``num_considered`` [B] that k per tree, ``num_legal`` [B] the legal root actions."""
    if rule == GUMBEL:
        if node == 0:
            k = num_considered[b]
            a = gumbel_root_action(
                b,
                schedule[k, simulation],
                num_legal[b],
                nodes,
                children,
                children_index,
                children_prior,
                params,
                root_score,
                legal,
            )
            return a, children_index[b, 0, a]
        return gumbel_interior_action(b, node, nodes, children, children_prior, params, scratch)
    return puct_action(b, node, nodes, children, children_prior, minmax, params)


@njit(cache=True, inline="always")
def descend(
    b: int,
    node: int,
    depth: int,
    rule: int,
    simulation: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    num_legal: np.ndarray,
    scratch: np.ndarray,
    path: np.ndarray,
) -> tuple[int, int]:
    """One level of tree ``b``'s descent: record ``node`` at ``path[b, depth]`` and choose its
    edge, (action, child node or -1 if the edge is unexpanded).

    A node's priors are computed only when a rule needs them: a descent that reaches a node
    with no expanded child takes the largest logit (what every rule picks then), so only
    nodes descended through twice pay for A exponentials.
    """
    path[b, depth] = node
    if nodes[b, node].best_unexpanded == LOGITS_PENDING:
        if nodes[b, node].num_children == 0:
            # All children unvisited: every rule takes the largest prior.
            a = clear_argmax(children_prior, b, node)
            if a >= 0:
                return a, -1
        normalize_priors(b, node, nodes, children_index, children_prior, legal, scratch)
    return rule_action(
        b,
        node,
        rule,
        simulation,
        nodes,
        children,
        children_index,
        children_prior,
        minmax,
        params,
        legal,
        root_score,
        schedule,
        num_considered,
        num_legal,
        scratch,
    )


@njit(cache=True, inline="always")
def select_tree(
    b: int,
    rule: int,
    simulation: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    num_legal: np.ndarray,
    scratch: np.ndarray,
    path: np.ndarray,
) -> tuple[int, int, int]:
    """Descend tree ``b`` from the root to an unexpanded edge: (node, action, node's depth),
    with the nodes passed in ``path[b, :depth + 1]``."""
    node = 0
    depth = 0
    while True:
        a, child = descend(
            b,
            node,
            depth,
            rule,
            simulation,
            nodes,
            children,
            children_index,
            children_prior,
            minmax,
            params,
            legal,
            root_score,
            schedule,
            num_considered,
            num_legal,
            scratch,
            path,
        )
        if child < 0:
            return node, a, depth
        node = child
        depth += 1


@njit(cache=True, inline="always")
def expand_tree(
    b: int,
    new_node: int,
    leaf: np.ndarray,
    reward: float,
    value: float,
    logits: np.ndarray,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    legal: np.ndarray,
) -> None:
    """Attach ``new_node`` under tree ``b``'s selected edge (``leaf[:, b]``).

    The new node gets the transition reward, its network value and its prior logits over all
    actions (``logits[b]``: the model knows no rules), kept raw until a descent first passes
    through the node (``normalize_priors``). The parent's best unexpanded child is
    recomputed (legal actions only at the root).
    """
    parent = leaf[LEAF_PARENT, b]
    action = leaf[LEAF_ACTION, b]
    children_index[b, parent, action] = new_node
    children[b, parent, nodes[b, parent].num_children] = new_node
    nodes[b, parent].num_children += 1
    if nodes[b, parent].best_unexpanded == action:
        nodes[b, parent].best_unexpanded = best_unexpanded(
            b, parent, children_index, children_prior, legal, parent == 0
        )
    node = nodes[b, new_node]
    node.parent = parent
    node.action = action
    node.num_children = 0
    node.visits = 0
    node.value_sum = 0.0
    node.reward = reward
    node.raw_value = value
    node.best_unexpanded = LOGITS_PENDING
    for a in range(children_index.shape[2]):
        children_index[b, new_node, a] = -1
        children_prior[b, new_node, a] = logits[b, a]


@njit(cache=True, inline="always")
def backup(
    b: int,
    new_node: int,
    depth: int,
    value: float,
    disc: float,
    nodes: np.ndarray,
    path: np.ndarray,
    minmax: np.ndarray,
) -> None:
    """Back ``value`` (the new node's player's view) up from ``new_node``, child of
    ``path[b, depth]``, through ``path[b, depth], ..., path[b, 0]`` (the root).

    At each node: value_sum += g, visits += 1, its Q = reward + disc * value is stored and
    seen by the min-max stats, then g = reward + disc * g.
    """
    lo = minmax[b, 0]
    hi = minmax[b, 1]
    node = new_node
    g = value
    for d in range(depth, -2, -1):
        record = nodes[b, node]
        record.value_sum += g
        record.visits += 1
        r = record.reward
        q = r + disc * (record.value_sum / record.visits)
        record.q = q
        lo = smaller(lo, q)
        hi = larger(hi, q)
        g = r + disc * g
        if d >= 0:
            node = path[b, d]
    minmax[b, 0] = lo
    minmax[b, 1] = hi


@njit(cache=True, inline="always")
def copy_row(src: np.ndarray, src_row: int, dst: np.ndarray, dst_row: int) -> None:
    """dst[dst_row] = src[src_row] for byte matrices (hidden states of any dtype)."""
    for i in range(src.shape[1]):
        dst[dst_row, i] = src[src_row, i]


@njit(cache=True, nogil=True, **NO_REFCOUNTING)
def step(
    rule: int,
    new_node: int,
    select: bool,
    leaf_reward: np.ndarray,
    leaf_value: np.ndarray,
    leaf_logits: np.ndarray,
    hidden_next: np.ndarray,
    nodes: np.ndarray,
    children: np.ndarray,
    children_index: np.ndarray,
    children_prior: np.ndarray,
    path: np.ndarray,
    minmax: np.ndarray,
    leaf: np.ndarray,
    scratch: np.ndarray,
    params: np.ndarray,
    legal: np.ndarray,
    root_score: np.ndarray,
    schedule: np.ndarray,
    num_considered: np.ndarray,
    num_legal: np.ndarray,
    hidden_nodes: np.ndarray,
    hidden_out: np.ndarray,
) -> None:
    """One simulation's tree work in every tree b: expand, back up, then select.

    If ``new_node`` > 0, node ``new_node`` is attached at the edge in ``leaf`` with the
    network's outputs for it (``leaf_reward``, ``leaf_value``, ``leaf_logits`` [B, A] and the
    next hidden state as bytes ``hidden_next[b]``, stored as row b * N + new_node of
    ``hidden_nodes``; skipped when 0 rows) and its value backed up. If ``select``, the next
    edge is selected (``select_tree``, simulation index ``new_node``) into ``leaf`` and its
    parent's hidden state copied into ``hidden_out[b]`` (skipped when 0 rows, e.g. for GPU
    tensors, which the driver gathers itself).
    """
    num_nodes = nodes.shape[1]
    disc = params[DISC]
    for b in range(nodes.shape[0]):
        if new_node > 0:
            if hidden_next.shape[0] > 0:
                copy_row(hidden_next, b, hidden_nodes, b * num_nodes + new_node)
            value = np.float64(leaf_value[b])
            expand_tree(
                b, new_node, leaf, leaf_reward[b], value, leaf_logits,
                nodes, children, children_index, children_prior, legal,
            )  # fmt: skip
            backup(b, new_node, leaf[LEAF_DEPTH, b], value, disc, nodes, path, minmax)
        if select:
            node, a, depth = select_tree(
                b, rule, new_node, nodes, children, children_index, children_prior, minmax,
                params, legal, root_score, schedule, num_considered, num_legal, scratch, path,
            )  # fmt: skip
            leaf[LEAF_PARENT, b] = node
            leaf[LEAF_ACTION, b] = a
            leaf[LEAF_FLAT, b] = b * num_nodes + node
            leaf[LEAF_DEPTH, b] = depth
            if hidden_out.shape[0] > 0:
                copy_row(hidden_nodes, b * num_nodes + node, hidden_out, b)


@njit(cache=True, nogil=True, **NO_REFCOUNTING)
def read_root(
    nodes: np.ndarray,
    children_index: np.ndarray,
    out_visits: np.ndarray,
    out_q: np.ndarray,
    out_root_value: np.ndarray,
) -> None:
    """Root children's visit counts and Q (root player's view, 0 if unvisited), root value."""
    batch, _, num_actions = children_index.shape
    for b in range(batch):
        out_root_value[b] = nodes[b, 0].value_sum / nodes[b, 0].visits
        for a in range(num_actions):
            child = children_index[b, 0, a]
            if child >= 0 and nodes[b, child].visits > 0:
                out_visits[b, a] = nodes[b, child].visits
                out_q[b, a] = nodes[b, child].q
            else:
                out_visits[b, a] = 0
                out_q[b, a] = 0.0

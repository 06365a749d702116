"""The paper's pUCT selection rule (MuZero), as a Numba function over one node of tree b.

score(a) = Qnorm(a) + prior(a) * sqrt(N) / (1 + n(a)) * (c1 + log((N + c2 + 1) / c2))

with N the node's visits (its own first visit included), Q(a) = reward + disc * value of the
child, min-max normalized over the values seen in the tree (raw while max <= min), and
Qnorm = 0 for unvisited children. Ties go to the lowest action.

Only expanded children (the node's ``children`` list) and the best unexpanded child are scored:
every unexpanded child scores ``c * prior`` with the same c > 0, so the one with the largest
prior (lowest action on ties) beats all others. This makes selection O(expanded children)
instead of O(A), with exactly the same choice as scoring all A actions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from muzero_agents.search._tree import NUM_PARAMS, PB_C_BASE, PB_C_INIT


@njit(cache=True, inline="always")
def better(score: float, action: int, best_score: float, best: int) -> bool:
    """Whether (score, action) beats the best so far: higher score, then lower action."""
    if best < 0 or score > best_score:
        return True
    return score == best_score and action < best


@njit(cache=True, inline="always")
def puct_action(
    b: int,
    node: int,
    nodes: np.ndarray,
    children: np.ndarray,
    children_prior: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
) -> tuple[int, int]:
    """The pUCT choice at ``node`` of tree ``b``: (action, child node or -1 if unexpanded).

    Reads each child's Q as its backup stored it, so a child costs two divisions; the min-max
    range is read once per node.
    """
    parent_visits = nodes[b, node].visits
    entry = NUM_PARAMS + 2 * parent_visits
    if entry + 1 < params.shape[0]:  # precomputed (make_params)
        pb_c = params[entry]
        sqrt_parent = params[entry + 1]
    else:
        pb_c_base = params[PB_C_BASE]
        pb_c = math.log((parent_visits + pb_c_base + 1.0) / pb_c_base) + params[PB_C_INIT]
        sqrt_parent = math.sqrt(parent_visits)
    lo = minmax[b, 0]
    hi = minmax[b, 1]
    spread = hi > lo
    width = hi - lo
    # The best unexpanded child first (it scores c * prior + Q 0), then the expanded ones.
    best = nodes[b, node].best_unexpanded
    best_child = -1
    best_score = -np.inf
    if best >= 0:
        best_score = pb_c * (sqrt_parent / 1) * np.float64(children_prior[b, node, best]) + 0.0
    for k in range(nodes[b, node].num_children):
        child = children[b, node, k]
        a = nodes[b, child].action
        q = nodes[b, child].q
        if spread:
            q = (q - lo) / width
        score = (
            pb_c * (sqrt_parent / (nodes[b, child].visits + 1)) * np.float64(children_prior[b, node, a]) + q
        )
        if score > best_score or (score == best_score and a < best) or best < 0:
            best = a
            best_child = child
            best_score = score
    return best, best_child

"""The paper's pUCT selection rule (MuZero), as a Numba function over one node of tree b.

score(a) = Qnorm(a) + prior(a) * sqrt(N) / (1 + n(a)) * (c1 + log((N + c2 + 1) / c2))

with N the node's visits (its own first visit included), Q(a) = reward + disc * value of the
child, min-max normalized over the values seen in the tree (raw while max <= min), and
Qnorm = 0 for unvisited children. Ties go to the lowest action.

Only expanded children (the node's sibling list) and the best unexpanded child are scored:
every unexpanded child scores ``c * prior`` with the same c > 0, so the one with the largest
prior (lowest action on ties) beats all others. This makes selection O(expanded children)
instead of O(A), with exactly the same choice as scoring all A actions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from muzero_agents.search._tree import (
    ACTION,
    BEST_UNEXPANDED,
    DISC,
    FIRST_CHILD,
    NEXT_SIBLING,
    NUM_PARAMS,
    PB_C_BASE,
    PB_C_INIT,
    REWARD,
    VALUE_SUM,
    VISITS,
)


@njit(cache=True, inline="always")
def better(score: float, action: int, best_score: float, best: int) -> bool:
    """Whether (score, action) beats the best so far: higher score, then lower action."""
    if best < 0 or score > best_score:
        return True
    return score == best_score and action < best


@njit(cache=True, inline="always")
def normalized(value: float, minmax: np.ndarray, b: int) -> float:
    """Min-max normalize ``value`` with tree ``b``'s stats; the raw value while max <= min."""
    lo = minmax[b, 0]
    hi = minmax[b, 1]
    if hi > lo:
        return (value - lo) / (hi - lo)
    return value


@njit(cache=True)
def puct_action(
    b: int,
    node: int,
    children_prior: np.ndarray,
    ints: np.ndarray,
    floats: np.ndarray,
    minmax: np.ndarray,
    params: np.ndarray,
) -> int:
    """The pUCT choice at ``node`` of tree ``b`` (see the module docstring)."""
    disc = params[DISC]
    parent_visits = ints[VISITS, b, node]
    entry = NUM_PARAMS + 2 * parent_visits
    if entry + 1 < params.shape[0]:  # precomputed (make_params)
        pb_c = params[entry]
        sqrt_parent = params[entry + 1]
    else:
        pb_c_base = params[PB_C_BASE]
        pb_c = math.log((parent_visits + pb_c_base + 1.0) / pb_c_base) + params[PB_C_INIT]
        sqrt_parent = math.sqrt(parent_visits)
    best = -1
    best_score = -np.inf
    child = ints[FIRST_CHILD, b, node]
    while child >= 0:
        a = ints[ACTION, b, child]
        n = ints[VISITS, b, child]
        q = floats[REWARD, b, child] + disc * (floats[VALUE_SUM, b, child] / n)
        score = pb_c * (sqrt_parent / (n + 1)) * np.float64(children_prior[b, node, a])
        score = score + normalized(q, minmax, b)
        if better(score, a, best_score, best):
            best = a
            best_score = score
        child = ints[NEXT_SIBLING, b, child]
    a = ints[BEST_UNEXPANDED, b, node]
    if a >= 0:
        score = pb_c * (sqrt_parent / 1) * np.float64(children_prior[b, node, a]) + 0.0
        if better(score, a, best_score, best):
            best = a
    return best

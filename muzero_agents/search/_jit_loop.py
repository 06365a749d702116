"""The whole simulation loop in Numba, for recurrent functions that are Numba ``@njit`` functions.

A Python ``recurrent_fn`` costs a round trip through the interpreter per simulation (a few
microseconds, most of a search at B = 1). When the model itself is compiled with Numba (a
known simulator for planning, or the stub the benchmarks use to time the tree alone), the
loop below runs select, the model, and expand/backup without leaving machine code. Numba
cannot cache code that takes a function argument, so this loop compiles once per process and
recurrent function (about a second), then runs at full speed.

The recurrent function is called as ``recurrent(hidden [B, *S], action int64 [B])`` and must
return ``(reward [B], value [B], prior_logits [B, A], next_hidden [B, *S])`` as arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from muzero_agents.search._engine import expand_tree, select_tree
from muzero_agents.search._tree import LEAF_ACTION, LEAF_FLAT, LEAF_PARENT


@njit
def run_simulations(
    recurrent,
    rule: int,
    num_simulations: int,
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
    gathered: np.ndarray,
) -> None:
    """``num_simulations`` simulations on initialised roots; ``hidden_nodes`` is [B * N, *S]."""
    batch, num_nodes, num_actions = children_index.shape
    for sim in range(num_simulations):
        actions = np.empty(batch, dtype=np.int64)
        for b in range(batch):
            node, a = select_tree(
                b,
                rule,
                sim,
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
            actions[b] = a
            gathered[b] = hidden_nodes[b * num_nodes + node]
        reward, value, logits, next_hidden = recurrent(gathered, actions)
        if reward.shape[0] != batch or value.shape[0] != batch:
            raise ValueError("recurrent_fn must return reward and value of shape [B]")
        if logits.shape[0] != batch or logits.shape[1] != num_actions:
            raise ValueError("recurrent_fn must return prior_logits of shape [B, A]")
        if next_hidden.shape != gathered.shape:
            raise ValueError("recurrent_fn must return next_hidden shaped like root_embedding")
        new_node = sim + 1
        for b in range(batch):
            hidden_nodes[b * num_nodes + new_node] = next_hidden[b]
            expand_tree(
                b,
                new_node,
                leaf[LEAF_PARENT, b],
                leaf[LEAF_ACTION, b],
                np.float64(reward[b]),
                np.float64(value[b]),
                logits[b],
                children_index,
                children_prior,
                ints,
                floats,
                minmax,
                legal,
                params,
            )


_LOOPS: dict[int, tuple] = {}  # id(recurrent) -> (recurrent, its specialised loop)
_MAX_LOOPS = 16


def loop_for(recurrent):
    """``run_simulations`` with ``recurrent`` compiled in as a constant.

    Numba types a function argument on every call (it builds the dispatcher's type, repr
    included): about 10 us, a quarter of a B = 1 search. A loop per recurrent function that
    closes over it takes only arrays, so its calls cost what any kernel call costs.
    """
    entry = _LOOPS.get(id(recurrent))
    if entry is not None and entry[0] is recurrent:
        return entry[1]
    if len(_LOOPS) >= _MAX_LOOPS:  # keeps the recurrent functions alive: bound them
        _LOOPS.clear()

    @njit
    def loop(
        rule, num_simulations, children_index, children_prior, ints, floats, minmax, params,
        legal, root_score, schedule, num_considered, scratch, leaf, hidden_nodes, gathered,
    ):  # fmt: skip
        run_simulations(
            recurrent, rule, num_simulations, children_index, children_prior, ints, floats, minmax,
            params, legal, root_score, schedule, num_considered, scratch, leaf, hidden_nodes, gathered,
        )  # fmt: skip

    _LOOPS[id(recurrent)] = (recurrent, loop)
    return loop

"""The simulation loop shared by all searches: one select, one network call, one expand.

Per simulation: one Numba call selects an edge in all B trees, the B parent embeddings are
gathered with one indexed copy, ``recurrent_fn`` runs once for all B trees, and one Numba call
attaches the new nodes and backs their values up. Nothing is allocated per simulation beyond
what ``recurrent_fn`` itself returns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from muzero_agents.search import _engine as engine
from muzero_agents.search import _jit_loop as jit_loop
from muzero_agents.search import _pipeline as pipeline
from muzero_agents.search._checks import check_step
from muzero_agents.search._embeddings import get_store
from muzero_agents.search._tree import (
    C_SCALE,
    C_VISIT,
    DISC,
    LEAF_ACTION,
    LEAF_FLAT,
    NUM_PARAMS,
    PB_C_BASE,
    PB_C_INIT,
    Tree,
    get_tree,
)

RecurrentFn = Callable[[Any, np.ndarray], tuple]

# Trees per search from which the kernels spread the trees over Numba's threads (off: see
# set_parallel).
PARALLEL_MIN_BATCH = 1 << 62
# Trees per search from which half the trees' kernels run beside the other half's network call.
PIPELINE_MIN_BATCH = 1 << 62
_NO_BYTES = np.zeros((0, 0), dtype=np.uint8)
# Placeholders for the Gumbel-only kernel inputs when searching with pUCT.
_NO_SCHEDULE = np.zeros((1, 1), dtype=np.int32)
_NO_CONSIDERED = np.zeros(1, dtype=np.int32)


def set_parallel(min_batch: int | None) -> None:
    """Spread the trees of searches with B >= ``min_batch`` over Numba's threads (prange).

    Off (None) by default: on 2 quiet cores it made B = 256 searches 1.6-1.9x faster, but on
    2 cores shared with other busy processes OpenMP's barriers made them 50x slower. Turn it
    on for machines the search has to itself; ``numba.set_num_threads`` sets the threads.
    """
    global PARALLEL_MIN_BATCH
    if min_batch is not None and min_batch < 1:
        raise ValueError(f"min_batch must be >= 1 or None, got {min_batch}")
    PARALLEL_MIN_BATCH = (1 << 62) if min_batch is None else int(min_batch)


def set_pipeline(min_batch: int | None) -> None:
    """Overlap the tree with the network for searches with B >= ``min_batch`` (``_pipeline``).

    The trees' kernels of one half of the batch then run on a worker thread while
    ``recurrent_fn`` evaluates the other half, so on two or more cores the tree costs almost
    nothing beside the network. Same results as the serial loop. Applies to Python
    ``recurrent_fn`` with numpy or CPU torch hidden states; None (the default) turns it off.

    It pays where the tree is a large part of a search and the batch is large: measured on
    2 quiet cores with the default MLP at B = 256, 362 actions ran 1.12-1.19x faster, while
    with 2 or 9 actions it was mostly 0.8-0.95x and at B = 16 0.33-0.54x, because two
    half-batch network calls cost more than one full one (``benchmarks/results/search/``).
    Not combined with ``set_parallel`` (its kernels already use the other cores).
    """
    global PIPELINE_MIN_BATCH
    if min_batch is not None and min_batch < 2:
        raise ValueError(f"min_batch must be >= 2 or None, got {min_batch}")
    PIPELINE_MIN_BATCH = (1 << 62) if min_batch is None else int(min_batch)


def is_numba_function(fn: Any) -> bool:
    """Whether ``fn`` is a Numba-compiled function (then the loop runs in ``_jit_loop``)."""
    return isinstance(fn, numba.core.dispatcher.Dispatcher)


def make_params(
    discount: float,
    two_player: bool,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    c_visit: float = 50.0,
    c_scale: float = 0.1,
    max_visits: int = 0,
) -> np.ndarray:
    """The float64 settings vector the kernels read (per-ply discount negated for 2 players),
    with pUCT's factors for parent visit counts up to ``max_visits`` (see ``_tree``).

    Cached per settings: the same array is returned again, so the kernels must not write it.
    """
    return _cached_params(
        float(discount),
        bool(two_player),
        float(pb_c_init),
        float(pb_c_base),
        float(c_visit),
        float(c_scale),
        int(max_visits),
    )


@functools.lru_cache(maxsize=64)
def _cached_params(
    discount: float,
    two_player: bool,
    pb_c_init: float,
    pb_c_base: float,
    c_visit: float,
    c_scale: float,
    max_visits: int,
) -> np.ndarray:
    params = np.zeros(NUM_PARAMS + 2 * (max_visits + 1), dtype=np.float64)
    params[DISC] = -discount if two_player else discount
    params[PB_C_INIT] = pb_c_init
    params[PB_C_BASE] = pb_c_base
    params[C_VISIT] = c_visit
    params[C_SCALE] = c_scale
    for visits in range(max_visits + 1):  # the same arithmetic as _puct's fallback
        params[NUM_PARAMS + 2 * visits] = math.log((visits + pb_c_base + 1.0) / pb_c_base) + pb_c_init
        params[NUM_PARAMS + 2 * visits + 1] = math.sqrt(visits)
    return params


def search(
    rule: int,
    logits: np.ndarray,
    values: np.ndarray,
    legal: np.ndarray,
    root_embedding: Any,
    recurrent_fn: RecurrentFn,
    num_simulations: int,
    params: np.ndarray,
    noise: np.ndarray | None = None,
    noise_fraction: float = 0.0,
    root_score: np.ndarray | None = None,
    schedule: np.ndarray = _NO_SCHEDULE,
    num_considered: np.ndarray = _NO_CONSIDERED,
) -> Tree:
    """Initialise B roots and run ``num_simulations`` simulations; returns the filled tree.

    The returned tree is the cached one for this shape: read it before the next search.
    """
    batch, num_actions = logits.shape
    num_nodes = num_simulations + 1
    tree = get_tree(batch, num_nodes, num_actions)
    store = get_store(root_embedding, num_nodes)
    noise = tree.scratch if noise is None else noise  # unread when noise_fraction == 0
    root_score = tree.scratch if root_score is None else root_score  # unread by pUCT
    parallel = batch >= PARALLEL_MIN_BATCH and numba.get_num_threads() > 1
    select = engine.select_leaves_parallel if parallel else engine.select_leaves
    expand = engine.expand_and_backup_parallel if parallel else engine.expand_and_backup
    with store.context():
        store.write(0, root_embedding)
        engine.init_roots(
            logits,
            values,
            legal,
            noise,
            noise_fraction,
            tree.children_index,
            tree.children_prior,
            tree.ints,
            tree.floats,
            tree.minmax,
            tree.scratch,
        )
        if is_numba_function(recurrent_fn):
            if store.is_torch:
                raise TypeError("a Numba recurrent_fn needs a numpy root_embedding, not a tensor")
            jit_loop.loop_for(recurrent_fn)(
                rule,
                num_simulations,
                tree.children_index,
                tree.children_prior,
                tree.ints,
                tree.floats,
                tree.minmax,
                params,
                legal,
                root_score,
                schedule,
                num_considered,
                tree.scratch,
                tree.leaf,
                store.flat_nodes,
                store.gathered,
            )
            return tree
        if batch >= PIPELINE_MIN_BATCH and store.on_cpu and not parallel:
            kernels = (select, expand)
            halves = tuple(
                pipeline.Half(
                    lo, hi, tree, store, kernels, rule, params, legal, root_score, schedule, num_considered
                )
                for lo, hi in ((0, batch // 2), (batch // 2, batch))
            )
            pipeline.run_pipelined(halves, recurrent_fn, num_simulations)
            return tree
        for sim in range(num_simulations):
            select(
                rule,
                sim,
                tree.children_index,
                tree.children_prior,
                tree.ints,
                tree.floats,
                tree.minmax,
                params,
                legal,
                root_score,
                schedule,
                num_considered,
                tree.scratch,
                tree.leaf,
                store.nodes_bytes,
                store.gathered_bytes,
            )
            embedding = store.gathered if store.on_cpu else store.gather(tree.leaf[LEAF_FLAT])
            outputs = recurrent_fn(embedding, tree.leaf[LEAF_ACTION].copy())
            reward, value, next_logits, next_embedding = check_step(outputs, batch, num_actions)
            next_bytes = store.as_bytes(next_embedding)
            if next_bytes is None:
                store.write(sim + 1, next_embedding)
                next_bytes = _NO_BYTES
            expand(
                sim + 1,
                tree.leaf,
                reward,
                value,
                next_logits,
                tree.children_index,
                tree.children_prior,
                tree.ints,
                tree.floats,
                tree.minmax,
                legal,
                params,
                next_bytes,
                store.nodes_bytes,
            )
    return tree


def read_root(tree: Tree, disc: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visit counts int32 [B, A], Q float32 [B, A], root value float32 [B]) of the roots."""
    batch, _, num_actions = tree.shape
    visits = np.empty((batch, num_actions), dtype=np.int32)
    q_values = np.empty((batch, num_actions), dtype=np.float32)
    root_value = np.empty(batch, dtype=np.float32)
    engine.read_root(tree.children_index, tree.ints, tree.floats, disc, visits, q_values, root_value)
    return visits, q_values, root_value


def no_uniforms(batch: int) -> np.ndarray:
    """Placeholder uniforms for a greedy (temperature 0) action choice."""
    return np.zeros(batch, dtype=np.float64)

"""The simulation loop shared by both searches: one network call and one Numba call per simulation.

``recurrent_fn`` runs once for all B trees on the edges the previous kernel call selected, then
one Numba call (``_engine.step``) attaches the new nodes, backs their values up, selects the next
edges in all B trees and gathers the B parents' hidden states. Nothing is allocated per
simulation beyond what ``recurrent_fn`` itself returns, and the kernel's arrays are gathered
once per search (``kernel_arrays``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from muzero_agents.search import _engine as engine
from muzero_agents.search._checks import check_step
from muzero_agents.search._embeddings import EmbeddingStore, get_store
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

_NO_BYTES = np.zeros((0, 0), dtype=np.uint8)
# Placeholders for the network outputs of the first kernel call, which expands nothing.
_NO_OUTPUT = np.zeros(0, dtype=np.float32)
_NO_LOGITS = np.zeros((0, 0), dtype=np.float32)
# Placeholders for the inputs that only one rule, or only root noise, reads.
_NO_NOISE = np.zeros((1, 1), dtype=np.float64)
_NO_SCHEDULE = np.zeros((1, 1), dtype=np.int32)
_NO_CONSIDERED = np.zeros(1, dtype=np.int32)


@dataclass(frozen=True, slots=True)  # slots: read every simulation
class Roots:
    """The B roots a search starts from.

    Attributes:
        logits: float32 [B, A], the root policy logits.
        value: float64 [B], the root values.
        legal: bool [B, A], the root's legal actions (only these are expanded and selected).
        embedding: [B, *S] hidden states, numpy array or torch tensor.
        noise: float64 [B, A] Gamma(alpha) draws, turned into Dirichlet noise over the legal
            actions (read only when ``noise_fraction`` > 0).
        noise_fraction: the share of the root prior replaced by that noise (0: none).
    """

    logits: np.ndarray
    value: np.ndarray
    legal: np.ndarray
    embedding: Any
    noise: np.ndarray = field(default_factory=lambda: _NO_NOISE)
    noise_fraction: float = 0.0


@dataclass(frozen=True, slots=True)  # slots: read every simulation
class Rule:
    """How the trees choose the edge to expand.

    Attributes:
        kind: ``_engine.PUCT`` or ``_engine.GUMBEL``.
        params: float64 settings vector (``make_params``); the kernels only read it.
        root_score: float64 [B, A], Gumbel's g + logits at the root (unread by pUCT).
        schedule: int32 [k + 1, S], Gumbel's sequential-halving visit targets per number of
            considered actions k and simulation (``gumbel.gumbel_schedule``).
        num_considered: int32 [B], the number of root actions Gumbel considers per tree.
        num_legal: int32 [B], the number of legal root actions per tree (Gumbel rescales the
            completed Q over them, the considered ones and the others).
    """

    kind: int
    params: np.ndarray
    root_score: np.ndarray = field(default_factory=lambda: _NO_NOISE)
    schedule: np.ndarray = field(default_factory=lambda: _NO_SCHEDULE)
    num_considered: np.ndarray = field(default_factory=lambda: _NO_CONSIDERED)
    num_legal: np.ndarray = field(default_factory=lambda: _NO_CONSIDERED)


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


def search(roots: Roots, recurrent_fn: RecurrentFn, num_simulations: int, rule: Rule) -> Tree:
    """Initialise the B roots and run ``num_simulations`` simulations; returns the filled tree.

    The returned tree is the cached one for this shape: read it before the next search.
    """
    batch, num_actions = roots.logits.shape
    tree = get_tree(batch, num_simulations + 1, num_actions)
    store = get_store(roots.embedding, num_simulations + 1)
    with store.context():
        initialise(tree, store, roots)
        arrays = kernel_arrays(tree, store, rule, roots.legal)
        engine.step(rule.kind, 0, True, _NO_OUTPUT, _NO_OUTPUT, _NO_LOGITS, _NO_BYTES, *arrays)
        for simulation in range(1, num_simulations + 1):
            outputs = evaluate(tree, store, roots.legal, recurrent_fn, simulation)
            engine.step(rule.kind, simulation, simulation < num_simulations, *outputs, *arrays)
    return tree


def initialise(tree: Tree, store: EmbeddingStore, roots: Roots) -> None:
    """Expand every root from its logits (root noise mixed in) and store its hidden state."""
    store.write(0, roots.embedding)
    engine.init_roots(
        roots.logits,
        roots.value,
        roots.legal,
        roots.noise,
        roots.noise_fraction,
        tree.nodes,
        tree.children_index,
        tree.children_prior,
        tree.minmax,
        tree.scratch,
    )


def kernel_arrays(tree: Tree, store: EmbeddingStore, rule: Rule, legal: np.ndarray) -> tuple:
    """The arrays every ``_engine.step`` call of a search takes after the network's outputs."""
    return (
        tree.nodes,
        tree.children,
        tree.children_index,
        tree.children_prior,
        tree.path,
        tree.minmax,
        tree.leaf,
        tree.scratch,
        rule.params,
        legal,
        rule.root_score,
        rule.schedule,
        rule.num_considered,
        rule.num_legal,
        store.nodes_bytes,
        store.gathered_bytes,
    )


def evaluate(
    tree: Tree, store: EmbeddingStore, legal: np.ndarray, recurrent_fn: RecurrentFn, new_node: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``recurrent_fn`` on the selected edges: (reward, value, logits, next hidden state as
    bytes for the kernel, or no rows once stored here as node ``new_node``)."""
    embedding = store.gathered if store.on_cpu else store.gather(tree.leaf[LEAF_FLAT])
    outputs = recurrent_fn(embedding, tree.leaf[LEAF_ACTION].copy())
    reward, value, logits, next_embedding = check_step(outputs, *legal.shape)
    next_bytes = store.as_bytes(next_embedding)
    if next_bytes is None:  # a copy the kernel cannot make (GPU, or another dtype or layout)
        store.write(new_node, next_embedding)
        next_bytes = _NO_BYTES
    return reward, value, logits, next_bytes


def read_root(tree: Tree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(visit counts int32 [B, A], Q float32 [B, A], root value float32 [B]) of the roots."""
    batch, _, num_actions = tree.shape
    visits = np.empty((batch, num_actions), dtype=np.int32)
    q_values = np.empty((batch, num_actions), dtype=np.float32)
    root_value = np.empty(batch, dtype=np.float32)
    engine.read_root(tree.nodes, tree.children_index, visits, q_values, root_value)
    return visits, q_values, root_value

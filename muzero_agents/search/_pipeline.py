"""The simulation loop with the tree work of one half of the trees hidden behind the network
call of the other half (two cores: the network on the caller's thread, the tree on a worker).

The serial loop alternates select -> network -> expand for all B trees, so the tree's kernels
add to the network's time. Here the B trees are split into two halves that are one step apart:
while ``recurrent_fn`` evaluates half 0's leaves on the calling thread, a worker thread backs
up half 1's previous simulation and selects its next leaves (the kernels release the GIL),
and the other way round. The trees are independent, so the result is exactly the serial one;
only the order of the work changes. With the network as the longer step, the tree costs only
the per-half hand-over. ``recurrent_fn`` is called twice per simulation, with B/2 trees each.

Only for CPU hidden-state stores (the kernels gather and store the states themselves) and
Python recurrent functions. ``recurrent_fn``'s outputs are copied before the worker reads them,
so a function that returns the same buffers every call is safe. The kernels take views of the
half's rows, which Numba compiles (and caches) once more for their non-contiguous layout.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from muzero_agents.search._checks import check_step
from muzero_agents.search._embeddings import EmbeddingStore
from muzero_agents.search._tree import LEAF_ACTION, Tree

_NO_BYTES = np.zeros((0, 0), dtype=np.uint8)
_WORKER: ThreadPoolExecutor | None = None
_WORKER_LOCK = threading.Lock()


def worker() -> ThreadPoolExecutor:
    """The one background thread that runs tree kernels (started on first use)."""
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="muzero-search-tree")
        return _WORKER


def _forget_worker_after_fork() -> None:
    """A forked child has no copy of the worker thread: start a new one when it needs it."""
    global _WORKER, _WORKER_LOCK
    _WORKER = None
    _WORKER_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_worker_after_fork)


class Half:
    """The kernel arguments of trees ``lo:hi``: views into the shared tree and store."""

    def __init__(
        self,
        lo: int,
        hi: int,
        tree: Tree,
        store: EmbeddingStore,
        kernels: tuple[Callable, Callable],
        rule: int,
        params: np.ndarray,
        legal: np.ndarray,
        root_score: np.ndarray,
        schedule: np.ndarray,
        num_considered: np.ndarray,
    ) -> None:
        num_nodes = tree.shape[1]
        self.rows = slice(lo, hi)
        self.size = hi - lo
        self.store = store
        self.select_kernel, self.expand_kernel = kernels
        self.rule, self.params, self.schedule = rule, params, schedule
        self.children_index = tree.children_index[lo:hi]
        self.children_prior = tree.children_prior[lo:hi]
        self.ints = tree.ints[:, lo:hi]
        self.floats = tree.floats[:, lo:hi]
        self.minmax = tree.minmax[lo:hi]
        self.scratch = tree.scratch[lo:hi]
        self.leaf = tree.leaf[:, lo:hi]
        self.legal = legal[lo:hi]
        self.root_score = root_score[lo:hi]
        # Gumbel's is per tree; pUCT passes a one-entry placeholder
        per_tree = num_considered.shape[0] == tree.shape[0]
        self.num_considered = num_considered[lo:hi] if per_tree else num_considered
        self.nodes_bytes = store.nodes_bytes[lo * num_nodes : hi * num_nodes]
        self.gathered_bytes = store.gathered_bytes[lo:hi]
        self.gathered = store.gathered[lo:hi]

    def select(self, simulation: int) -> None:
        self.select_kernel(
            self.rule,
            simulation,
            self.children_index,
            self.children_prior,
            self.ints,
            self.floats,
            self.minmax,
            self.params,
            self.legal,
            self.root_score,
            self.schedule,
            self.num_considered,
            self.scratch,
            self.leaf,
            self.nodes_bytes,
            self.gathered_bytes,
        )

    def evaluate(self, recurrent_fn: Callable, num_actions: int, new_node: int) -> tuple:
        """The network on this half's leaves, on the calling thread: (reward, value, logits,
        hidden-state bytes) as private copies, the states stored already if they need a cast."""
        outputs = recurrent_fn(self.gathered, self.leaf[LEAF_ACTION].copy())
        reward, value, logits, next_embedding = check_step(outputs, self.size, num_actions)
        next_bytes = self.store.as_bytes(next_embedding, self.rows)
        if next_bytes is None:  # here, inside the caller's torch.inference_mode
            self.store.write(new_node, next_embedding, self.rows)
            next_bytes = _NO_BYTES
        return reward.copy(), value.copy(), logits.copy(), next_bytes.copy()

    def expand(self, new_node: int, evaluated: tuple) -> None:
        reward, value, logits, next_bytes = evaluated
        self.expand_kernel(
            new_node,
            self.leaf,
            reward,
            value,
            logits,
            self.children_index,
            self.children_prior,
            self.ints,
            self.floats,
            self.minmax,
            self.legal,
            self.params,
            next_bytes,
            self.nodes_bytes,
        )

    def expand_then_select(self, new_node: int, evaluated: tuple | None, simulation: int) -> None:
        """Back up the last evaluation (if any), then select for ``simulation`` (if < 0: none)."""
        if evaluated is not None:
            self.expand(new_node, evaluated)
        if simulation >= 0:
            self.select(simulation)


def wait(future: Future | None) -> None:
    """Block until the worker's job is done; re-raises its exception."""
    if future is not None:
        future.result()


def run_pipelined(halves: tuple[Half, Half], recurrent_fn: Callable, num_simulations: int) -> None:
    """All simulations of both halves, half 1 one step behind half 0 (module docstring).

    Simulation s adds node s + 1. The worker is always waited for before this returns or
    raises, so no kernel runs on the tree after the search has ended.
    """
    first, second = halves
    num_actions = first.children_prior.shape[2]
    pool = worker()
    first.select(0)
    pending: Future | None = None
    evaluated_second = None
    try:
        for sim in range(num_simulations):
            # worker: back up half 1's simulation sim - 1 (node sim), select its simulation sim
            pending = pool.submit(second.expand_then_select, sim, evaluated_second, sim)
            evaluated_first = first.evaluate(recurrent_fn, num_actions, sim + 1)
            wait(pending)
            # worker: back up half 0's simulation sim (node sim + 1), select its next one
            following = sim + 1 if sim + 1 < num_simulations else -1
            pending = pool.submit(first.expand_then_select, sim + 1, evaluated_first, following)
            evaluated_second = second.evaluate(recurrent_fn, num_actions, sim + 1)
            wait(pending)
        pending = None
        second.expand(num_simulations, evaluated_second)
    finally:
        if pending is not None:
            pending.exception()  # let the worker finish; the caller's error takes precedence

"""The batched search tree as a struct of arrays, preallocated and reused across searches.

One ``Tree`` holds B trees of N nodes with A actions each. Node 0 is the root; simulation s
(0-based) adds node s + 1 to every tree. Each node is one 64-byte record of ``NODE``
(``Tree.nodes``, aligned to cache lines): what a selection reads about a child (its action,
visits and Q) costs one cache line, and a tree's nodes are contiguous. Each node also lists its
expanded children by node index (``Tree.children``), so a selection reads them without chasing
pointers, and a descent records its path (``Tree.path``), so a backup knows every node it
updates before it loads any. The named properties (``visit_count``, ``value_sum``, ...) give
Python-side readers the fields as [B, N] views.

Searches of the same shape reuse one ``Tree`` (``get_tree``), so a search allocates nothing per
simulation and, after the first search of a shape, almost nothing per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, fields

import numpy as np

# One node's record. ``q`` is the node's Q from its parent's view, reward + disc * value_sum /
# visits, stored by each backup so that a selection divides nothing to read it.
NODE = np.dtype(
    {
        "names": [
            "value_sum",
            "reward",
            "q",
            "raw_value",
            "visits",
            "parent",
            "action",
            "num_children",
            "best_unexpanded",
        ],
        "formats": ["f8", "f8", "f8", "f8", "i4", "i4", "i4", "i4", "i4"],
        "offsets": [0, 8, 16, 24, 32, 36, 40, 44, 48],
        "itemsize": 64,
    }
)
CACHE_LINE = 64
# Row indices into Tree.leaf (the edge each tree expands next).
LEAF_PARENT, LEAF_ACTION, LEAF_FLAT, LEAF_DEPTH = range(4)
# Entries of the float64 settings vector the kernels take. After them, pUCT's exploration
# factors per parent visit count N: params[NUM_PARAMS + 2N] = c1 + log((N + c2 + 1) / c2) and
# params[NUM_PARAMS + 2N + 1] = sqrt(N), so that selection takes no log or sqrt per node.
DISC, PB_C_INIT, PB_C_BASE, C_VISIT, C_SCALE = range(5)
NUM_PARAMS = 5


@dataclass(frozen=True, slots=True)  # slots: the search loop reads these fields every simulation
class Tree:
    """The arrays of B trees with N nodes and A actions each (shapes below).

    Attributes:
        nodes: ``NODE`` records [B, N], fields ``value_sum`` (sum of backed-up values, from the
            view of the player to move at the node), ``reward`` (of the transition into the
            node, mover's view), ``q`` (reward + disc * value_sum / visits, the node's Q from
            its parent's view), ``raw_value`` (the network's value of the node), ``visits``,
            ``parent`` (-1 at the root), ``action`` (the action from the parent, -1 at the
            root), ``num_children`` (how many children are expanded) and ``best_unexpanded``
            (the not yet expanded child with the largest prior, lowest action on ties, -1 if
            none, legal actions only at the root; -2, ``_engine.LOGITS_PENDING``, while the
            node's priors are still raw logits).
        children: int32 [B, N, K], the node indices of each node's expanded children in the
            order they were expanded (the first ``num_children`` entries), K = min(A, N - 1).
        children_index: int32 [B, N, A], the child node reached by each action, -1 if not
            expanded.
        children_prior: float32 [B, N, A], the prior of each action (the raw logits until a
            descent first passes through the node).
        path: int32 [B, N], the nodes of each tree's current descent, root first.
        minmax: float64 [B, 2], per tree, the smallest and largest Q backed up so far (the
            paper's MinMaxStats; +inf and -inf while empty).
        scratch: float64 [B, A], working space for the kernels.
        leaf: int64 [4, B], the edge each tree expands next, rows ``LEAF_PARENT`` (node),
            ``LEAF_ACTION`` (action), ``LEAF_FLAT`` (b * N + node, the parent's row among all
            nodes' hidden states) and ``LEAF_DEPTH`` (the parent's depth, its place in ``path``).
    """

    nodes: np.ndarray
    children: np.ndarray
    children_index: np.ndarray
    children_prior: np.ndarray
    path: np.ndarray
    minmax: np.ndarray
    scratch: np.ndarray
    leaf: np.ndarray

    @property
    def visit_count(self) -> np.ndarray:
        """int32 [B, N]: the visit count of each node."""
        return self.nodes["visits"]

    @property
    def parent(self) -> np.ndarray:
        """int32 [B, N]: each node's parent, -1 at the root."""
        return self.nodes["parent"]

    @property
    def action_from_parent(self) -> np.ndarray:
        """int32 [B, N]: the action that led to each node, -1 at the root."""
        return self.nodes["action"]

    @property
    def value_sum(self) -> np.ndarray:
        """float64 [B, N]: the sum of values backed up into each node (its mover's view)."""
        return self.nodes["value_sum"]

    @property
    def reward(self) -> np.ndarray:
        """float64 [B, N]: the reward of the transition into each node (its mover's view)."""
        return self.nodes["reward"]

    @property
    def raw_value(self) -> np.ndarray:
        """float64 [B, N]: the network's value of each node."""
        return self.nodes["raw_value"]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, N, A)."""
        return self.children_index.shape

    @property
    def nbytes(self) -> int:
        """Memory held by the tree arrays, in bytes."""
        return sum(getattr(self, field.name).nbytes for field in fields(self))


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buffer = np.empty(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buffer.ctypes.data % CACHE_LINE
    return buffer[start : start + nbytes].view(dtype).reshape(shape)


def new_tree(batch: int, num_nodes: int, num_actions: int) -> Tree:
    """Fresh arrays for B = ``batch`` trees of ``num_nodes`` nodes with ``num_actions`` actions."""
    nodes = aligned_empty((batch, num_nodes), NODE)
    nodes[...] = np.zeros((), dtype=NODE)  # padding bytes included
    return Tree(
        nodes=nodes,
        children=np.full((batch, num_nodes, max(1, min(num_actions, num_nodes - 1))), -1, dtype=np.int32),
        children_index=np.full((batch, num_nodes, num_actions), -1, dtype=np.int32),
        children_prior=np.zeros((batch, num_nodes, num_actions), dtype=np.float32),
        path=np.zeros((batch, num_nodes), dtype=np.int32),
        minmax=np.zeros((batch, 2), dtype=np.float64),
        scratch=np.zeros((batch, num_actions), dtype=np.float64),
        leaf=np.zeros((4, batch), dtype=np.int64),
    )


_CACHES = threading.local()  # one cache per thread: concurrent searches never share arrays
_CACHE_SIZE = 3


def get_tree(batch: int, num_nodes: int, num_actions: int) -> Tree:
    """A cached ``Tree`` for this shape (least recently used of ``_CACHE_SIZE`` is dropped).

    Each thread has its own cache (a background trainer's Reanalyze search runs beside
    self-play's), so two searches of one shape on two threads get separate arrays.
    """
    cache: OrderedDict[tuple[int, int, int], Tree] = _CACHES.__dict__.setdefault("trees", OrderedDict())
    key = (batch, num_nodes, num_actions)
    tree = cache.pop(key, None)
    if tree is None:
        tree = new_tree(batch, num_nodes, num_actions)
    cache[key] = tree
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return tree

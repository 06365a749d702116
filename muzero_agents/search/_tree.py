"""The batched search tree as a struct of arrays, preallocated and reused across searches.

One ``Tree`` holds B trees of N nodes with A actions each. Node 0 is the root; simulation s
(0-based) adds node s + 1 to every tree. The per-node integers and floats live in two slabs
(``ints``, ``floats``) so that a kernel call passes few arguments; the module's row constants
(``VISITS``, ``VALUE_SUM``, ...) index them inside the kernels, and the named properties
(``visit_count``, ``value_sum``, ...) give Python-side readers the same rows as [B, N] views.

Searches of the same shape reuse one ``Tree`` (``get_tree``), so a search allocates nothing per
simulation and, after the first search of a shape, almost nothing per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, fields

import numpy as np

# Row indices into Tree.ints and Tree.floats (also used inside the kernels).
VISITS, PARENT, ACTION, FIRST_CHILD, NEXT_SIBLING, BEST_UNEXPANDED = range(6)
VALUE_SUM, REWARD, RAW_VALUE = range(3)
# Row indices into Tree.leaf (the edge each tree expands next).
LEAF_PARENT, LEAF_ACTION, LEAF_FLAT = range(3)
# Entries of the float64 settings vector the kernels take. After them, pUCT's exploration
# factors per parent visit count N: params[NUM_PARAMS + 2N] = c1 + log((N + c2 + 1) / c2) and
# params[NUM_PARAMS + 2N + 1] = sqrt(N), so that selection takes no log or sqrt per node.
DISC, PB_C_INIT, PB_C_BASE, C_VISIT, C_SCALE = range(5)
NUM_PARAMS = 5


@dataclass(frozen=True, slots=True)  # slots: the search loop reads these fields every simulation
class Tree:
    """The arrays of B trees with N nodes and A actions each (shapes below).

    Attributes:
        ints: int32 [6, B, N], per node, rows ``VISITS`` (visit count), ``PARENT`` (-1 at the
            root), ``ACTION`` (the action from the parent, -1 at the root), ``FIRST_CHILD`` and
            ``NEXT_SIBLING`` (a linked list of the node's expanded children, -1 ends it),
            ``BEST_UNEXPANDED`` (the not yet expanded child with the largest prior, lowest
            action on ties, -1 if none, legal actions only at the root; -2, ``_engine.LOGITS_PENDING``,
            while the node's priors are still raw logits).
        floats: float64 [3, B, N], per node, rows ``VALUE_SUM`` (sum of backed-up values, from
            the view of the player to move at the node), ``REWARD`` (of the transition into the
            node, mover's view), ``RAW_VALUE`` (the network's value of the node).
        children_index: int32 [B, N, A], the child node reached by each action, -1 if not
            expanded.
        children_prior: float32 [B, N, A], the prior of each action (the raw logits until a
            descent first passes through the node).
        minmax: float64 [B, 2], per tree, the smallest and largest Q backed up so far (the
            paper's MinMaxStats; +inf and -inf while empty).
        scratch: float64 [B, A], working space for the kernels.
        leaf: int64 [3, B], the edge each tree expands next, rows ``LEAF_PARENT`` (node),
            ``LEAF_ACTION`` (action) and ``LEAF_FLAT`` (b * N + node, the parent's row among
            all nodes' hidden states).
    """

    ints: np.ndarray
    floats: np.ndarray
    children_index: np.ndarray
    children_prior: np.ndarray
    minmax: np.ndarray
    scratch: np.ndarray
    leaf: np.ndarray

    @property
    def visit_count(self) -> np.ndarray:
        """int32 [B, N]: the visit count of each node."""
        return self.ints[VISITS]

    @property
    def parent(self) -> np.ndarray:
        """int32 [B, N]: each node's parent, -1 at the root."""
        return self.ints[PARENT]

    @property
    def action_from_parent(self) -> np.ndarray:
        """int32 [B, N]: the action that led to each node, -1 at the root."""
        return self.ints[ACTION]

    @property
    def value_sum(self) -> np.ndarray:
        """float64 [B, N]: the sum of values backed up into each node (its mover's view)."""
        return self.floats[VALUE_SUM]

    @property
    def reward(self) -> np.ndarray:
        """float64 [B, N]: the reward of the transition into each node (its mover's view)."""
        return self.floats[REWARD]

    @property
    def raw_value(self) -> np.ndarray:
        """float64 [B, N]: the network's value of each node."""
        return self.floats[RAW_VALUE]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, N, A)."""
        return self.children_index.shape

    @property
    def nbytes(self) -> int:
        """Memory held by the tree arrays, in bytes."""
        return sum(getattr(self, field.name).nbytes for field in fields(self))


def new_tree(batch: int, num_nodes: int, num_actions: int) -> Tree:
    """Fresh arrays for B = ``batch`` trees of ``num_nodes`` nodes with ``num_actions`` actions."""
    return Tree(
        ints=np.full((6, batch, num_nodes), -1, dtype=np.int32),
        floats=np.zeros((3, batch, num_nodes), dtype=np.float64),
        children_index=np.full((batch, num_nodes, num_actions), -1, dtype=np.int32),
        children_prior=np.zeros((batch, num_nodes, num_actions), dtype=np.float32),
        minmax=np.zeros((batch, 2), dtype=np.float64),
        scratch=np.zeros((batch, num_actions), dtype=np.float64),
        leaf=np.zeros((3, batch), dtype=np.int64),
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

"""The batched search tree as a struct of arrays, preallocated and reused across searches.

One ``Tree`` holds B trees of N nodes with A actions each. Node 0 is the root; simulation s
(0-based) adds node s + 1 to every tree.

Per node ``[B, N]`` (views into two slabs, so a kernel call passes few arguments):
  ints (int32):  visit_count, parent (-1 at the root), action_from_parent (-1 at the root),
                 first_child / next_sibling (a linked list of the node's expanded children,
                 -1 ends it), best_unexpanded (the not yet expanded child with the largest
                 prior, lowest action on ties, -1 if none; legal actions only at the root)
  floats (f64):  value_sum (player to move's view), reward (of the transition into the node,
                 mover's view), raw_value (the network's value of the node)
Per node and action ``[B, N, A]``: children_index (int32, -1 = not expanded) and
children_prior (float32). Per tree: minmax ``[B, 2]`` (float64, the paper's MinMaxStats,
+inf/-inf while empty). ``scratch`` ``[B, A]`` float64 is working space for the kernels.

Searches of the same shape reuse one ``Tree`` (``get_tree``), so a search allocates nothing per
simulation and, after the first search of a shape, almost nothing per call.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

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


class Tree:
    """Arrays of B trees with ``num_nodes`` nodes and ``num_actions`` actions each."""

    def __init__(self, batch: int, num_nodes: int, num_actions: int) -> None:
        self.ints = np.full((6, batch, num_nodes), -1, dtype=np.int32)
        self.floats = np.zeros((3, batch, num_nodes), dtype=np.float64)
        self.children_index = np.full((batch, num_nodes, num_actions), -1, dtype=np.int32)
        self.children_prior = np.zeros((batch, num_nodes, num_actions), dtype=np.float32)
        self.minmax = np.zeros((batch, 2), dtype=np.float64)
        self.scratch = np.zeros((batch, num_actions), dtype=np.float64)
        # Selection's output, reused: parent node, action, b * N + parent.
        self.leaf = np.zeros((3, batch), dtype=np.int64)

    visit_count = property(lambda self: self.ints[VISITS])
    parent = property(lambda self: self.ints[PARENT])
    action_from_parent = property(lambda self: self.ints[ACTION])
    value_sum = property(lambda self: self.floats[VALUE_SUM])
    reward = property(lambda self: self.floats[REWARD])
    raw_value = property(lambda self: self.floats[RAW_VALUE])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(B, N, A)."""
        return self.children_index.shape

    @property
    def nbytes(self) -> int:
        """Memory held by the tree arrays, in bytes."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


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
        tree = Tree(batch, num_nodes, num_actions)
    cache[key] = tree
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return tree

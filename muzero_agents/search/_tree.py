"""The batched search tree as a struct of arrays, preallocated and reused across searches.

One ``Tree`` holds B trees of N nodes with A actions each (layout in ``_kernels``). Searches of
the same shape reuse the same arrays (``get_tree``), so a search allocates nothing per
simulation and, after the first search of a shape, almost nothing per call.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class Tree:
    """Arrays of B trees with ``num_nodes`` nodes and ``num_actions`` actions each."""

    def __init__(self, batch: int, num_nodes: int, num_actions: int) -> None:
        shape = (batch, num_nodes)
        self.visit_count = np.zeros(shape, dtype=np.int32)
        self.value_sum = np.zeros(shape, dtype=np.float64)
        self.reward = np.zeros(shape, dtype=np.float64)
        self.parent = np.full(shape, -1, dtype=np.int32)
        self.action_from_parent = np.full(shape, -1, dtype=np.int32)
        self.children_index = np.full((batch, num_nodes, num_actions), -1, dtype=np.int32)
        self.children_prior = np.zeros((batch, num_nodes, num_actions), dtype=np.float32)
        self.minmax = np.zeros((batch, 2), dtype=np.float64)
        # Per-simulation outputs of selection, reused.
        self.leaf_parent = np.zeros(batch, dtype=np.int32)
        self.leaf_action = np.zeros(batch, dtype=np.int64)
        self.leaf_flat = np.zeros(batch, dtype=np.int64)
        self.all_legal = np.ones((batch, num_actions), dtype=np.bool_)

    @property
    def nbytes(self) -> int:
        """Memory held by the tree arrays, in bytes."""
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


_CACHE: OrderedDict[tuple[int, int, int], Tree] = OrderedDict()
_CACHE_SIZE = 3


def get_tree(batch: int, num_nodes: int, num_actions: int) -> Tree:
    """A cached ``Tree`` for this shape (least recently used of ``_CACHE_SIZE`` is dropped).

    Not thread-safe: concurrent searches of the same shape in one process would share arrays.
    """
    key = (batch, num_nodes, num_actions)
    tree = _CACHE.pop(key, None)
    if tree is None:
        tree = Tree(batch, num_nodes, num_actions)
    _CACHE[key] = tree
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return tree

"""A binary sum tree over priorities: O(log N) updates and proportional sampling.

Leaf ``i`` holds the priority of item ``i``; every inner node holds the sum of its two
children, so the root is the total and a mass drawn uniformly in ``[0, total)`` finds its leaf
with probability proportional to that leaf's value. The loops are numba kernels: a batch of
updates or searches costs one call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["SumTree"]


@njit(cache=True)
def _tree_set(tree: np.ndarray, first_leaf: int, leaves: np.ndarray, values: np.ndarray) -> None:
    """Write leaf values and refresh their ancestors' sums (duplicates: the last write wins)."""
    for i in range(leaves.size):
        node = leaves[i] + first_leaf
        tree[node] = values[i]
        node //= 2
        while node >= 1:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node //= 2


@njit(cache=True)
def _tree_find(tree: np.ndarray, first_leaf: int, mass: np.ndarray) -> np.ndarray:
    """For each mass in [0, total), the leaf whose cumulative-sum interval holds it."""
    out = np.empty(mass.size, dtype=np.int64)
    for i in range(mass.size):
        node, rest = 1, mass[i]
        while node < first_leaf:
            left = tree[2 * node]
            # rounding can push `rest` past the left sum of a node whose right side is empty
            if rest >= left and tree[2 * node + 1] > 0.0:
                rest -= left
                node = 2 * node + 1
            else:
                node = 2 * node
        out[i] = node - first_leaf
    return out


class SumTree:
    """Binary sum tree over ``size`` leaves (float64), all 0 or ``leaf_values`` at the start."""

    def __init__(self, size: int, leaf_values: np.ndarray | None = None) -> None:
        self.leaves = 1 << max(0, int(size - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)
        if leaf_values is not None:  # build bottom-up in one pass
            self.tree[self.leaves : self.leaves + leaf_values.size] = leaf_values
            width = self.leaves // 2
            while width >= 1:
                children = self.tree[2 * width : 4 * width]
                self.tree[width : 2 * width] = children[0::2] + children[1::2]
                width //= 2

    @property
    def total(self) -> float:
        """The sum of all leaves."""
        return float(self.tree[1])

    def get(self, leaf: np.ndarray) -> np.ndarray:
        """The values of the given leaves."""
        return self.tree[leaf + self.leaves]

    def set(self, leaf: np.ndarray, value: np.ndarray) -> None:
        """Set leaves to values (a scalar or one per leaf); the last write to a leaf wins."""
        leaf = np.ascontiguousarray(leaf, dtype=np.int64).reshape(-1)
        value = np.broadcast_to(np.asarray(value, dtype=np.float64), leaf.shape)
        _tree_set(self.tree, self.leaves, leaf, np.ascontiguousarray(value))

    def find(self, mass: np.ndarray) -> np.ndarray:
        """Leaves whose cumulative-sum interval contains ``mass``; never a zero-priority leaf."""
        return _tree_find(self.tree, self.leaves, np.ascontiguousarray(mass, dtype=np.float64))

"""The search tree's named arrays: the shapes and dtypes its docstring promises, and views."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from muzero_agents.search import _tree
from muzero_agents.search._tree import Tree, get_tree, new_tree


def test_fields_have_the_documented_shapes_and_dtypes():
    batch, nodes, actions = 3, 5, 7
    tree = new_tree(batch, nodes, actions)
    expected = {
        "nodes": ((batch, nodes), _tree.NODE),
        "children": ((batch, nodes, 4), np.int32),  # min(A, N - 1) children per node at most
        "children_index": ((batch, nodes, actions), np.int32),
        "children_prior": ((batch, nodes, actions), np.float32),
        "path": ((batch, nodes), np.int32),
        "minmax": ((batch, 2), np.float64),
        "scratch": ((batch, actions), np.float64),
        "leaf": ((4, batch), np.int64),
    }
    assert [field.name for field in dataclasses.fields(Tree)] == list(expected)
    for name, (shape, dtype) in expected.items():
        array = getattr(tree, name)
        assert array.shape == shape and array.dtype == dtype, name
        assert name in Tree.__doc__
    assert tree.shape == (batch, nodes, actions)
    assert tree.nbytes == sum(getattr(tree, name).nbytes for name in expected)


def test_node_records_fill_cache_lines():
    """One node is one 64-byte record, and a tree's records start on a cache line."""
    tree = new_tree(2, 9, 3)
    assert _tree.NODE.itemsize == 64
    assert tree.nodes.ctypes.data % 64 == 0 and tree.nodes.flags.c_contiguous
    assert set(_tree.NODE.names) >= {"value_sum", "reward", "q", "raw_value", "visits", "parent", "action"}
    for name in _tree.NODE.names:
        assert f"``{name}``" in Tree.__doc__, name


def test_named_node_views_alias_the_records():
    tree = new_tree(2, 4, 3)
    views = {
        "visit_count": "visits",
        "parent": "parent",
        "action_from_parent": "action",
        "value_sum": "value_sum",
        "reward": "reward",
        "raw_value": "raw_value",
    }
    for name, field in views.items():
        view = getattr(tree, name)
        assert view.shape == (2, 4)
        view[1, 2] = 7
        assert tree.nodes[1, 2][field] == 7, name


def test_fields_cannot_be_rebound_and_trees_are_cached_per_shape():
    tree = get_tree(2, 4, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.minmax = np.zeros((2, 2))
    assert get_tree(2, 4, 3) is tree
    assert get_tree(2, 5, 3) is not tree

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
        "ints": ((6, batch, nodes), np.int32),
        "floats": ((3, batch, nodes), np.float64),
        "children_index": ((batch, nodes, actions), np.int32),
        "children_prior": ((batch, nodes, actions), np.float32),
        "minmax": ((batch, 2), np.float64),
        "scratch": ((batch, actions), np.float64),
        "leaf": ((3, batch), np.int64),
    }
    assert [field.name for field in dataclasses.fields(Tree)] == list(expected)
    for name, (shape, dtype) in expected.items():
        array = getattr(tree, name)
        assert array.shape == shape and array.dtype == dtype, name
        assert name in Tree.__doc__
    assert tree.shape == (batch, nodes, actions)
    assert tree.nbytes == sum(getattr(tree, name).nbytes for name in expected)


def test_named_node_views_alias_the_slabs():
    tree = new_tree(2, 4, 3)
    views = {
        "visit_count": (tree.ints, _tree.VISITS),
        "parent": (tree.ints, _tree.PARENT),
        "action_from_parent": (tree.ints, _tree.ACTION),
        "value_sum": (tree.floats, _tree.VALUE_SUM),
        "reward": (tree.floats, _tree.REWARD),
        "raw_value": (tree.floats, _tree.RAW_VALUE),
    }
    for name, (slab, row) in views.items():
        view = getattr(tree, name)
        assert view.shape == (2, 4)
        view[1, 2] = 7
        assert slab[row, 1, 2] == 7, name


def test_fields_cannot_be_rebound_and_trees_are_cached_per_shape():
    tree = get_tree(2, 4, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.minmax = np.zeros((2, 2))
    assert get_tree(2, 4, 3) is tree
    assert get_tree(2, 5, 3) is not tree

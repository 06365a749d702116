"""Hidden-state storage for the nodes of B trees: ``[B, N, *S]``, torch tensors or numpy arrays.

The store keeps the embedding of every node so that a simulation gathers the B parent
embeddings with one indexed copy into a reused buffer and writes the B new embeddings with one
slice copy (node ``s + 1`` in every tree). Torch is used only when the caller passes torch
tensors, so the search itself never imports it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class EmbeddingStore:
    """Embeddings of all nodes of B trees, with a reused gather buffer."""

    def __init__(self, root: Any, num_nodes: int) -> None:
        self.is_torch = _is_torch(root)
        self.batch = root.shape[0]
        self.num_nodes = num_nodes
        self.state_shape = tuple(root.shape[1:])
        if self.is_torch:
            self._init_torch(root)
        else:
            self.nodes = np.empty((self.batch, num_nodes, *self.state_shape), dtype=root.dtype)
            self.gathered = np.empty((self.batch, *self.state_shape), dtype=root.dtype)
            self._flat_view = self.nodes.reshape(self.batch * num_nodes, *self.state_shape)
        self.signature = self.describe(root, num_nodes)

    def _init_torch(self, root: Any) -> None:
        import torch

        self._torch = torch
        shape = self.state_shape
        kw = dict(dtype=root.dtype, device=root.device)
        with torch.inference_mode():
            self.nodes = torch.empty((self.batch, self.num_nodes, *shape), **kw)
            self.gathered = torch.empty((self.batch, *shape), **kw)
            self._flat_view = self.nodes.view(self.batch * self.num_nodes, *shape)
            self._index = torch.empty(self.batch, dtype=torch.int64, device=root.device)
        self._on_cpu = root.device.type == "cpu"

    @staticmethod
    def describe(root: Any, num_nodes: int) -> tuple:
        """Key that says whether a store can hold ``root``-like embeddings for this many nodes."""
        device = str(root.device) if _is_torch(root) else "numpy"
        return (type(root).__module__, str(root.dtype), device, tuple(root.shape), num_nodes)

    def context(self) -> contextlib.AbstractContextManager:
        """``torch.inference_mode()`` for torch stores (no autograd bookkeeping), else nothing.

        The store's tensors are made and touched only inside it, so they may be inference tensors.
        """
        if self.is_torch:
            return self._torch.inference_mode()
        return contextlib.nullcontext()

    def set_root(self, root: Any) -> None:
        """Store the root embeddings as node 0."""
        self.write(0, root)

    def write(self, node: int, embedding: Any) -> None:
        """Store ``embedding`` [B, *S] as node ``node`` of every tree."""
        if tuple(embedding.shape) != (self.batch, *self.state_shape):
            raise ValueError(
                f"recurrent_fn returned next_embedding of shape {tuple(embedding.shape)}; "
                f"expected {(self.batch, *self.state_shape)} like root_embedding"
            )
        if self.is_torch:
            self.nodes[:, node].copy_(embedding)
        else:
            self.nodes[:, node] = embedding

    def gather(self, flat_index: np.ndarray) -> Any:
        """Embeddings of nodes ``flat_index`` (= b * N + node) into the reused buffer."""
        if self.is_torch:
            torch = self._torch
            if self._on_cpu:
                index = torch.from_numpy(flat_index)
            else:
                index = self._index
                index.copy_(torch.from_numpy(flat_index), non_blocking=False)
            torch.index_select(self._flat_view, 0, index, out=self.gathered)
        else:
            np.take(self._flat_view, flat_index, axis=0, out=self.gathered)
        return self.gathered


_STORES: dict[tuple, EmbeddingStore] = {}
_MAX_STORES = 3


def get_store(root: Any, num_nodes: int) -> EmbeddingStore:
    """A cached store for embeddings like ``root`` (same type, dtype, device, shape)."""
    key = EmbeddingStore.describe(root, num_nodes)
    store = _STORES.pop(key, None)
    if store is None:
        store = EmbeddingStore(root, num_nodes)
    _STORES[key] = store
    while len(_STORES) > _MAX_STORES:
        _STORES.pop(next(iter(_STORES)))
    return store

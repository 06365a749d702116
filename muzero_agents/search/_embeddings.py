"""Hidden-state storage for the nodes of B trees: ``[B, N, *S]``, torch tensors or numpy arrays.

The store keeps the hidden state of every node so that a simulation gathers the B parents'
states into one reused buffer and writes the B new states into node s + 1 of every tree. On
the CPU (numpy, or torch CPU tensors, which share their memory with numpy) both copies happen
inside the Numba kernels on byte views (``nodes_bytes``, ``gathered_bytes``), so they cost no
extra Python call; on a GPU the driver uses ``index_select`` and ``copy_`` on the device.
Torch is imported only when the caller passes torch tensors.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import numpy as np

_NO_BYTES = np.zeros((0, 0), dtype=np.uint8)


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


class EmbeddingStore:
    """Hidden states of all nodes of B trees, with a reused gather buffer."""

    def __init__(self, root: Any, num_nodes: int) -> None:
        self.is_torch = _is_torch(root)
        self.batch = root.shape[0]
        self.num_nodes = num_nodes
        self.state_shape = tuple(root.shape[1:])
        self.expected_shape = (self.batch, *self.state_shape)
        self.on_cpu = True
        if self.is_torch:
            self._init_torch(root)
        else:
            self.dtype = np.dtype(root.dtype)
            self.nodes = np.empty((self.batch, num_nodes, *self.state_shape), dtype=self.dtype)
            self.gathered = np.empty(self.expected_shape, dtype=self.dtype)
            self.flat_nodes = self.nodes.reshape(self.batch * num_nodes, *self.state_shape)
        self.nodes_bytes, self.gathered_bytes = _NO_BYTES, _NO_BYTES
        if self.on_cpu:
            nodes = self.nodes.numpy() if self.is_torch else self.nodes
            gathered = self.gathered.numpy() if self.is_torch else self.gathered
            self.nodes_bytes = nodes.reshape(self.batch * num_nodes, -1).view(np.uint8)
            self.gathered_bytes = gathered.reshape(self.batch, -1).view(np.uint8)

    def _init_torch(self, root: Any) -> None:
        import torch

        self._torch = torch
        self.dtype = root.dtype
        shape = self.state_shape
        kw = {"dtype": root.dtype, "device": root.device}
        with torch.inference_mode():
            self.nodes = torch.empty((self.batch, self.num_nodes, *shape), **kw)
            self.gathered = torch.empty((self.batch, *shape), **kw)
            self.flat_nodes = self.nodes.view(self.batch * self.num_nodes, *shape)
            self._index = torch.empty(self.batch, dtype=torch.int64, device=root.device)
        self.on_cpu = root.device.type == "cpu"

    @staticmethod
    def describe(root: Any, num_nodes: int) -> tuple:
        """Key that says whether a store can hold ``root``-like hidden states for N nodes."""
        device = root.device if _is_torch(root) else None
        return (type(root), root.dtype, device, tuple(root.shape), num_nodes)

    def context(self) -> contextlib.AbstractContextManager:
        """``torch.inference_mode()`` for torch stores (no autograd bookkeeping), else nothing.

        The store's tensors are made and touched only inside it, so they may be inference tensors.
        """
        if self.is_torch:
            return self._torch.inference_mode()
        return contextlib.nullcontext()

    def write(self, node: int, embedding: Any) -> None:
        """Store ``embedding`` [B, *S] as node ``node`` of every tree (Python-side copy)."""
        self.check(embedding)
        if self.is_torch:
            self.nodes[:, node].copy_(self._torch.as_tensor(embedding))
        else:
            self.nodes[:, node] = np.asarray(embedding)

    def check(self, embedding: Any) -> None:
        """Raise if ``embedding`` is not shaped [B, *S] like the root's hidden states."""
        expected = self.expected_shape
        if tuple(getattr(embedding, "shape", ())) != expected:
            raise ValueError(
                f"recurrent_fn returned next_embedding of shape "
                f"{tuple(getattr(embedding, 'shape', ()))}; expected {expected} "
                "like root_embedding"
            )

    def as_bytes(self, embedding: Any) -> np.ndarray | None:
        """A byte view [B, bytes] of ``embedding`` for the kernels, or None if it needs a copy.

        None where the store is on a GPU, or the array differs in type, dtype or layout.
        """
        if getattr(embedding, "shape", None) != self.expected_shape:
            self.check(embedding)  # raises unless the shape merely has another type
        if not self.on_cpu or type(embedding) is not type(self.gathered) or embedding.dtype != self.dtype:
            return None
        if self.is_torch:
            if not embedding.is_cpu or not embedding.is_contiguous():
                return None
            embedding = embedding.numpy()
        elif not embedding.flags.c_contiguous:
            return None
        return embedding.reshape(self.batch, -1).view(np.uint8)

    def gather(self, flat_index: np.ndarray) -> Any:
        """Hidden states of nodes ``flat_index`` (= b * N + node) into the reused buffer.

        Only needed on a GPU: on the CPU the selection kernel fills ``gathered`` itself.
        """
        torch = self._torch
        self._index.copy_(torch.from_numpy(flat_index))
        torch.index_select(self.flat_nodes, 0, self._index, out=self.gathered)
        return self.gathered


_STORES = threading.local()  # one cache per thread, as the trees' (_tree.get_tree)
_MAX_STORES = 3


def get_store(root: Any, num_nodes: int) -> EmbeddingStore:
    """A cached store for hidden states like ``root`` (same type, dtype, device, shape), per thread."""
    stores: dict[tuple, EmbeddingStore] = _STORES.__dict__.setdefault("stores", {})
    key = EmbeddingStore.describe(root, num_nodes)
    store = stores.pop(key, None)
    if store is None:
        store = EmbeddingStore(root, num_nodes)
    stores[key] = store
    while len(stores) > _MAX_STORES:
        stores.pop(next(iter(stores)))
    return store

"""Batched MuZero tree search over Numba kernels (arrays in, arrays out).

Public, functional API in the spirit of mctx: give root network outputs for B roots and a
batched ``recurrent_fn``; get back actions, visit counts, the improved policy, root values and
root Q-values (``SearchResult``).
"""

from muzero_agents.search._result import SearchResult
from muzero_agents.search.muzero import muzero_search

__all__ = ["SearchResult", "muzero_search"]

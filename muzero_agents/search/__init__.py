"""Batched MuZero tree search over Numba kernels (arrays in, arrays out).

Public, functional API in the spirit of mctx: give root network outputs for B roots and a
batched ``recurrent_fn``; get back actions, visit counts, the improved policy, root values and
root Q-values (``SearchResult``).
"""

from muzero_agents.search._numba_cache import drop_stale_cache

drop_stale_cache()  # before any kernel is loaded from the cache

from muzero_agents.search._result import SearchResult
from muzero_agents.search.gumbel import gumbel_muzero_search
from muzero_agents.search.muzero import muzero_search

__all__ = ["SearchResult", "gumbel_muzero_search", "muzero_search"]

"""``min`` and ``max`` of two numbers for the kernels, inlined.

Numba compiles the builtins ``min`` and ``max`` to calls that LLVM does not inline; in a loop
the call costs more than the comparison and keeps the loop from being vectorized. These give
the builtins' results exactly (the first argument on ties, as Python's).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def smaller(a, b):
    """``min(a, b)``: b if b < a, else a."""
    return b if b < a else a


@njit(cache=True, inline="always")
def larger(a, b):
    """``max(a, b)``: b if b > a, else a."""
    return b if b > a else a

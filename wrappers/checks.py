"""Checks of the arguments given to the adapters: each returns the value in its plain Python type
or raises an error naming the argument, the value received and what to pass instead.

Booleans are refused wherever a number is expected (``True`` is an int to Python, but never a
meaningful board size, time limit or action).
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import numpy as np


def finite_number(name: str, value: Any, example: str) -> float:
    """``value`` as a float; TypeError for non-numbers, ValueError for NaN and infinities."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number (e.g. {name}={example}); got {value!r} ({type(value).__name__})."
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number (e.g. {name}={example}); got {value!r}.")
    return number


def boolean(name: str, value: Any, example: str = "False") -> bool:
    """``value`` as a bool; TypeError for anything but ``True``/``False`` (numpy's included), since
    any non-empty string or non-zero number, ``"no"`` and ``"False"`` among them, is true to Python."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False (e.g. {name}={example}); got {value!r} ({type(value).__name__})."
        )
    return bool(value)


def positive_seconds(name: str, value: Any, example: str = "10.0") -> float:
    """``value`` as a finite number of seconds > 0."""
    seconds = finite_number(name, value, example)
    if seconds <= 0:
        raise ValueError(f"{name} must be a number of seconds > 0 (e.g. {name}={example}); got {value!r}.")
    return seconds


def integer_in_range(
    name: str, value: Any, low: int, high: int | None = None, example: int | None = None
) -> int:
    """``value`` as an int in ``low..high`` (no upper bound when ``high`` is None); ``example``
    (default ``low``) is the value the error suggests.

    Integer-valued numpy scalars are accepted; floats (even ``9.0``), strings and booleans are not,
    so that ``1.7`` never silently becomes 1.
    """
    bounds = f"{low}..{high}" if high is not None else f">= {low}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer in {bounds}; got {value!r} ({type(value).__name__}). "
            f"Pass a whole number, e.g. {name}={low if example is None else example}."
        )
    number = int(value)
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be an integer in {bounds}; got {value!r}.")
    return number


def action_index(action: Any, n_actions: int) -> int:
    """An env action as an int: a Python int, a numpy integer, or a one-element integer array.

    Floats (``1.7`` would otherwise be played as 1), strings, booleans and arrays of another size
    raise TypeError naming the valid range. Whether the index is legal is the env's business.
    """
    valid = f"an integer index in [0, {n_actions})"
    if isinstance(action, (bool, np.bool_)):
        raise TypeError(f"action must be {valid}; got the boolean {action!r}.")
    if isinstance(action, numbers.Integral):
        return int(action)
    if isinstance(action, np.ndarray) and action.size == 1 and action.dtype.kind in "iu":
        return int(action.reshape(-1)[0])
    shown = (
        f"array of dtype {action.dtype} and shape {action.shape}"
        if isinstance(action, np.ndarray)
        else type(action).__name__
    )
    raise TypeError(
        f"action must be {valid} (a Python or numpy int); got {action!r} ({shown}). "
        "Pass the index itself, e.g. int(np.argmax(probabilities)), not a float or a string."
    )


def check_keywords(factory: Any, kwargs: dict, what: str) -> None:
    """Refuse keywords that ``factory`` does not take, listing those it does; ``what`` names
    the receiver in the message (e.g. ``"opponent_kwargs for GnuGoOpponent"``)."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"{what} got unknown argument(s) {unknown}; it takes: {', '.join(accepted) or 'none'}."
        )


def build_with_kwargs(factory: Any, kwargs: dict, name: str) -> Any:
    """``factory(**kwargs)`` after ``check_keywords``; ``name`` is the argument that held ``kwargs``."""
    check_keywords(factory, kwargs, f"{name} for {getattr(factory, '__name__', factory)}")
    return factory(**kwargs)

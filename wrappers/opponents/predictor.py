"""Any model with SB3's ``predict`` as an opponent, so models can play each other."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from wrappers.checks import boolean
from wrappers.opponents.base import GameState


class PolicyOpponent:
    """Any model with SB3's ``predict`` (PPO, MaskablePPO, MuZero...) as an opponent.

    Masks are passed as ``action_masks=`` when ``predict`` accepts them, so masked models only
    choose legal moves; unmasked models may choose illegal ones and then lose by forfeit.

    :param model: the object whose ``predict(observation, ...)`` picks the move.
    :param deterministic: passed to ``predict`` (True: the model's best move).
    """

    def __init__(self, model: Any, deterministic: bool = True):
        if not callable(getattr(model, "predict", None)):
            raise TypeError(f"PolicyOpponent needs an object with predict(); got {type(model).__name__}.")
        self.model = model
        self.deterministic = boolean("deterministic", deterministic, "True")  # "no" would be true
        self._takes_masks = _accepts_keyword(model.predict, "action_masks")

    def act(self, observation: np.ndarray, action_mask: np.ndarray, game_state: GameState) -> int:
        kwargs = {"deterministic": self.deterministic}
        if self._takes_masks:
            kwargs["action_masks"] = np.asarray(action_mask, dtype=bool)
        action, _ = self.model.predict(observation, **kwargs)
        return int(np.asarray(action).reshape(-1)[0])


def _accepts_keyword(func: Any, name: str) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)

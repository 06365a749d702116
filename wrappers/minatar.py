"""MinAtar games (``pip install minatar``) as channel-first uint8 images any SB3 algorithm reads.

MinAtar's Gymnasium envs (``MinAtar/<Game>-v1``, registered by ``minatar.gym.register_envs()``)
observe a 10x10 grid of boolean channels, channels last. :class:`MinAtarImage` turns them into
``(C, 10, 10)`` uint8 arrays of 0 and 1.
"""

from __future__ import annotations

import logging

import gymnasium
import numpy as np
from gymnasium import spaces


class MinAtarImage(gymnasium.ObservationWrapper):
    """Boolean ``(10, 10, C)`` observations -> uint8 ``(C, 10, 10)`` of 0 and 1."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        height, width, channels = env.observation_space.shape
        self.observation_space = spaces.Box(0, 1, (channels, height, width), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(observation, -1, 0), dtype=np.uint8)


def make_minatar(env_id: str, **kwargs) -> gymnasium.Env:
    """``gymnasium.make(env_id)`` of a MinAtar game (``"MinAtar/Breakout-v1"``), wrapped in
    :class:`MinAtarImage`. Raises a ModuleNotFoundError naming the extra when MinAtar is missing."""
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.setLevel(logging.ERROR)  # MinAtar warns at import that it cannot render without seaborn
    try:
        import minatar.gym
    except ImportError as error:
        message = f"MinAtar games need the minatar package ({error}): pip install 'muzero-agents[minatar]'"
        raise ModuleNotFoundError(message, name="minatar") from error
    finally:
        root_logger.setLevel(level)
    if env_id not in gymnasium.registry:
        minatar.gym.register_envs()
    return MinAtarImage(gymnasium.make(env_id, **kwargs))

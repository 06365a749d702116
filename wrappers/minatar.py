"""MinAtar games (``pip install minatar``) as channel-first uint8 arrays.

MinAtar's Gymnasium envs (``MinAtar/<Game>-v1``) observe a 10x10 grid of boolean channels,
channels last. :class:`MinAtarImage` turns them into ``(C, 10, 10)`` uint8 arrays of 0 and 1,
which MuZero's ``CnnPolicy`` reads as images. Importing this module registers the ids when
MinAtar is installed (the RL Zoo's ``--gym-packages wrappers.minatar``).

To SB3 these are not images (its images are uint8 in [0, 255]), so:

- ``VecFrameStack`` stacks them along the last axis unless given ``channels_order="first"``;
- SB3's own ``CnnPolicy`` (NatureCNN) refuses them, and needs frames of 36 pixels or more anyway:
  give DQN or PPO a features extractor for 10x10 grids (the MinAtar paper's network is one 3x3
  conv of 16 channels, then a linear layer of 128).
"""

from __future__ import annotations

import logging
import warnings

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


def register_minatar() -> None:
    """Register MinAtar's ``MinAtar/<Game>-v1`` ids with Gymnasium, once. Raises a
    ModuleNotFoundError naming the extra when MinAtar is missing."""
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
    if "MinAtar/Breakout-v1" not in gymnasium.registry:
        minatar.gym.register_envs()


def make_minatar(env_id: str, **kwargs) -> gymnasium.Env:
    """``gymnasium.make(env_id)`` of a MinAtar game (``"MinAtar/Breakout-v1"``), wrapped in
    :class:`MinAtarImage`. Raises a ModuleNotFoundError naming the extra when MinAtar is missing."""
    register_minatar()
    return MinAtarImage(gymnasium.make(env_id, **kwargs))


try:  # so that importing the module (the RL Zoo's --gym-packages) makes the ids known
    register_minatar()
except ModuleNotFoundError as missing:
    warnings.warn(f"MinAtar's ids are not registered: {missing}", UserWarning, stacklevel=2)

"""A small conv features extractor for DQN and PPO on MinAtar's 10x10 grids.

SB3's ``NatureCNN`` (8x8 stride 4, 4x4 stride 2, 3x3) needs frames of at least 36 pixels a side,
so it cannot read MinAtar's ``(C, 10, 10)`` observations. :class:`MinAtarCNN` follows the
network of the MinAtar paper's DQN (Young & Tian, 2019): one 3x3 convolution of 16 channels,
stride 1 and no padding, a ReLU, then a linear layer of 128 units and a ReLU. DQN's Q head and
PPO's policy and value heads read those 128 features.

Pass it through ``policy_kwargs``::

    DQN("CnnPolicy", env, policy_kwargs=dict(features_extractor_class=MinAtarCNN))
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


class MinAtarCNN(BaseFeaturesExtractor):
    """Conv 3x3 (``channels``) + ReLU + flatten + linear (``features_dim``) + ReLU.

    :param observation_space: a channel-first ``Box`` of shape ``(C, H, W)``, H and W at least 3
        (``wrappers.minatar.make_minatar`` gives ``(C, 10, 10)`` of 0 and 1)
    :param features_dim: units of the linear layer, the features the heads read
    :param channels: output channels of the convolution
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128, channels: int = 16) -> None:
        shape = getattr(observation_space, "shape", None)
        if not isinstance(observation_space, spaces.Box) or shape is None or len(shape) != 3:
            raise ValueError(
                f"MinAtarCNN reads channel-first (C, H, W) Box observations, got {observation_space}; "
                "wrap MinAtar envs with wrappers.minatar.make_minatar"
            )
        in_channels, height, width = shape
        if height < 3 or width < 3:
            raise ValueError(f"MinAtarCNN needs frames of at least 3x3 after the channels, got {shape}")
        super().__init__(observation_space, features_dim)
        self.conv = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=3, stride=1), nn.ReLU())
        flat = channels * (height - 2) * (width - 2)
        self.linear = nn.Sequential(nn.Flatten(), nn.Linear(flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.conv(observations.float()))

"""MuZero's three learned functions: representation h, dynamics g and prediction f.

Two families share one interface (:class:`MuZeroNetwork`): fully connected networks for vector
observations and residual conv towers for image-like observations (small boards up to Atari
frames). Hidden states are min-max scaled to [0, 1] per sample, as in the paper, so the dynamics
function always sees inputs on the same scale as the representation's output.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from muzero_agents.settings import GROUPS, check_group_value


class NetworkOutput(NamedTuple):
    """Raw network outputs; value/reward are logits over the categorical support."""

    hidden: torch.Tensor
    reward_logits: torch.Tensor | None
    value_logits: torch.Tensor
    policy_logits: torch.Tensor


def scale_hidden_state(hidden: torch.Tensor) -> torch.Tensor:
    """Min-max scale each sample's hidden state to [0, 1] (paper appendix G)."""
    sample_dims = tuple(range(1, hidden.dim()))  # elementwise: keeps the memory format (channels-last)
    low = hidden.amin(dim=sample_dims, keepdim=True)
    high = hidden.amax(dim=sample_dims, keepdim=True)
    return (hidden - low) / (high - low + 1e-5)


def mlp(in_dim: int, hidden_sizes: list[int], out_dim: int, activation=nn.ELU) -> nn.Sequential:
    """A plain MLP; LayerNorm after each hidden layer keeps small-batch training stable."""
    layers: list[nn.Module] = []
    for size in hidden_sizes:
        layers += [
            nn.Linear(in_dim, size),
            nn.LayerNorm(size),
            activation(inplace=True),
        ]  # in place: its backward reuses the output
        in_dim = size
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def _check_sizes(**sizes: int) -> None:
    """Raise a ValueError unless each size (``support_size`` and the spaces' sizes) is an int >= 1."""
    for name, value in sizes.items():
        if name == "support_size":
            check_group_value("policy_kwargs", name, value)
        elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}.")


def _checked_arguments(group: str, *values: object) -> list:
    """``values``, in the order of ``group``'s settings, each checked (errors name policy_kwargs)."""
    return [check_group_value(group, name, value) for name, value in zip(GROUPS[group], values, strict=True)]


class MuZeroNetwork(nn.Module):
    """Base: subclasses define ``represent``, ``dynamics`` and ``predict_heads``."""

    action_dim: int

    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def dynamics(self, hidden: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def predict_heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def initial_inference(self, obs: torch.Tensor) -> NetworkOutput:
        """h then f: observation batch -> (scaled hidden, value logits, policy logits)."""
        hidden = scale_hidden_state(self.represent(obs))
        policy_logits, value_logits = self.predict_heads(hidden)
        return NetworkOutput(hidden, None, value_logits, policy_logits)

    def recurrent_inference(self, hidden: torch.Tensor, action: torch.Tensor) -> NetworkOutput:
        """g then f: (hidden, action) -> (next scaled hidden, reward, value, policy logits)."""
        next_hidden, reward_logits = self.dynamics(hidden, action)
        next_hidden = scale_hidden_state(next_hidden)
        policy_logits, value_logits = self.predict_heads(next_hidden)
        return NetworkOutput(next_hidden, reward_logits, value_logits, policy_logits)


class MlpMuZeroNetwork(MuZeroNetwork):
    """Fully connected h, g, f for flat (vector) observations."""

    settings_group = "mlp_network_kwargs"  # how muzero_agents.settings checks its arguments

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        support_size: int,
        hidden_dim: int = 64,
        net_arch: list[int] | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(obs_dim=obs_dim, action_dim=action_dim, support_size=support_size)
        hidden_dim, net_arch = _checked_arguments(self.settings_group, hidden_dim, net_arch)
        net_arch = [128, 128] if net_arch is None else net_arch
        self.action_dim = action_dim
        support_dim = 2 * support_size + 1
        self.representation = mlp(obs_dim, net_arch, hidden_dim)
        self.dynamics_state = mlp(hidden_dim + action_dim, net_arch, hidden_dim)
        self.dynamics_reward = mlp(hidden_dim, net_arch[-1:], support_dim)
        self.prediction_trunk = nn.Sequential(
            mlp(hidden_dim, net_arch[:-1], net_arch[-1]), nn.ELU(inplace=True)
        )
        self.policy_head = nn.Linear(net_arch[-1], action_dim)
        self.value_head = nn.Linear(net_arch[-1], support_dim)
        for head in (self.policy_head, self.value_head, self.dynamics_reward[-1]):
            nn.init.zeros_(head.weight)  # start uniform and at value 0: no spurious early preferences
            nn.init.zeros_(head.bias)

    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        return self.representation(obs.flatten(1))

    def dynamics(self, hidden: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        one_hot = nn.functional.one_hot(action.long(), self.action_dim).to(hidden.dtype)
        next_hidden = self.dynamics_state(torch.cat([hidden, one_hot], dim=1))
        return next_hidden, self.dynamics_reward(next_hidden)

    def predict_heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trunk = self.prediction_trunk(hidden)
        return self.policy_head(trunk), self.value_head(trunk)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with batch norm and a skip connection (the paper's tower block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(out)))


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class ActionPlanes(nn.Module):
    """Encodes actions as image planes for the conv dynamics function.

    Board games whose actions are board squares (A = k*H*W, optionally plus one "pass") get a
    one-hot spatial plane per square-block plus a constant pass plane; games whose actions are
    the board's columns (A = W, connect four) get one plane with the chosen column lit, so the
    convolutions see where the move lands; other action sets (Atari) get one constant plane per
    action, or a single scaled plane when actions are many. A lit column tells each square
    whether the move lands in its column, which a constant plane per column cannot. Columns are
    inferred from the shapes alone: an undownsampled board with exactly W actions.
    """

    def __init__(self, action_dim: int, height: int, width: int, board_grid: bool = True) -> None:
        """``board_grid``: the planes are the observation's own grid (not a downsampled frame's),
        so an action count equal to the width can mean columns."""
        super().__init__()
        self.action_dim, self.height, self.width = action_dim, height, width
        blocks, extra = divmod(action_dim, height * width)
        self.spatial_blocks = blocks if blocks >= 1 and extra <= 1 else 0
        self.columns = board_grid and not self.spatial_blocks and action_dim == width
        if self.spatial_blocks:
            self.num_planes = self.spatial_blocks + extra
        elif self.columns:
            self.num_planes = 1
        else:
            self.num_planes = action_dim if action_dim <= 32 else 1

    def forward(self, action: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        batch = action.shape[0]
        action = action.long()
        planes = like.new_zeros(batch, self.num_planes, self.height * self.width)
        rows = torch.arange(batch, device=like.device)
        area = self.height * self.width
        if self.spatial_blocks:
            on_board = action < self.spatial_blocks * area
            block = torch.where(on_board, action // area, self.spatial_blocks)
            square = torch.where(on_board, action % area, 0)
            planes[rows[on_board], block[on_board], square[on_board]] = 1.0
            planes[rows[~on_board], block[~on_board], :] = 1.0
        elif self.columns:
            cells = planes.view(batch, self.height, self.width)
            cells[rows, :, action] = 1.0
        elif self.num_planes == self.action_dim:
            planes[rows, action, :] = 1.0
        else:
            # in float32 first: bfloat16 (mixed_precision) cannot tell integers above 256 apart
            planes[:, 0, :] = ((action.float() + 1.0) / self.action_dim).to(like.dtype).unsqueeze(1)
        return planes.view(batch, self.num_planes, self.height, self.width)


BOARD_SIDE = 32  # observations up to this side are boards (kept whole up to 12); larger ones are frames


def latent_side(height: int, width: int, downsample_to: int | None) -> int:
    """The largest side the representation reduces an observation to: ``downsample_to``, or by
    default 12 for boards (no smaller board is reduced) and 6 for frames (the paper's Atari net)."""
    if downsample_to is not None:
        return downsample_to
    return 12 if max(height, width) <= BOARD_SIDE else 6


def pooled_stem(in_channels: int, channels: int, halvings: int) -> list[nn.Module]:
    """Halve the map ``halvings`` times as EfficientZero does: strided convs for the first two
    halvings (the first at half the channels), average pooling after that, each followed by a
    residual block. Cheap at full resolution: no conv runs on the undownsampled frame."""
    if halvings == 0:
        return [conv_bn_relu(in_channels, channels)]
    stem: list[nn.Module] = []
    width = channels if halvings == 1 else max(1, channels // 2)
    stem += [conv_bn_relu(in_channels, width, stride=2), ResidualBlock(width)]
    if halvings >= 2:
        stem += [conv_bn_relu(width, channels, stride=2), ResidualBlock(channels)]
    for _ in range(halvings - 2):
        stem += [nn.AvgPool2d(3, stride=2, padding=1), ResidualBlock(channels)]
    return stem


def strided_stem(in_channels: int, channels: int, halvings: int) -> list[nn.Module]:
    """A conv at full resolution, then a strided conv and a residual block per halving (the
    layout muzero-agents 0.2.0 built; its saved models keep it)."""
    stem: list[nn.Module] = [conv_bn_relu(in_channels, channels)]
    for _ in range(halvings):
        stem += [conv_bn_relu(channels, channels, stride=2), ResidualBlock(channels)]
    return stem


STEMS = {"pool": pooled_stem, "stride": strided_stem}


class ConvMuZeroNetwork(MuZeroNetwork):
    """Residual conv towers for (C, H, W) observations; large frames are downsampled first."""

    settings_group = "conv_network_kwargs"  # how muzero_agents.settings checks its arguments

    def __init__(
        self,
        obs_shape: tuple[int, int, int],
        action_dim: int,
        support_size: int,
        channels: int = 32,
        num_blocks: int = 2,
        head_channels: int = 4,
        head_hidden: int = 64,
        downsample_to: int | None = None,
        downsampling: str | None = None,
    ) -> None:
        super().__init__()
        _check_sizes(action_dim=action_dim, support_size=support_size)
        checked = _checked_arguments(
            self.settings_group, channels, num_blocks, head_channels, head_hidden, downsample_to, downsampling
        )
        channels, num_blocks, head_channels, head_hidden, downsample_to, downsampling = checked
        in_channels, height, width = obs_shape
        self.action_dim = action_dim
        support_dim = 2 * support_size + 1
        target = latent_side(height, width, downsample_to)
        board_grid = max(height, width) <= target
        halvings = 0
        while max(height, width) > target:
            height, width, halvings = (height + 1) // 2, (width + 1) // 2, halvings + 1
        if downsampling is None:  # frames the EfficientZero way; boards (up to 32) as before
            downsampling = "pool" if max(obs_shape[1:]) > BOARD_SIDE else "stride"
        stem = STEMS[downsampling](in_channels, channels, halvings)
        self.representation = nn.Sequential(*stem, *[ResidualBlock(channels) for _ in range(num_blocks)])
        self.action_planes = ActionPlanes(action_dim, height, width, board_grid)
        self.dynamics_tower = nn.Sequential(
            conv_bn_relu(channels + self.action_planes.num_planes, channels),
            *[ResidualBlock(channels) for _ in range(num_blocks)],
        )
        flat = head_channels * height * width
        self.reward_head = nn.Sequential(
            nn.Conv2d(channels, head_channels, 1),
            nn.ReLU(),
            nn.Flatten(),
            mlp(flat, [head_hidden], support_dim),
        )
        self.prediction_tower = nn.Sequential(
            *[ResidualBlock(channels) for _ in range(max(1, num_blocks // 2))]
        )
        self.policy_head = nn.Sequential(
            nn.Conv2d(channels, head_channels, 1),
            nn.ReLU(),
            nn.Flatten(),
            mlp(flat, [head_hidden], action_dim),
        )
        self.value_head = nn.Sequential(
            nn.Conv2d(channels, head_channels, 1),
            nn.ReLU(),
            nn.Flatten(),
            mlp(flat, [head_hidden], support_dim),
        )
        for head in (self.policy_head[-1][-1], self.value_head[-1][-1], self.reward_head[-1][-1]):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def represent(self, obs: torch.Tensor) -> torch.Tensor:
        return self.representation(obs)

    def dynamics(self, hidden: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([hidden, self.action_planes(action, hidden)], dim=1)
        next_hidden = self.dynamics_tower(x)
        return next_hidden, self.reward_head(next_hidden)

    def predict_heads(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        trunk = self.prediction_tower(hidden)
        return self.policy_head(trunk), self.value_head(trunk)

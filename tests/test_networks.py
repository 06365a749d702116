"""Networks: shapes, min-max scaled hidden states, action planes, gradient scaling, argument checks."""

import re

import numpy as np
import pytest
import torch
from gymnasium import spaces

from muzero_agents.losses import scale_gradient
from muzero_agents.networks import ActionPlanes, ConvMuZeroNetwork, MlpMuZeroNetwork
from muzero_agents.policies import CnnPolicy, MlpPolicy


def test_mlp_network_shapes_and_hidden_scaling():
    net = MlpMuZeroNetwork(obs_dim=4, action_dim=2, support_size=5, hidden_dim=8, net_arch=[16])
    out = net.initial_inference(torch.randn(3, 4))
    assert (
        out.hidden.shape == (3, 8) and out.value_logits.shape == (3, 11) and out.policy_logits.shape == (3, 2)
    )
    assert out.hidden.min() >= 0 and out.hidden.max() <= 1
    assert torch.allclose(out.hidden.min(1).values, torch.zeros(3), atol=1e-6)
    nxt = net.recurrent_inference(out.hidden, torch.tensor([0, 1, 1]))
    assert nxt.reward_logits.shape == (3, 11) and nxt.hidden.shape == (3, 8)
    assert torch.allclose(nxt.hidden.max(1).values, torch.ones(3), atol=1e-3)


def test_conv_network_downsamples_large_frames():
    net = ConvMuZeroNetwork((4, 84, 84), action_dim=6, support_size=5, channels=8, num_blocks=1)
    out = net.initial_inference(torch.rand(2, 4, 84, 84))
    assert out.hidden.shape[-1] <= 12 and out.policy_logits.shape == (2, 6)
    nxt = net.recurrent_inference(out.hidden, torch.tensor([5, 0]))
    assert nxt.hidden.shape == out.hidden.shape


def test_action_planes_for_go_like_action_sets():
    planes = ActionPlanes(action_dim=10, height=3, width=3)  # 9 squares + pass
    assert planes.num_planes == 2
    encoded = planes(torch.tensor([4, 9]), torch.zeros(2, 1, 3, 3))
    assert encoded[0, 0, 1, 1] == 1 and encoded[0].sum() == 1
    assert encoded[1, 1].sum() == 9 and encoded[1, 0].sum() == 0


def test_action_planes_light_the_column_for_column_actions():
    planes = ActionPlanes(action_dim=7, height=6, width=7)  # connect four: one action per column
    assert planes.num_planes == 1
    encoded = planes(torch.tensor([3, 0]), torch.zeros(2, 1, 6, 7))
    assert encoded[0, 0, :, 3].sum() == 6 and encoded[0].sum() == 6
    assert encoded[1, 0, :, 0].sum() == 6 and encoded[1].sum() == 6


def test_action_planes_for_non_spatial_actions():
    planes = ActionPlanes(action_dim=4, height=6, width=7)
    assert planes.num_planes == 4
    encoded = planes(torch.tensor([3]), torch.zeros(1, 1, 6, 7))
    assert encoded[0, 3].sum() == 42 and encoded.sum() == 42
    downsampled = ActionPlanes(action_dim=11, height=11, width=11, board_grid=False)  # an Atari frame
    assert downsampled.num_planes == 11


def test_conv_network_uses_column_planes_only_on_an_undownsampled_board():
    board = ConvMuZeroNetwork((2, 6, 7), action_dim=7, support_size=5, channels=8, num_blocks=1)
    frame = ConvMuZeroNetwork((4, 96, 96), action_dim=6, support_size=5, channels=8, num_blocks=1)
    assert board.action_planes.columns and board.action_planes.num_planes == 1
    # a 96x96 frame goes down to 6x6: six actions are not six columns there
    assert frame.action_planes.width == 6 and not frame.action_planes.columns


def test_scale_gradient_halves_gradient_only():
    x = torch.ones(3, requires_grad=True)
    y = scale_gradient(x, 0.5)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), 0.5))


# ----------------------------------------------------------------- argument checks (policy_kwargs)

NETWORK_REFUSALS = [
    (MlpPolicy, {"net_arch": []}, ValueError, "net_arch", "non-empty list"),
    (MlpPolicy, {"net_arch": [64, 0]}, ValueError, 'net_arch"][1]', "an int >= 1"),
    (MlpPolicy, {"net_arch": 64}, TypeError, "net_arch", "list of ints"),
    (MlpPolicy, {"hidden_dim": 0}, ValueError, "hidden_dim", "an int >= 1"),
    (MlpPolicy, {"hidden_dim": 8.5}, TypeError, "hidden_dim", "an int >= 1"),
    (CnnPolicy, {"channels": 0}, ValueError, "channels", "an int >= 1"),
    (CnnPolicy, {"num_blocks": -1}, ValueError, "num_blocks", "an int >= 0"),
    (CnnPolicy, {"downsample_to": 0}, ValueError, "downsample_to", "an int >= 1"),
]


def _policy(policy_class, **kwargs):
    space = spaces.Box(0, 1, (4,)) if policy_class is MlpPolicy else spaces.Box(0, 1, (2, 6, 6))
    return policy_class(space, spaces.Discrete(3), lambda _: 1e-3, **kwargs)


@pytest.mark.parametrize(("policy_class", "network_kwargs", "error", "key", "words"), NETWORK_REFUSALS)
def test_bad_network_kwargs_are_named_at_construction(policy_class, network_kwargs, error, key, words):
    label = 'policy_kwargs["network_kwargs"]["' + key
    with pytest.raises(error, match=re.escape(label)) as raised:
        _policy(policy_class, network_kwargs=network_kwargs)
    assert words in str(raised.value) and repr(next(iter(network_kwargs.values()))) in str(raised.value)


def test_unknown_network_kwargs_list_the_known_keys():
    with pytest.raises(ValueError, match=r"\['channels'\]; its keys are 'hidden_dim', 'net_arch'"):
        _policy(MlpPolicy, network_kwargs={"channels": 8})
    with pytest.raises(ValueError, match=r"\['net_arch'\]; its keys are 'channels', 'num_blocks'"):
        _policy(CnnPolicy, network_kwargs={"net_arch": [8]})


@pytest.mark.parametrize(("value", "error"), [(2.5, TypeError), (0, ValueError), (True, TypeError)])
def test_support_size_is_checked_at_construction(value, error):
    with pytest.raises(
        error, match=re.escape('policy_kwargs["support_size"] must be an int >= 1, got ' + repr(value))
    ):
        _policy(MlpPolicy, support_size=value)
    with pytest.raises(error, match=re.escape('policy_kwargs["support_size"]')):
        MlpMuZeroNetwork(obs_dim=4, action_dim=2, support_size=value)


def test_valid_network_kwargs_build():
    policy = _policy(MlpPolicy, support_size=np.int64(5), network_kwargs={"net_arch": (16,), "hidden_dim": 8})
    assert policy.support_size == 5 and type(policy.support_size) is int
    assert policy.network.value_head.out_features == 11
    conv = _policy(CnnPolicy, network_kwargs={"channels": 4, "num_blocks": 0})
    assert conv.network.representation[0][0].out_channels == 4


def test_boards_keep_their_stem_and_frames_get_the_pooled_one():
    go = ConvMuZeroNetwork((17, 19, 19), action_dim=362, support_size=5, channels=8, num_blocks=1)
    frame = ConvMuZeroNetwork((4, 84, 84), action_dim=6, support_size=5, channels=8, num_blocks=1)
    assert go.representation[0][0].stride == (1, 1) and go.action_planes.height == 10  # 19 -> 10
    assert frame.representation[0][0].stride == (2, 2) and frame.action_planes.height == 6
    assert not any(isinstance(m, torch.nn.AvgPool2d) for m in go.modules())
    assert any(isinstance(m, torch.nn.AvgPool2d) for m in frame.modules())

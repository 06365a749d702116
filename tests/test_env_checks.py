"""Checks of spaces, observations, rewards, actions and masks: each error names the problem and a fix that exists."""

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from muzero_agents import env_checks
from muzero_agents.env_checks import (
    RewardScaleCheck,
    check_action_masks,
    check_action_space,
    check_not_dict,
    check_observation_space,
    check_observations,
    check_rewards,
    check_step,
    infer_channels_last,
    max_support_value,
)
from muzero_agents.policies import CnnPolicy, MlpPolicy


class _Env(gym.Env):
    """A one-step env with the given spaces (to try wrappers on)."""

    def __init__(self, observation_space, action_space=None):
        self.observation_space = observation_space
        self.action_space = action_space or spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


@pytest.mark.parametrize(
    "space",
    [
        spaces.Dict({"a": spaces.Box(0, 1, (2,)), "b": spaces.Discrete(3)}),
        spaces.Tuple((spaces.Box(0, 1, (2,)), spaces.Discrete(3))),
    ],
)
def test_dict_and_tuple_observations_name_flatten_observation(space):
    with pytest.raises(ValueError, match=r"no MultiInputPolicy.*gymnasium\.wrappers\.FlattenObservation"):
        check_observation_space(space, "MlpPolicy")
    flattened = gym.wrappers.FlattenObservation(_Env(space))  # the named wrapper exists and fixes it
    check_observation_space(flattened.observation_space, "MlpPolicy")


def test_other_observation_spaces_are_refused():
    with pytest.raises(
        ValueError, match=r"needs a Box, Discrete, MultiDiscrete or MultiBinary observation space"
    ):
        check_observation_space(spaces.Text(5), MlpPolicy)
    with pytest.raises(ValueError, match=r"CnnPolicy needs image-like Box.*use MlpPolicy"):
        check_observation_space(spaces.Box(0, 1, (4,)), CnnPolicy)
    check_observation_space(spaces.Box(0, 1, (4,)), MlpPolicy)
    check_observation_space(spaces.Discrete(5), "MlpPolicy")
    check_observation_space(spaces.Box(0, 1, (8, 8, 2)), "CnnPolicy")


@pytest.mark.parametrize(
    ("shape", "channels_last"),
    [
        ((8, 8, 2), True),  # small float image, channels last
        ((2, 8, 8), False),
        ((6, 7, 2), True),  # connect four
        ((9, 9, 17), True),  # 9x9 Go: channels are not the smallest side
        ((8, 8, 111), True),  # chess
        ((4, 84, 84), False),  # stacked frames
        ((84, 84, 4), True),
    ],
)
def test_image_layout_of_float_boards(shape, channels_last):
    assert infer_channels_last(spaces.Box(0, 1, shape, np.float32)) is channels_last


@pytest.mark.parametrize("shape", [(3, 3, 3), (2, 8, 2), (6, 2, 7)])
def test_ambiguous_image_layout_is_refused_with_the_fix(shape):
    with pytest.raises(ValueError, match=re.escape('policy_kwargs={"channels_last": True}')):
        infer_channels_last(spaces.Box(0, 1, shape, np.float32))
    policy = CnnPolicy(
        spaces.Box(0, 1, shape, np.float32), spaces.Discrete(3), lambda _: 1e-3, channels_last=False
    )
    assert policy.channels_last is False and policy.network.representation[0][0].in_channels == shape[0]


def test_uint8_images_follow_sb3():
    assert infer_channels_last(spaces.Box(0, 255, (3, 12, 12), np.uint8)) is False
    assert infer_channels_last(spaces.Box(0, 255, (12, 12, 3), np.uint8)) is True


def test_float_channels_last_image_reaches_the_network_channels_first():
    space = spaces.Box(0, 1, (8, 8, 2), np.float32)
    policy = CnnPolicy(
        space, spaces.Discrete(3), lambda _: 1e-3, network_kwargs={"channels": 4, "num_blocks": 1}
    )
    assert policy.channels_last and policy.network.representation[0][0].in_channels == 2
    observation = np.zeros((1, 8, 8, 2), np.float32)
    observation[0, 1, 5, 1] = 1.0  # row 1, column 5, channel 1
    prepared = policy.prepare_obs(observation)
    assert prepared.shape == (1, 2, 8, 8) and prepared[0, 1, 1, 5] == 1 and prepared.sum() == 1
    assert policy._get_constructor_parameters()["channels_last"] is True  # saved with the model


def test_box_actions_name_discretize_action_which_exists():
    box = spaces.Box(-2.0, 2.0, (1,), np.float32)
    with pytest.raises(
        ValueError, match=r"needs a Discrete action space.*gymnasium\.wrappers\.DiscretizeAction"
    ):
        check_action_space(box)
    wrapped = gym.wrappers.DiscretizeAction(_Env(spaces.Box(0, 1, (2,)), box), bins=5)
    check_action_space(wrapped.action_space)


def test_multi_discrete_and_shifted_discrete_actions_name_transform_action():
    with pytest.raises(ValueError, match=r"gymnasium\.wrappers\.TransformAction"):
        check_action_space(spaces.MultiDiscrete([3, 4]))
    with pytest.raises(ValueError, match=r"0\.\.n-1.*start=1.*TransformAction"):
        check_action_space(spaces.Discrete(3, start=1))
    assert hasattr(gym.wrappers, "TransformAction")
    check_action_space(spaces.Discrete(3))


def test_wrong_observation_shape_names_expected_and_received_shapes():
    space = spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(ValueError, match=re.escape("(n_envs, *(4,))") + r".*\(2, 5\)"):
        check_observations(np.zeros((2, 5)), space, where="predict()")
    with pytest.raises(ValueError, match=r"self-play at timestep 0: .*got an array of shape \(2,\)"):
        check_step(np.zeros(2), np.zeros(2), space, 20, 0)  # a scalar observation per env
    with pytest.raises(TypeError, match="must be numbers"):
        check_observations(np.array([["a", "b", "c", "d"]]), space, where="predict()")
    batch = check_observations([[0.0, 0.1, 0.2, 0.3]], space, where="predict()")
    assert batch.shape == (1, 4)


def test_non_finite_observation_names_where_and_env():
    space = spaces.Box(-1, 1, (3,), np.float32)
    observations = np.zeros((3, 3), np.float32)
    observations[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"self-play at timestep 40: the observation of env 1 holds NaN"):
        check_step(observations, np.zeros(3), space, 20, 40)
    observations[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"predict\(\): the observation of env 1 .*TransformObservation"):
        check_observations(observations, space, where="predict()")


def test_discrete_observations_outside_the_space_are_refused():
    with pytest.raises(ValueError, match=r"env 1 is 7, outside the observation space Discrete\(5\)"):
        check_observations(np.array([1, 7]), spaces.Discrete(5), where="predict()")
    check_observations(np.array([0, 4]), spaces.Discrete(5), where="predict()")


def test_value_targets_beyond_the_support_warn_once_though_each_reward_fits(fast_kwargs):
    """CartPole's rewards are 1, within support_size 2 (about 8), but its discounted returns of
    up to about 20 (td_steps 30, discount 0.95) are not."""
    from muzero_agents import MuZero

    fast_kwargs["policy_kwargs"] = {**fast_kwargs["policy_kwargs"], "support_size": 2}
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, discount=0.95, **{**fast_kwargs, "td_steps": 30})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.learn(total_timesteps=200)
    saturating = [w for w in caught if "value targets reach" in str(w.message)]
    assert len(saturating) == 1 and 'policy_kwargs["support_size"]=2' in str(saturating[0].message)
    assert not any("a reward of magnitude" in str(w.message) for w in caught)


def test_rewards_beyond_the_support_warn_once_naming_the_fixes():
    check = RewardScaleCheck(20)
    assert 400 < check.limit < 450 and check.limit == pytest.approx(max_support_value(20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(np.array([1.0, 300.0]), where="self-play at timestep 0")
        check(np.array([1e9, 0.0]), where="self-play at timestep 8")
        check(np.array([2e9, 0.0]), where="self-play at timestep 9")
    assert len(caught) == 1
    message = str(caught[0].message)
    assert (
        'policy_kwargs["support_size"]=20' in message
        and "VecNormalize" in message
        and "TransformReward" in message
    )
    assert "1e+09" in message and "timestep 8" in message


def test_check_rewards_without_a_model_check_warns_once_per_support_size():
    env_checks._SHARED_REWARD_CHECKS.pop(3, None)
    with pytest.warns(UserWarning, match="support_size"):
        check_rewards([1e6], 3, where="step")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_rewards([1e6], 3, where="step")


def test_non_finite_rewards_are_refused():
    with pytest.raises(ValueError, match=r"timestep 5: env 1 returned the reward nan"):
        check_step(
            np.zeros((2, 1)), np.array([0.0, np.nan]), spaces.Box(0, 1, (1,)), 20, 5, RewardScaleCheck(20)
        )


def test_action_masks():
    masks = check_action_masks(np.array([[1, 0, 1]], np.int8), 1, 3)
    assert masks.dtype == bool and masks.tolist() == [[True, False, True]]
    assert check_action_masks([True, False, True], 1, 3).shape == (1, 3)
    with pytest.raises(ValueError, match=r"integer masks may hold only 0 and 1, got values \[0, 2\]"):
        check_action_masks(np.array([[2, 0, 2]]), 1, 3)
    with pytest.raises(TypeError, match=r"action_masks must be booleans.*float64"):
        check_action_masks(np.array([[0.0, 1.0, 1.0]]), 1, 3)
    with pytest.raises(ValueError, match=re.escape("action_masks must have shape (2, 3)") + r".*\(2, 4\)"):
        check_action_masks(np.ones((2, 4), bool), 2, 3)
    with pytest.raises(ValueError, match="row 1 allows no action"):
        check_action_masks(np.array([[True, False], [False, False]]), 2, 2)


def test_dict_observation_at_predict_names_flatten_observation():
    with pytest.raises(ValueError, match="FlattenObservation"):
        check_not_dict({"board": np.zeros(3)})
    check_not_dict(np.zeros(3))


def test_policy_refuses_what_the_env_checks_refuse():
    with pytest.raises(ValueError, match="FlattenObservation"):
        MlpPolicy(spaces.Dict({"a": spaces.Box(0, 1, (2,))}), spaces.Discrete(2), lambda _: 1e-3)
    with pytest.raises(ValueError, match="DiscretizeAction"):
        MlpPolicy(spaces.Box(0, 1, (2,)), spaces.Box(-1, 1, (1,)), lambda _: 1e-3)
    assert isinstance(
        MlpPolicy(spaces.Box(0, 1, (2,)), spaces.Discrete(2), lambda _: 1e-3).network, torch.nn.Module
    )

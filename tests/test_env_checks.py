"""Checks of spaces, observations, rewards, actions and masks: each error names the problem and a fix that exists."""

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecTransposeImage

from muzero_agents import MuZero, env_checks
from muzero_agents.env_checks import (
    RewardScaleCheck,
    check_action_masks,
    check_action_space,
    check_image_layout,
    check_not_dict,
    check_observation_space,
    check_observations,
    check_rewards,
    check_step,
    infer_channels_last,
    max_support_value,
    predict_inputs,
)
from muzero_agents.policies import CnnPolicy, MlpPolicy


class _Env(gym.Env):
    """A one-step env with the given spaces (to try wrappers on); given ``step_observation``, an endless
    one that steps to it."""

    def __init__(self, observation_space, action_space=None, step_observation=None):
        self.observation_space = observation_space
        self.action_space = action_space or spaces.Discrete(2)
        self.step_observation = step_observation  # what step() returns, never ending (else a sample)

    def reset(self, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        if self.step_observation is None:
            return self.observation_space.sample(), 0.0, True, False, {}
        return self.step_observation, 0.0, False, False, {}


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
    gray = spaces.Box(0, 255, (84, 84), np.uint8)
    with pytest.raises(
        ValueError, match=r"channel axis: gymnasium.wrappers.ReshapeObservation\(env, \(84, 84, 1\)\)"
    ):
        check_observation_space(gray, CnnPolicy)
    check_observation_space(spaces.Discrete(5), "MlpPolicy")
    check_observation_space(spaces.Box(0, 1, (8, 8, 2)), "CnnPolicy")


def test_unsupported_observation_spaces_are_refused_before_sb3_wraps_the_env():
    """SB3's DummyVecEnv fails on a Text space ("'NoneType' object is not iterable") before MuZero's
    own check; wrap_env checks the raw env's space first."""
    with pytest.raises(ValueError, match=r"needs a Box, Discrete, MultiDiscrete or MultiBinary.*got Text"):
        MuZero("MlpPolicy", _Env(spaces.Text(5)))
    with pytest.raises(ValueError, match="scalar Box"):
        env_checks.wrap_env(_Env(spaces.Box(0, 1, ())))


def test_scalar_box_observations_name_reshape_observation_which_fixes_them(fast_kwargs):
    scalar = spaces.Box(0, 1, (), np.float32)
    fix = re.escape("gymnasium.wrappers.ReshapeObservation(env, (1,))")
    with pytest.raises(ValueError, match=r"scalar Box observation space.*\(shape \(\)\)\..*" + fix):
        check_observation_space(scalar, "MlpPolicy")
    with pytest.raises(ValueError, match=fix):
        MuZero("MlpPolicy", _Env(scalar), **fast_kwargs)
    reshaped = gym.wrappers.ReshapeObservation(_Env(scalar), (1,))  # the named wrapper exists and fixes it
    assert reshaped.observation_space.shape == (1,) and reshaped.reset()[0].shape == (1,)
    model = MuZero("MlpPolicy", reshaped, **{**fast_kwargs, "learning_starts": 4, "batch_size": 2})
    model.learn(8)
    assert model.predict(np.array([0.5], np.float32))[0].shape == ()


def test_multi_discrete_observations_of_more_dimensions_name_the_flattening_fix(fast_kwargs):
    grid = spaces.MultiDiscrete([[3, 4], [2, 5]])
    fix = "TransformObservation(env, lambda o: o.reshape(-1), gymnasium.spaces.MultiDiscrete([3, 4, 2, 5]))"
    with pytest.raises(ValueError, match=r"flat nvec.*nvec of shape \(2, 2\).*" + re.escape(fix)):
        MuZero("MlpPolicy", _Env(grid), **fast_kwargs)  # SB3's one-hot failed on it inside learn()
    flat = spaces.MultiDiscrete([3, 4, 2, 5])
    fixed = gym.wrappers.TransformObservation(_Env(grid), lambda o: o.reshape(-1), flat)  # the named fix
    model = MuZero("MlpPolicy", fixed, **{**fast_kwargs, "learning_starts": 4, "batch_size": 2})
    model.learn(8)
    assert model.predict(flat.sample())[0].shape == ()


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
    with pytest.raises(ValueError, match=r"env 0 is 1\.5, outside"):
        check_observations(np.array([1.5]), spaces.Discrete(5), where="predict()")


@pytest.mark.parametrize(
    ("observations", "message"),
    [
        (
            [[0, 1], [3, 0]],
            r"env 1 is \[3, 0\], outside .*MultiDiscrete\(\[3 4\]\): entry 0 is 3, not an integer in 0\.\.2",
        ),
        ([[0, -1]], r"env 0 is \[0, -1\], .*entry 1 is -1, not an integer in 0\.\.3"),
        ([[0.5, 1.7]], r"env 0 is \[0\.5, 1\.7\], .*entry 0 is 0\.5, not an integer in 0\.\.2"),
    ],
)
def test_multi_discrete_observations_outside_the_space_are_refused(observations, message):
    """SB3's one-hot encoding raised "Class values must be smaller than num_classes" or read 0.5 as 0."""
    with pytest.raises(ValueError, match=r"predict\(\): the observation of " + message):
        check_observations(np.array(observations), spaces.MultiDiscrete([3, 4]), where="predict()")
    check_observations(
        np.array([[0, 0], [2, 3], [1.0, 2.0]]), spaces.MultiDiscrete([3, 4]), where="predict()"
    )


def test_multi_binary_observations_outside_the_space_are_refused():
    with pytest.raises(
        ValueError, match=r"env 0 is \[5, 7, -3\], .*MultiBinary\(3\): entry 0 is 5, not .* 0\.\.1"
    ):
        check_observations(np.array([[5, 7, -3]]), spaces.MultiBinary(3), where="predict()")
    with pytest.raises(ValueError, match=r"env 1 .*entry 2 is 0\.5"):
        check_observations(np.array([[1, 0, 1], [0, 1, 0.5]]), spaces.MultiBinary(3), where="predict()")
    with pytest.raises(ValueError, match=r"entry \(1, 0\) is 2"):
        check_observations(np.array([[[0, 1], [2, 0]]]), spaces.MultiBinary([2, 2]), where="predict()")
    check_observations(np.array([[1, 0, 1], [0.0, 1.0, 0.0]]), spaces.MultiBinary(3), where="predict()")
    check_observations(np.array([[True, False, True]]), spaces.MultiBinary(3), where="predict()")


@pytest.mark.parametrize(
    ("space", "step_observation", "bad"),
    [
        (spaces.MultiDiscrete([3, 4]), np.array([5, 0]), np.array([3, 0])),
        (spaces.MultiBinary(3), np.array([2, 7, -3]), np.array([5, 7, -3])),
    ],
)
def test_multi_discrete_and_multi_binary_envs_and_predict_name_the_bad_observation(
    space, step_observation, bad, fast_kwargs
):
    kwargs = {**fast_kwargs, "learning_starts": 4, "batch_size": 2}
    model = MuZero("MlpPolicy", _Env(space, step_observation=step_observation), **kwargs)
    with pytest.raises(
        ValueError, match=r"predict\(\): the observation of env 0 .*outside the observation space"
    ):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"self-play at timestep 0: the observation of env 0 .*outside"):
        model.learn(8)


def test_empty_observation_batch_is_named():
    space = spaces.Box(-1, 1, (4,), np.float32)
    with pytest.raises(
        ValueError, match=re.escape("predict(): got an empty batch of observations (shape (0, 4))")
    ):
        predict_inputs(np.zeros((0, 4)), space, None, 2)
    with pytest.raises(ValueError, match="empty batch"):
        check_observations(np.zeros((0,), np.int64), spaces.Discrete(3), where="predict()")


def _image_vec_env():
    return DummyVecEnv([lambda: _Env(spaces.Box(0, 255, (16, 16, 3), np.uint8))])


def test_channels_last_on_images_sb3_already_transposed_is_refused():
    """SB3 puts uint8 (H, W, C) images channels-first with VecTransposeImage; channels_last=True
    made the policy permute them again (a 16x16 RGB image read as 16 channels)."""
    transposed = VecTransposeImage(_image_vec_env())
    with pytest.raises(ValueError, match=r'channels_last"\]=True.*channels-first.*Leave channels_last out'):
        check_image_layout(transposed, {"channels_last": True})
    check_image_layout(transposed, {"channels_last": False})
    check_image_layout(transposed, {})
    check_image_layout(transposed, None)
    check_image_layout(_image_vec_env(), {"channels_last": True})  # not transposed: the images are (H, W, C)
    check_image_layout(None, {"channels_last": True})  # nothing to check


def test_channels_last_on_images_sb3_transposed_is_refused_by_muzero():
    env = _Env(spaces.Box(0, 255, (16, 16, 3), np.uint8))
    network_kwargs = dict(channels=4, num_blocks=1)
    with pytest.raises(
        ValueError, match=r'channels_last"\]=True.*VecTransposeImage.*Leave channels_last out'
    ):
        MuZero("CnnPolicy", env, policy_kwargs=dict(channels_last=True, network_kwargs=network_kwargs))
    model = MuZero("CnnPolicy", env, policy_kwargs=dict(network_kwargs=network_kwargs))
    assert model.policy.channels_last is False  # inferred from the transposed (3, 16, 16) space
    assert model.policy.network.representation[0][0].in_channels == 3


def test_value_targets_beyond_the_support_warn_once_though_each_reward_fits(fast_kwargs):
    """CartPole's rewards are 1, within support_size 2 (about 8), but its discounted returns of
    up to about 20 (td_steps 30, discount 0.95) are not."""
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


def final_observation_outside_env(truncated: bool = True) -> type:
    """A Discrete(5) env whose episodes (3 steps) end, truncated or terminated, on the observation
    7. Built inside a function so that Ray ships the class by value."""

    class LastObservationOutside(gym.Env):
        observation_space, action_space = gym.spaces.Discrete(5), gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            self.t = 0
            return 0, {}

        def step(self, action):
            self.t += 1
            ended = self.t == 3
            return (7 if ended else self.t), 0.0, ended and not truncated, ended and truncated, {}

    return LastObservationOutside


@pytest.mark.parametrize("truncated", [True, False])
def test_an_episodes_final_observation_outside_the_space_is_named(fast_kwargs, truncated):
    model = MuZero("MlpPolicy", final_observation_outside_env(truncated)(), **fast_kwargs)
    with pytest.raises(ValueError, match=r"final observation .*env 0 is 7, outside the observation space"):
        model.learn(10)

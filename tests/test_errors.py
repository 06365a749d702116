"""Bad input gets a clear error at construction or load time."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from muzero_agents import MuZero


def test_continuous_actions_rejected_with_fix():
    with pytest.raises(ValueError, match="Discrete action space"):
        MuZero("MlpPolicy", "Pendulum-v1")


def test_dict_observation_with_mlp_policy_rejected():
    class DictEnv(gym.Env):
        observation_space = gym.spaces.Dict({"a": gym.spaces.Box(0, 1, (2,))})
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(ValueError, match="MuZero has no MultiInputPolicy.*FlattenObservation"):
        MuZero("MlpPolicy", DictEnv())


@pytest.mark.parametrize("name", ["num_simulations", "unroll_steps", "td_steps", "batch_size"])
def test_non_positive_counts_rejected(name):
    with pytest.raises(ValueError, match=f"{name} must be an int >= 1"):
        MuZero("MlpPolicy", "CartPole-v1", **{name: 0})


def test_bad_lambda_and_discount_rejected():
    with pytest.raises(ValueError, match="td_lambda must be a finite float in \\[0, 1\\]"):
        MuZero("MlpPolicy", "CartPole-v1", td_lambda=1.5)
    with pytest.raises(ValueError, match="discount must be"):
        MuZero("MlpPolicy", "CartPole-v1", discount=0.0)


def test_cnn_policy_on_vector_observations_rejected():
    with pytest.raises(ValueError, match="use MlpPolicy"):
        MuZero("CnnPolicy", "CartPole-v1")


def test_learning_starts_beyond_buffer_rejected():
    with pytest.raises(ValueError, match="learning_starts \\(500\\) must not exceed buffer_size \\(100\\)"):
        MuZero("MlpPolicy", "CartPole-v1", buffer_size=100, learning_starts=500)
    four_envs = make_vec_env("CartPole-v1", n_envs=4)
    with pytest.raises(
        ValueError, match="capacity \\(60: buffer_size 62 rounded down to a multiple of the 4 envs"
    ):
        MuZero("MlpPolicy", four_envs, buffer_size=62, learning_starts=62)
    model = MuZero("MlpPolicy", four_envs, buffer_size=62, learning_starts=60)
    with pytest.raises(ValueError, match="learning_starts \\(61\\) must not exceed"):
        model.learning_starts = 61
    assert model.learning_starts == 60


@pytest.mark.parametrize("name", ["value_loss_coef", "reward_loss_coef"])
def test_negative_loss_weights_rejected(name):
    kwargs = {name: -1.0} if name == "value_loss_coef" else {"learner_kwargs": {name: -1.0}}
    with pytest.raises(ValueError, match=name):
        MuZero("MlpPolicy", "CartPole-v1", **kwargs)


def test_mixed_precision_must_be_a_bool():
    with pytest.raises((TypeError, ValueError), match="mixed_precision"):
        MuZero("MlpPolicy", "CartPole-v1", learner_kwargs=dict(mixed_precision="bf16"))


def test_settings_set_after_construction_are_checked_and_reach_the_parts():
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3, seed=0)
    model.search = "gumbel"
    model.num_simulations = 7
    model.search_kwargs["max_considered_actions"] = 2  # in place, on the model's own group
    model.learner_kwargs = dict(reward_loss_coef=3.0)  # missing keys take their defaults
    assert model.planner.search == "gumbel" and model.actor.num_simulations == 7
    assert model.planner.search_kwargs["max_considered_actions"] == 2
    assert model.learner.settings["reward_loss_coef"] == 3.0 and model.learner.settings["augment_symmetries"]
    with pytest.raises(ValueError, match="search"):
        model.search = "alphazero"
    with pytest.raises(ValueError, match='search_kwargs\\["pb_c_base"\\]'):
        model.search_kwargs["pb_c_base"] = float("nan")
    with pytest.raises(TypeError, match="num_simulations"):
        model.num_simulations = 2.5
    model.learn(16)
    assert model.planner.search == "gumbel"


def test_unknown_search_name_rejected():
    with pytest.raises(ValueError, match="search"):
        MuZero("MlpPolicy", "CartPole-v1", search="alphazero")


def test_settings_used_to_build_the_model_cannot_change_afterwards():
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3, learner_kwargs=dict(weight_decay=0.01))
    with pytest.raises(ValueError, match=r'learner_kwargs\["weight_decay"\] is used when the model is built'):
        model.learner_kwargs["weight_decay"] = 0.1
    with pytest.raises(ValueError, match=r'learner_kwargs\["consistency_loss_coef"\].*MuZero.load'):
        model.learner_kwargs = dict(weight_decay=0.01, consistency_loss_coef=1.0)
    with pytest.raises(ValueError, match=r'replay_buffer_kwargs\["priority_alpha"\]'):
        model.replay_buffer_kwargs["priority_alpha"] = 0.5
    model.learner_kwargs["weight_decay"] = 0.01  # the same value is fine
    model.learner_kwargs = dict(weight_decay=0.01, reward_loss_coef=2.0)
    assert model.learner.settings["reward_loss_coef"] == 2.0 and model.learner_kwargs.built


@pytest.mark.parametrize("name, value", [("td_steps", 10), ("unroll_steps", 3), ("buffer_size", 500)])
def test_settings_that_shape_the_replay_and_learner_cannot_change_afterwards(name, value):
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3)
    with pytest.raises(
        ValueError, match=f"{name} is used when the model is built.*MuZero.load\\(path, {name}="
    ):
        setattr(model, name, value)
    setattr(model, name, getattr(model, name))  # the same value is fine


class _SmallImages(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.mark.parametrize(
    "policy, env, key",
    [("MlpPolicy", "CartPole-v1", "hidden_dim"), ("CnnPolicy", _SmallImages(), "channels")],
)
def test_policy_kwargs_cannot_change_on_a_built_model(policy, env, key):
    model = MuZero(policy, env, num_simulations=3, policy_kwargs={"network_kwargs": {key: 16}})
    model.policy_kwargs = {"network_kwargs": {key: 16}}  # the same (the layout filled in): fine
    with pytest.raises(ValueError, match="policy_kwargs builds the network.*make a new model"):
        model.policy_kwargs = {"network_kwargs": {key: 32}}
    assert model.policy_kwargs["network_kwargs"] == {key: 16}


def test_a_learning_rate_set_after_construction_is_used():
    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=3, learning_rate=1e-3)
    model.learning_rate = 2e-4
    assert model.lr_schedule(1.0) == pytest.approx(2e-4)
    model.learning_rate = lambda progress: 1e-4 * progress
    assert model.lr_schedule(0.5) == pytest.approx(5e-5)


def test_discrete_observations_not_from_zero_rejected_with_fix():
    class ShiftedEnv(gym.Env):
        observation_space = gym.spaces.Discrete(4, start=10)
        action_space = gym.spaces.Discrete(2)

    with pytest.raises(ValueError, match="start=10.*TransformObservation\\(env, lambda o: o - 10"):
        MuZero("MlpPolicy", ShiftedEnv())


def test_a_model_without_env_names_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"MuZero\(\) needs an env"):
        MuZero("MlpPolicy", None)
    MuZero("MlpPolicy", "CartPole-v1", num_simulations=2).save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model")  # without an env: fine until it must act in one
    with pytest.raises(ValueError, match=r"learn\(\) needs an env.*set_env"):
        loaded.learn(10)

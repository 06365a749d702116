"""Bad input gets a clear error at construction or load time."""

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch
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


def test_schedules_of_the_wrong_signature_or_negative_midway_are_refused():
    with pytest.raises(TypeError, match="learning_rate must be a number or a callable of one argument"):
        MuZero("MlpPolicy", "CartPole-v1", learning_rate=lambda: 1e-3)
    dips_below_zero = lambda progress: -1e-3 if progress == 0.5 else 1e-3  # fine at both ends
    with pytest.raises(ValueError, match=r"progress_remaining=0\.5"):
        MuZero("MlpPolicy", "CartPole-v1", learning_rate=dips_below_zero)


@pytest.mark.parametrize(
    "policy_kwargs, words",
    [
        (dict(optimizer_kwargs=dict(lr=1e-3)), "pass learning_rate="),
        (dict(optimizer_class=torch.nn.Linear), "must be a torch optimizer class"),
        (dict(consistency_kwargs=dict(projection=8)), 'policy_kwargs["consistency_kwargs"] got unknown key'),
        (dict(net_arch=[64, 64]), "network_kwargs=dict(net_arch="),
        (dict(channels_last=True), "only applies to CnnPolicy"),
    ],
)
def test_policy_kwargs_mistakes_are_named_with_their_fix(policy_kwargs, words):
    with pytest.raises((TypeError, ValueError), match=re.escape(words)):
        MuZero("MlpPolicy", "CartPole-v1", policy_kwargs=policy_kwargs)


def test_policy_names_and_classes_other_than_muzeros_are_refused_naming_the_choices():
    with pytest.raises(ValueError, match="use 'MlpPolicy'"):
        MuZero("Mlp", "CartPole-v1")
    with pytest.raises(ValueError, match="MuZero has no MultiInputPolicy"):
        MuZero("MultiInputPolicy", "CartPole-v1")
    with pytest.raises(TypeError, match="subclass of MuZeroPolicy"):
        MuZero(torch.nn.Linear, "CartPole-v1")


def test_sb3s_train_freq_points_to_replay_ratio():
    with pytest.raises(TypeError, match="replay_ratio gradient steps per collected transition"):
        MuZero("MlpPolicy", "CartPole-v1", train_freq=4, gradient_steps=1)


@pytest.mark.parametrize(
    "arguments, hint",
    [
        (dict(gamma=0.99), r"gamma \(MuZero's name is discount\)"),
        (dict(num_simulation=10), r"num_simulation \(did you mean num_simulations\?\)"),
        (
            dict(reward_loss_coeff=1.0),
            r"reward_loss_coeff \(did you mean learner_kwargs\[.reward_loss_coef.\]\?\)",
        ),
        (dict(ent_coef=0.01), r"arguments: ent_coef$"),
    ],
)
def test_an_unknown_argument_is_named_with_the_setting_it_most_likely_meant(arguments, hint):
    with pytest.raises(TypeError, match=hint):
        MuZero("MlpPolicy", "CartPole-v1", **arguments)


def test_the_device_of_a_built_model_cannot_change(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", device="cpu", **fast_kwargs)
    with pytest.raises(ValueError, match=r"MuZero.load\(path, device=\.\.\.\)"):
        model.device = "meta"
    model.device = "cpu"  # the same device: nothing changes
    assert model.device == torch.device("cpu")
    model.set_random_seed(1)  # SB3 reads the device's type


def test_a_schedule_that_turns_negative_between_the_checked_points_stops_learn(fast_kwargs):
    dips = lambda progress: -1e-3 if 0.85 < progress < 0.95 else 1e-3
    model = MuZero("MlpPolicy", "CartPole-v1", learning_rate=dips, **{**fast_kwargs, "learning_starts": 16})
    with pytest.raises(
        ValueError, match=r"learning_rate's schedule returned -0.001 at progress_remaining=0.9"
    ):
        model.learn(200)
    model = MuZero("MlpPolicy", "CartPole-v1", self_play_kwargs=dict(temperature=dips), **fast_kwargs)
    with pytest.raises(ValueError, match=r'"temperature"\]\'s schedule returned -0.001'):
        model.learn(200)


@pytest.mark.parametrize(
    "arguments, error",
    [
        (dict(total_timesteps="100"), TypeError),
        (dict(total_timesteps=math.nan), ValueError),
        (dict(total_timesteps=-1), ValueError),
        (dict(total_timesteps=10, callback=5), TypeError),
        (dict(total_timesteps=10, log_interval="4"), TypeError),
    ],
)
def test_learn_refuses_bad_arguments_before_it_starts(fast_kwargs, arguments, error):
    model = MuZero("MlpPolicy", "CartPole-v1", **fast_kwargs)
    name = next(name for name, value in arguments.items() if name != "total_timesteps" or len(arguments) == 1)
    with pytest.raises(error, match=f"learn\\(\\)'s {name}"):
        model.learn(**arguments)
    assert model.num_timesteps == 0 and model._last_obs is None  # nothing started


def test_train_checks_its_arguments_and_defaults_to_the_models_batch_size(fast_kwargs):
    model = MuZero(
        "MlpPolicy", "CartPole-v1", seed=0, learner_kwargs=dict(consistency_loss_coef=1.0), **fast_kwargs
    )
    model.learn(64)
    sizes = []
    sample = model.replay_buffer.sample
    model.replay_buffer.sample = lambda batch_size, **kwargs: (
        sizes.append(batch_size) or sample(batch_size, **kwargs)
    )
    model.train(1)
    assert sizes == [model.batch_size]
    for gradient_steps, batch_size, error in (
        (-5, None, ValueError),
        (1, 0, ValueError),
        (1.5, None, TypeError),
    ):
        with pytest.raises(error, match="train\\(\\)'s"):
            model.train(gradient_steps, batch_size)
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        model.train(1, batch_size=1)


def test_set_random_seed_names_a_bad_seed(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", **fast_kwargs)
    for seed in (-1, 2.5):
        with pytest.raises((TypeError, ValueError), match="seed must be"):
            model.set_random_seed(seed)

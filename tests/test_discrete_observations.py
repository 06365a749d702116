"""Envs whose observations are one integer (``Discrete``): SB3 one-hot encodes them for MuZero."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy

from muzero_agents import MuZero


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "Taxi-v4"])
def test_discrete_observation_env_learns_predicts_and_reloads(env_id, tmp_path):
    model = MuZero("MlpPolicy", env_id, learning_starts=32, batch_size=16, num_simulations=4, seed=0)
    model.learn(120)
    assert model.num_timesteps >= 120 and model._n_updates > 0
    space = gym.make(env_id).observation_space
    states = np.arange(space.n)
    actions, _ = model.predict(states, deterministic=True)  # a batch of integer observations
    assert actions.shape == (space.n,) and model.action_space.contains(int(actions[0]))
    assert np.all((actions >= 0) & (actions < model.action_space.n))
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model", env=gym.make(env_id))
    np.testing.assert_array_equal(loaded.predict(states, deterministic=True)[0], actions)
    mean_return, _ = evaluate_policy(loaded, loaded.get_env(), n_eval_episodes=1)
    assert np.isfinite(mean_return)

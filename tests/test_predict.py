"""Predict: MuZero.predict's contract (batches, masks, images, the play settings)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from muzero_agents import MuZero
from muzero_agents import planning as planning_module


def test_predict_honours_action_masks(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    obs = np.zeros((6, 4), np.float32)
    masks = np.tile(np.array([False, True]), (6, 1))
    actions, _ = model.predict(obs, action_masks=masks)
    assert (actions == 1).all()


def test_the_policys_own_predict_keeps_to_legal_actions_as_maskable_policies_do(fast_kwargs):
    """``model.policy.predict`` plays the prior without search; with masks, only legal actions."""
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    # an untrained prior is uniform: its argmax is action 0, and sampling picks either action
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    masks = np.tile(np.array([False, True]), (8, 1))
    for deterministic in (True, False):
        actions, _ = model.policy.predict(obs, deterministic=deterministic, action_masks=masks)
        assert actions.shape == (8,) and (actions == 1).all()
    action, _ = model.policy.predict(obs[0], deterministic=True, action_masks=np.array([True, False]))
    assert action.shape == () and action == 0
    with pytest.raises(ValueError, match=r"action_masks must have shape \(8, 2\)"):
        model.policy.predict(obs, action_masks=np.ones((8, 3), bool))
    with pytest.raises(ValueError, match=r"\(observation, info\) tuple"):
        model.policy.predict(gym.make("CartPole-v1").reset(seed=0))


def test_predict_accepts_channel_last_images_like_sb3(fast_kwargs):
    class ChannelLastEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (10, 10, 3), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            return self.observation_space.sample(), {}

        def step(self, action):
            return self.observation_space.sample(), 1.0, True, False, {}

    kwargs = {**fast_kwargs, "policy_kwargs": dict(network_kwargs=dict(channels=8, num_blocks=1))}
    model = MuZero("CnnPolicy", ChannelLastEnv(), seed=0, **kwargs)
    with torch.no_grad():  # a new network's heads are zero: every image would give the same action
        generator = torch.Generator().manual_seed(0)
        for parameter in model.policy.parameters():
            parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))
    raw = np.random.default_rng(0).integers(0, 256, (32, 10, 10, 3), dtype=np.uint8)
    actions, _ = model.predict(raw, deterministic=True)
    search = dict(num_simulations=model.num_simulations, explore=False, temperature=0.0, rng=None)
    as_sb3_reads_them = model.planner.plan(model.policy, raw.transpose(0, 3, 1, 2), None, **search).action
    assert len(set(actions)) > 1 and np.array_equal(actions, as_sb3_reads_them)
    action, _ = model.predict(raw[0], deterministic=True)
    assert action == actions[0]
    mean, _ = evaluate_policy(model, ChannelLastEnv(), n_eval_episodes=2)
    assert mean == 1.0


@pytest.fixture
def searched_simulations(monkeypatch):
    """The simulation counts of every search MuZero runs (both search kinds), in call order."""
    counts = []

    def recording(search):
        def wrapper(*args, **kwargs):
            counts.append(kwargs["num_simulations"])
            return search(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(planning_module, "muzero_search", recording(planning_module.muzero_search))
    monkeypatch.setattr(
        planning_module, "gumbel_muzero_search", recording(planning_module.gumbel_muzero_search)
    )
    return counts


def small_model(**kwargs) -> MuZero:
    return MuZero(
        "MlpPolicy", "CartPole-v1", num_simulations=3, learning_starts=8, batch_size=4, seed=0, **kwargs
    )


@pytest.mark.parametrize("search", ["muzero", "gumbel"])
def test_predict_plays_with_its_play_kwargs_simulations_and_self_play_with_num_simulations(
    searched_simulations, search
):
    model = small_model(
        search=search, reanalyze_kwargs=dict(search=True), play_kwargs=dict(num_simulations=11)
    )  # Reanalyze searches too
    model.learn(12)
    assert searched_simulations and set(searched_simulations) == {3}
    searched_simulations.clear()
    obs = np.zeros((2, 4), dtype=np.float32)
    model.predict(obs, deterministic=True)
    model.predict(obs, deterministic=False)
    assert searched_simulations == [11, 11]


def test_without_play_kwargs_simulations_predict_uses_num_simulations(searched_simulations):
    model = small_model()
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    model.play_kwargs["num_simulations"] = 7  # settable after training
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [3, 7]


def test_play_kwargs_simulations_are_saved_and_overridable_at_load(tmp_path, searched_simulations):
    small_model(play_kwargs=dict(num_simulations=9)).save(tmp_path / "model")
    assert MuZero.load(tmp_path / "model").play_kwargs["num_simulations"] == 9
    loaded = MuZero.load(tmp_path / "model", play_kwargs=dict(num_simulations=5))
    loaded.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [5]


def test_a_save_without_play_kwargs_plays_as_trained(tmp_path, searched_simulations):
    small_model().save(tmp_path / "old", exclude=["play_kwargs"])
    loaded = MuZero.load(tmp_path / "old")
    assert loaded.play_kwargs["num_simulations"] is None
    loaded.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [3]


def test_numpy_integers_are_accepted():
    assert small_model(play_kwargs=dict(num_simulations=np.int64(5))).play_kwargs["num_simulations"] == 5


@pytest.mark.parametrize("bad", [0, -3, 2.5, "100", True])
def test_bad_play_kwargs_simulations_rejected(bad):
    with pytest.raises((TypeError, ValueError), match="num_simulations"):
        small_model(play_kwargs=dict(num_simulations=bad))


def test_bad_play_kwargs_simulations_set_in_place_rejected():
    model = small_model()
    with pytest.raises(ValueError, match="num_simulations"):  # refused where it is set
        model.play_kwargs["num_simulations"] = 0
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)


def test_one_observation_gives_a_0_d_array_as_sb3s_predict_does():
    action, _ = small_model().predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert isinstance(action, np.ndarray) and action.shape == () and action.dtype == np.int64

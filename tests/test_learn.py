"""Learn and train: env ids, VecEnv, CNN policies, both searches, Reanalyze and the optimizer's arguments."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from muzero_agents import MuZero
from tests.test_callbacks import CountSteps
from tests.conftest import sample_batch


def test_make_vec_env_four_envs(fast_kwargs):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, **fast_kwargs)
    counter = CountSteps()
    model.learn(total_timesteps=200, callback=counter)
    assert model.num_timesteps == 200 and counter.calls == 50
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (4,)


def test_cnn_policy_on_small_images(fast_kwargs):
    class TinyImageEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)
        action_space = gym.spaces.Discrete(3)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self.observation_space.sample(), {}

        def step(self, action):
            self.t += 1
            return self.observation_space.sample(), float(action == 1), self.t >= 10, False, {}

    kwargs = {**fast_kwargs, "policy_kwargs": dict(network_kwargs=dict(channels=8, num_blocks=1))}
    model = MuZero("CnnPolicy", TinyImageEnv(), seed=0, **kwargs)
    model.learn(total_timesteps=60)
    assert model.replay_buffer is not None and model._n_updates > 0
    action, _ = model.predict(np.zeros((12, 12, 3), np.uint8).transpose(2, 0, 1), deterministic=True)
    assert 0 <= int(action) < 3


def test_gumbel_search_option_trains_and_plays(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", search="gumbel", seed=0, **fast_kwargs)
    model.learn(total_timesteps=80)
    targets = sample_batch(model, 8).target_policies[:, 0]
    assert np.allclose(targets.sum(-1), 1.0, atol=1e-4)
    assert (targets > 0).all()  # completed-Q targets cover every legal action, visited or not
    obs = np.zeros((3, 4), np.float32)
    first, _ = model.predict(obs, deterministic=True)
    second, _ = model.predict(obs, deterministic=True)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("with_search", [True, False])
def test_reanalyze_refreshes_targets_with_the_latest_network(fast_kwargs, with_search, monkeypatch):
    import muzero_agents.algorithm as algorithm
    from muzero_agents.reanalyze import network_evaluate

    calls = []

    def recording(policy, *args):
        evaluate = network_evaluate(policy, *args)
        return lambda observations, masks: (
            calls.append((policy, len(observations))) or evaluate(observations, masks)
        )

    monkeypatch.setattr(algorithm, "network_evaluate", recording)
    model = MuZero(
        "MlpPolicy",
        "CartPole-v1",
        seed=0,
        **fast_kwargs,
        reanalyze_kwargs=dict(fraction=1.0, search=with_search),
    )
    model.learn(total_timesteps=80)
    assert calls and model._n_updates == len(calls)
    assert all(policy is model.policy for policy, _ in calls)  # the learner's newest network
    evaluate = network_evaluate(model.policy, model.planner, 4, with_search, np.random.default_rng(0))
    values, policies = evaluate(np.zeros((3, 4), np.float32), None)
    assert values.shape == (3,) and (policies is None) != with_search


def test_user_optimizer_kwargs_merge_with_weight_decay(fast_kwargs):
    kwargs = {**fast_kwargs, "policy_kwargs": dict(optimizer_kwargs=dict(eps=1e-5))}
    model = MuZero("MlpPolicy", "CartPole-v1", **kwargs, learner_kwargs=dict(weight_decay=0.01))
    group = model.policy.optimizer.param_groups[0]
    assert group["eps"] == 1e-5 and group["weight_decay"] == 0.01


def test_stacked_frames_are_stored_once_and_sampled_whole(fast_kwargs, tmp_path):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    class Frames(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (1, 8, 8), np.uint8)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.full((1, 8, 8), 1, np.uint8), {}

        def step(self, action):
            self.t += 1
            return np.full((1, 8, 8), self.t + 1, np.uint8), 1.0, self.t >= 20, False, {}

    env = VecFrameStack(DummyVecEnv([Frames, Frames]), 3, channels_order="first")
    del fast_kwargs["policy_kwargs"]
    model = MuZero("CnnPolicy", env, seed=0, **fast_kwargs).learn(60)
    assert model.replay_buffer.frame_stack == (3, 0)
    model.save(tmp_path / "model.zip")
    loaded = MuZero.load(tmp_path / "model.zip")  # without an env: no stacking known yet
    loaded.set_env(env)
    assert loaded.replay_buffer.frame_stack == (3, 0)
    observations = model.replay_buffer.sample(16).observations
    # each stack is the last three frames, oldest first: 0 before the episode, then t + 1
    newest = observations[:, 2, 0, 0].astype(int)
    expected = np.clip(newest[:, None] + np.array([-2, -1, 0]), 0, None)
    assert (observations[:, :, 0, 0] == expected).all()


def _blank_frames(shape: tuple[int, ...], high: int):
    """An env class whose uint8 observations of ``shape`` in [0, high] are all zeros."""

    class Blank(gym.Env):
        observation_space = gym.spaces.Box(0, high, shape, np.uint8)
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            return np.zeros(shape, np.uint8), {}

        def step(self, action):
            return np.zeros(shape, np.uint8), 0.0, False, False, {}

    return Blank


@pytest.mark.parametrize("channels_order", ["last", "first"])
def test_frames_stacked_beside_each_other_are_refused_with_the_channels_order(channels_order):
    """A (C, H, W) space in [0, 1] is no image to SB3, so VecFrameStack stacks it along the last
    axis by default: a conv policy would read the frames side by side as one wider image."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    env = VecFrameStack(DummyVecEnv([_blank_frames((4, 10, 10), 1)]), 2, channels_order=channels_order)
    if channels_order == "last":
        with pytest.raises(ValueError, match=r'along axis 2 .*\(4, 10, 20\).*channels_order="first"'):
            MuZero("CnnPolicy", env)
    else:
        assert MuZero("CnnPolicy", env).replay_buffer.frame_stack == (2, 0)
    assert MuZero("MlpPolicy", env).replay_buffer.frame_stack == (2, 2 if channels_order == "last" else 0)


def test_the_fix_for_misstacked_frames_is_named_as_the_stacker_sees_them():
    """Below SB3's VecTransposeImage the stacker sees (H, W, C) frames: "last" is its channels."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

    Frames = _blank_frames((12, 12, 3), 255)
    misstacked = VecFrameStack(DummyVecEnv([Frames]), 2, channels_order="first")
    with pytest.raises(
        ValueError,
        match=r'axis 1 .*\(3, 24, 12\).*Pass VecFrameStack\(env, n_stack, channels_order="last"\)\.',
    ):
        MuZero("CnnPolicy", misstacked)
    assert MuZero("CnnPolicy", VecFrameStack(DummyVecEnv([Frames]), 2)).replay_buffer.frame_stack == (2, 0)


def test_training_goes_on_once_started_though_eviction_leaves_the_replay_below_learning_starts(fast_kwargs):
    """The replay evicts whole episodes, so once full it holds a little less than its capacity:
    with learning_starts equal to buffer_size, training must not stop each time it does."""
    fast_kwargs.update(buffer_size=200, learning_starts=200, replay_ratio=0.5)
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(600)
    assert len(model.replay_buffer) < 200  # the situation: evicted below learning_starts
    assert model._n_updates >= 0.9 * (600 - 200) * 0.5

"""SB3's VecNormalize with MuZero: the replay stores the env's original data, reads are normalized."""

import re

import gymnasium
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize

from muzero_agents import MuZero
from muzero_agents.actor import StepRecord
from muzero_agents.normalization import as_stored, normalized_window, replay_reads
from muzero_agents.replay import RUNNING, ReplayWindow


def normalizer() -> VecNormalize:
    """A VecNormalize over CartPole with fixed statistics: observations map to (x - 1) / 2, rewards
    are divided by 10."""
    vec = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), clip_obs=100.0, clip_reward=100.0)
    vec.obs_rms.mean[:], vec.obs_rms.var[:] = 1.0, 4.0
    vec.ret_rms.var = 100.0 - vec.epsilon
    vec.training = False  # the statistics stay as set
    return vec


def test_a_step_is_stored_with_the_envs_original_data():
    vec = normalizer()
    vec.reset()
    _, normalized_rewards, _, _ = vec.step(np.zeros(2, dtype=np.int64))
    taken_from = np.full((2, 4), 3.0, np.float32)  # the original observations the step was taken from
    final = np.full(4, 5.0, np.float32)
    record = StepRecord(
        observations=(taken_from - 1.0) / 2.0, actions=np.zeros(2, np.int64), rewards=normalized_rewards,
        root_values=np.array([0.5, -1.0]), search_policies=np.full((2, 2), 0.5, np.float32),
        dones=np.array([True, False]), terminated=np.array([False, False]),
        final_observations={0: (final - 1.0) / 2.0}, final_values={0: 0.3}, legal_masks=None,
        random_moves=np.zeros(2, bool),
    )  # fmt: skip
    stored, next_original = as_stored(record, vec, taken_from)
    np.testing.assert_array_equal(stored.observations, taken_from)
    np.testing.assert_array_equal(stored.rewards, [1.0, 1.0])  # CartPole's own reward
    np.testing.assert_allclose(stored.final_observations[0], final, rtol=1e-6)
    np.testing.assert_array_equal(next_original, vec.get_original_obs())
    # the search's values in the original reward units (x10), as the rewards
    np.testing.assert_allclose(stored.root_values, [5.0, -10.0])
    assert stored.final_values[0] == pytest.approx(3.0)
    assert as_stored(record, None, taken_from) == (record, taken_from)


def test_reads_are_normalized_with_the_statistics_of_now():
    vec = normalizer()
    window = ReplayWindow(
        observations=np.full((1, 4), 3.0, np.float32), actions=np.zeros((1, 1), np.int64),
        rewards=np.array([[1.0, -2.0, 0.0]], np.float32), values=np.array([[5.0, -10.0, 0.0]]),
        policies=np.full((1, 2, 2), 0.5, np.float32), episode_end=np.array([RUNNING], np.int8),
        steps_left=np.array([3]), handles=np.zeros((1, 3), np.int64), weights=np.ones(1, np.float32),
        next_observations=np.full((1, 1, 4), 5.0, np.float32),
    )  # fmt: skip
    read = normalized_window(window, vec)
    np.testing.assert_allclose(read.observations, 1.0, rtol=1e-6)
    np.testing.assert_allclose(read.next_observations, 2.0, rtol=1e-6)
    np.testing.assert_allclose(read.rewards, [[0.1, -0.2, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(read.values, [[0.5, -1.0, 0.0]], rtol=1e-6)
    np.testing.assert_array_equal(read.weights, window.weights)

    seen = []
    evaluate, transform = replay_reads(lambda obs, masks: seen.append(obs) or (np.zeros(1), None), vec)
    evaluate(np.full((1, 4), 7.0, np.float32), None)
    np.testing.assert_allclose(seen[0], 3.0, rtol=1e-6)
    np.testing.assert_allclose(transform(window).rewards, read.rewards)
    assert replay_reads(len, None) == (len, None)


def test_learn_with_vecnormalize_stores_original_rewards_and_trains_on_normalized_ones(
    fast_kwargs, monkeypatch
):
    from muzero_agents import learner

    trained_rewards = []
    make_batch = learner.make_batch
    monkeypatch.setattr(
        learner, "make_batch", lambda w, **k: trained_rewards.append(w.rewards) or make_batch(w, **k)
    )
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0), gamma=0.997)
    model = MuZero("MlpPolicy", env, seed=0, **fast_kwargs)
    model.learn(200)
    stored = model.replay_buffer.sample(64).rewards
    assert set(np.unique(stored)) <= {0.0, 1.0}  # CartPole pays 1 per step, 0 past the end
    assert trained_rewards and not set(np.unique(trained_rewards[-1])) <= {0.0, 1.0}
    np.testing.assert_allclose(
        np.unique(trained_rewards[-1])[-1], env.normalize_reward(1.0), rtol=0.05
    )  # stats move
    assert np.abs(model.predict(env.reset())[0]).max() <= 1


def test_vecnormalize_with_ray_actors_is_refused_naming_fixed_scales(fast_kwargs):
    def normalized_cartpoles():
        return VecNormalize(make_vec_env("CartPole-v1", n_envs=2))

    model = MuZero("MlpPolicy", normalized_cartpoles, num_actors=1, **fast_kwargs)
    with pytest.raises(ValueError, match="VecNormalize is not supported with num_actors.*TransformReward"):
        model.learn(64)


def test_a_frame_stack_outside_vecnormalize_is_refused_naming_the_order(fast_kwargs):
    env = VecFrameStack(VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0)), 2)
    model = MuZero("MlpPolicy", env, **fast_kwargs)
    with pytest.raises(ValueError, match=re.escape("VecNormalize(VecFrameStack(env, n))")):
        model.learn(16)
    assert len(model.replay_buffer) == 0


def test_a_replay_saved_before_original_data_storage_is_refused_under_vecnormalize(
    fast_kwargs, tmp_path, monkeypatch
):
    from muzero_agents import replay

    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = MuZero("MlpPolicy", env, **fast_kwargs)
    model.learn(16)
    model.save_replay_buffer(tmp_path / "new.pkl")
    model.load_replay_buffer(tmp_path / "new.pkl")  # this version's replay: the env's original data
    monkeypatch.setattr(replay, "_FORMAT_VERSION", 3)  # as saved before it
    model.save_replay_buffer(tmp_path / "old.pkl")
    with pytest.raises(ValueError, match="normalized twice. Collect new data"):
        model.load_replay_buffer(tmp_path / "old.pkl")
    plain = MuZero("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2), **fast_kwargs)
    plain.load_replay_buffer(tmp_path / "old.pkl")  # without VecNormalize it trains as before
    monkeypatch.setattr(replay, "_FORMAT_VERSION", 4)
    plain.save_replay_buffer(tmp_path / "saved-again.pkl")  # still perhaps normalized data
    with pytest.raises(ValueError, match="normalized twice"):
        model.load_replay_buffer(tmp_path / "saved-again.pkl")


class ChannelsLastFrames(gymnasium.Env):
    """Frames of (8, 8, 3) whose pixels count the steps by 10; action 1 pays 5."""

    observation_space = gymnasium.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full((8, 8, 3), 0, np.uint8), {}

    def step(self, action):
        self.t += 1
        return np.full((8, 8, 3), 10 * self.t, np.uint8), 5.0 * int(action), self.t >= 6, False, {}


def test_channels_last_frames_under_vecnormalize_are_stored_as_the_env_gave_them(fast_kwargs):
    """Without observation normalization SB3 puts VecTransposeImage outside the user's VecNormalize."""
    kwargs = {**fast_kwargs, "policy_kwargs": dict(network_kwargs=dict(channels=8, num_blocks=1))}
    frames = DummyVecEnv([ChannelsLastFrames, ChannelsLastFrames])
    model = MuZero("CnnPolicy", VecNormalize(frames, norm_obs=False), seed=0, **kwargs)
    model.learn(48)
    window = model.replay_buffer.sample(32)
    assert window.observations.dtype == np.uint8 and window.observations.shape[1:] == (3, 8, 8)
    assert set(np.unique(window.observations)) <= set(range(0, 70, 10))
    assert set(np.unique(window.rewards)) <= {0.0, 5.0}

    # normalized frames are float (not images to SB3): no transpose, the originals are stored
    frames = DummyVecEnv([ChannelsLastFrames, ChannelsLastFrames])
    normalized = MuZero("CnnPolicy", VecNormalize(frames), seed=0, **kwargs)
    normalized.learn(48)
    stored = normalized.replay_buffer.sample(32).observations
    assert stored.shape[1:] == (8, 8, 3) and set(np.unique(stored)) <= set(range(0, 70, 10))


def test_a_wrapper_outside_vecnormalize_that_keeps_the_observations_is_accepted(fast_kwargs):
    from stable_baselines3.common.vec_env import VecMonitor

    env = VecMonitor(VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0)))
    model = MuZero("MlpPolicy", env, **fast_kwargs)
    model.learn(48)
    assert set(np.unique(model.replay_buffer.sample(16).rewards)) <= {0.0, 1.0}

"""The CUDA path end to end: acting, training, Reanalyze with search, save and load. Skipped
without a CUDA device (the CPU path is covered everywhere else)."""

import importlib.util

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack

from muzero_agents import MuZero
from tests.test_save_load import _FrameEnv

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _train_save_load(model, tmp_path, observation):
    model.learn(96)
    assert model.policy.device.type == "cuda" and model.learner.average().device.type == "cuda"
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "replay.pkl")
    loaded = MuZero.load(tmp_path / "model.zip", env=model.get_env(), device="cuda")
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    assert loaded.policy.device.type == "cuda"
    expected = model.predict(observation, deterministic=True)[0]
    assert (loaded.predict(observation, deterministic=True)[0] == expected).all()
    loaded.learn(32, reset_num_timesteps=False)


def test_mlp_learns_saves_and_loads_on_cuda(fast_kwargs, tmp_path):
    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    reanalyze = {"fraction": 1.0, "search": True}
    play = {"ema_decay": 0.99}
    model = MuZero(
        "MlpPolicy", env, device="cuda", seed=0, reanalyze_kwargs=reanalyze, play_kwargs=play, **fast_kwargs
    )
    _train_save_load(model, tmp_path, env.reset())


def test_cnn_on_stacked_frames_learns_saves_and_loads_on_cuda(fast_kwargs, tmp_path):
    env = VecFrameStack(DummyVecEnv([_FrameEnv, _FrameEnv]), 2, channels_order="first")
    del fast_kwargs["policy_kwargs"]
    model = MuZero(
        "CnnPolicy",
        env,
        device="cuda",
        seed=0,
        learner_kwargs={"mixed_precision": torch.cuda.is_bf16_supported()},
        policy_kwargs={"network_kwargs": {"channels": 8, "num_blocks": 1}},
        **fast_kwargs,
    )
    assert model.replay_buffer.frame_stack == (2, 0)
    _train_save_load(model, tmp_path, env.reset())


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs Ray (the distributed extra)")
def test_a_cuda_learner_trains_with_actors_and_a_reanalyze_worker_on_the_cpu(fast_kwargs, tmp_path):
    import ray

    model = MuZero(
        "MlpPolicy",
        "CartPole-v1",
        device="cuda",
        num_actors=1,
        reanalyze_kwargs={"num_workers": 1},
        seed=0,
        **fast_kwargs,
    )
    try:
        model.learn(300)
        assert model.policy.device.type == "cuda" and model._n_updates > 0
        assert model.num_timesteps >= 300 and model._remote_reanalyze is None  # ended with learn
        # a save of the CUDA learner loads on the CPU with the same weights
        model.save(tmp_path / "model.zip")
        loaded = MuZero.load(tmp_path / "model.zip", device="cpu")
        for saved, trained in zip(loaded.policy.parameters(), model.policy.parameters(), strict=True):
            torch.testing.assert_close(saved, trained.cpu())
    finally:
        ray.shutdown()

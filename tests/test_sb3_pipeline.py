"""An SB3 user's pipeline works unchanged with MuZero (callbacks, loggers, VecEnv, save/load)."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure

from muzero_agents import MuZero
from tests.conftest import sample_batch


class CountSteps(BaseCallback):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def _on_step(self) -> bool:
        self.calls += 1
        return True


def test_learn_with_env_id_calls_callback_once_per_vec_step(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    counter = CountSteps()
    model.learn(total_timesteps=120, callback=counter)
    assert model.num_timesteps == 120 and counter.calls == 120
    assert model._n_updates > 0
    assert len(model.replay_buffer) == 120


def test_make_vec_env_four_envs(fast_kwargs):
    env = make_vec_env("CartPole-v1", n_envs=4, seed=0)
    model = MuZero("MlpPolicy", env, seed=0, **fast_kwargs)
    counter = CountSteps()
    model.learn(total_timesteps=200, callback=counter)
    assert model.num_timesteps == 200 and counter.calls == 50
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (4,)


def test_eval_callback_stop_on_threshold_and_callback_list(tmp_path, fast_kwargs):
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=1)
    stop = StopTrainingOnRewardThreshold(reward_threshold=0.0, verbose=0)  # any return beats 0
    eval_cb = EvalCallback(
        eval_env,
        callback_on_new_best=stop,
        eval_freq=50,
        n_eval_episodes=2,
        log_path=str(tmp_path),
        best_model_save_path=str(tmp_path),
    )
    counter = CountSteps()
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=10_000, callback=CallbackList([counter, eval_cb]))
    assert model.num_timesteps == 50 and counter.calls == 50  # stopped at the first evaluation
    assert (tmp_path / "evaluations.npz").exists() and (tmp_path / "best_model.zip").exists()
    MuZero.load(tmp_path / "best_model.zip")


def test_checkpoint_callback_writes_loadable_saves(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(
        total_timesteps=60,
        callback=CheckpointCallback(save_freq=30, save_path=str(tmp_path), save_replay_buffer=True),
    )
    saves = sorted(tmp_path.glob("rl_model_*_steps.zip"))
    assert [p.name for p in saves] == ["rl_model_30_steps.zip", "rl_model_60_steps.zip"]
    assert len(list(tmp_path.glob("rl_model_replay_buffer_*_steps.pkl"))) == 2
    loaded = MuZero.load(saves[-1])
    assert loaded.num_timesteps == 60


def test_evaluate_policy_and_progress_bar(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=40, progress_bar=True)
    env = gym.make("CartPole-v1")
    mean, std = evaluate_policy(model, env, n_eval_episodes=2, deterministic=True)
    assert 8 <= mean <= 500 and std >= 0


def test_csv_and_tensorboard_loggers(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.set_logger(configure(str(tmp_path), ["csv", "tensorboard"]))
    model.learn(total_timesteps=300, log_interval=1)
    header = (tmp_path / "progress.csv").read_text().splitlines()[0].split(",")
    for key in [
        "rollout/ep_rew_mean",
        "time/fps",
        "train/value_loss",
        "train/reward_loss",
        "train/policy_loss",
        "search/root_value",
        "search/visit_entropy",
    ]:
        assert key in header, key
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_tensorboard_log_argument(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", tensorboard_log=str(tmp_path), seed=0, **fast_kwargs)
    model.learn(total_timesteps=100, log_interval=1, tb_log_name="run")
    assert list(tmp_path.glob("run_1/events.out.tfevents.*"))


def test_save_load_gives_identical_deterministic_actions(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=100)
    obs = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32) * 0.1
    before, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model.zip")
    after, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(before, after)
    single, _ = loaded.predict(obs[0], deterministic=True)
    assert np.ndim(single) == 0 and single == before[0]


def test_load_with_new_env_and_continue_training(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=80)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "replay")
    loaded = MuZero.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=1, seed=3))
    loaded.load_replay_buffer(tmp_path / "replay.pkl")
    updates = loaded._n_updates
    assert len(loaded.replay_buffer) == 80
    loaded.learn(total_timesteps=40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 120 and loaded._n_updates > updates
    assert len(loaded.replay_buffer) == 120


def test_load_with_more_envs_continues_and_refuses_mismatched_replay(tmp_path, fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=60)
    model.save(tmp_path / "model")
    model.save_replay_buffer(tmp_path / "replay")
    loaded = MuZero.load(tmp_path / "model", env=make_vec_env("CartPole-v1", n_envs=2, seed=3))
    with pytest.raises(ValueError, match="recorded with n_envs=1"):
        loaded.load_replay_buffer(tmp_path / "replay.pkl")
    loaded.learn(total_timesteps=40, reset_num_timesteps=False)
    assert loaded.num_timesteps == 100


def test_get_and_set_parameters_round_trip(fast_kwargs):
    a = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    b = MuZero("MlpPolicy", "CartPole-v1", seed=1, **fast_kwargs)
    a.learn(total_timesteps=60)
    b.set_parameters(a.get_parameters())
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32) * 0.1
    np.testing.assert_array_equal(
        a.predict(obs, deterministic=True)[0], b.predict(obs, deterministic=True)[0]
    )


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


def test_predict_honours_action_masks(fast_kwargs):
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    obs = np.zeros((6, 4), np.float32)
    masks = np.tile(np.array([False, True]), (6, 1))
    actions, _ = model.predict(obs, action_masks=masks)
    assert (actions == 1).all()


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


def test_unknown_search_name_rejected():
    with pytest.raises(ValueError, match="search"):
        MuZero("MlpPolicy", "CartPole-v1", search="alphazero")


@pytest.mark.parametrize("with_search", [True, False])
def test_reanalyze_refreshes_targets_with_the_latest_network(fast_kwargs, with_search, monkeypatch):
    import muzero_agents.algorithm as algorithm
    from muzero_agents.reanalyze import network_evaluate

    calls = []

    def recording(policy, *args):
        evaluate = network_evaluate(policy, *args)
        return lambda observations, masks: calls.append((policy, len(observations))) or evaluate(observations, masks)

    monkeypatch.setattr(algorithm, "network_evaluate", recording)
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs, reanalyze_kwargs=dict(fraction=1.0, search=with_search))
    model.learn(total_timesteps=80)
    assert calls and model._n_updates == len(calls)
    assert all(policy is model.policy for policy, _ in calls)  # the learner's newest network
    evaluate = network_evaluate(model.policy, model.planner, 4, with_search, np.random.default_rng(0))
    values, policies = evaluate(np.zeros((3, 4), np.float32), None)
    assert values.shape == (3,) and (policies is None) != with_search


def test_stopping_callback_still_stores_the_step_and_resumes(fast_kwargs):
    class StopAtTen(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 10

    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=100, callback=StopAtTen())
    assert model.num_timesteps == 10 and len(model.replay_buffer) == 10
    model.learn(total_timesteps=5, reset_num_timesteps=False)
    assert model.num_timesteps == 15 and len(model.replay_buffer) == 15


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
    raw = np.zeros((10, 10, 3), np.uint8)
    action, _ = model.predict(raw, deterministic=True)
    assert int(action) in (0, 1)
    mean, _ = evaluate_policy(model, ChannelLastEnv(), n_eval_episodes=2)
    assert mean == 1.0


def test_user_optimizer_kwargs_merge_with_weight_decay(fast_kwargs):
    kwargs = {**fast_kwargs, "policy_kwargs": dict(optimizer_kwargs=dict(eps=1e-5))}
    model = MuZero("MlpPolicy", "CartPole-v1", **kwargs, learner_kwargs=dict(weight_decay=0.01))
    group = model.policy.optimizer.param_groups[0]
    assert group["eps"] == 1e-5 and group["weight_decay"] == 0.01

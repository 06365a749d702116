"""Callbacks: SB3's callback contract during MuZero.learn (on_step per vectorized step, EvalCallback, CheckpointCallback, stopping, progress bar)."""

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import (
    BaseCallback,
    CallbackList,
    CheckpointCallback,
    EvalCallback,
    StopTrainingOnRewardThreshold,
)
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from muzero_agents import MuZero


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


def play_alone(model, seed):
    """One CartPole episode reset with ``seed``, played by ``model.predict(deterministic=True)`` one
    observation at a time: (its return, the actions played)."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, actions, done = 0.0, [], False
    while not done:
        action, _ = model.predict(obs, deterministic=True)
        actions.append(int(action))
        obs, reward, terminated, truncated, _ = env.step(action)
        total, done = total + float(reward), terminated or truncated
    return total, actions


def test_evaluate_policy_and_progress_bar(fast_kwargs, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich fits the bar to the terminal: a narrow one drops "40/40"
    # predict's 16 simulations split the root's visits: sampling from them is not playing the most visited
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, play_kwargs=dict(num_simulations=16), **fast_kwargs)
    model.learn(total_timesteps=40, progress_bar=True)
    assert "40/40" in capsys.readouterr().out  # the bar ran to learn's last step
    # After 40 steps MuZero pushes the same way everywhere: a prior that depends on the state (with
    # these weights, both episodes push both ways) makes the comparison below mean something.
    torch.manual_seed(4)
    with torch.no_grad():
        for parameter in model.policy.network.policy_head.parameters():
            parameter.add_(torch.randn_like(parameter))
    env = make_vec_env("CartPole-v1", n_envs=2, seed=5)  # envs reset with seeds 5 and 6
    returns, _ = evaluate_policy(model, env, 2, deterministic=True, return_episode_rewards=True)
    played = [play_alone(model, seed) for seed in (5, 6)]
    assert all(set(actions) == {0, 1} for _, actions in played)
    # evaluate_policy scores the batched envs with what the model plays deterministically on each alone
    assert sorted(returns) == sorted(total for total, _ in played)


def test_stopping_callback_still_stores_the_step_and_resumes(fast_kwargs):
    class StopAtTen(BaseCallback):
        def _on_step(self) -> bool:
            return self.num_timesteps < 10

    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs)
    model.learn(total_timesteps=100, callback=StopAtTen())
    assert model.num_timesteps == 10 and len(model.replay_buffer) == 10
    model.learn(total_timesteps=5, reset_num_timesteps=False)
    assert model.num_timesteps == 15 and len(model.replay_buffer) == 15


def test_a_stopped_rollout_does_not_end_as_in_sb3(fast_kwargs):
    class Events(BaseCallback):
        def __init__(self):
            super().__init__()
            self.events = []

        def _on_rollout_start(self) -> None:
            self.events.append("start")

        def _on_step(self) -> bool:
            self.events.append("step")
            return self.num_timesteps < 3

        def _on_rollout_end(self) -> None:
            self.events.append("end")

    callback = Events()
    MuZero("MlpPolicy", "CartPole-v1", seed=0, **fast_kwargs).learn(total_timesteps=10, callback=callback)
    assert callback.events == ["start", "step", "end", "start", "step", "end", "start", "step"]


class _FailsAtStep(gym.Wrapper):
    """Raises at its ``fail_at``-th step (counted over the wrapper's life); counts its resets."""

    def __init__(self, env, fail_at):
        super().__init__(env)
        self.fail_at, self.steps, self.resets = fail_at, 0, 0

    def reset(self, **kwargs):
        self.resets += 1
        return self.env.reset(**kwargs)

    def step(self, action):
        self.steps += 1
        if self.steps == self.fail_at:
            raise RuntimeError("the env failed")
        return self.env.step(action)


def test_an_env_that_fails_mid_step_is_reset_when_learning_goes_on(fast_kwargs):
    """Env 1 fails after env 0 has stepped: the observations the model holds are stale, so the
    next learn() resets the envs (and ends the stored running episodes) instead of going on."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda n=n: _FailsAtStep(gym.make("CartPole-v1"), n) for n in (None, 7)])
    model = MuZero("MlpPolicy", env, seed=0, **fast_kwargs)
    try:
        model.learn(total_timesteps=100)
    except RuntimeError as error:
        assert "the env failed" in str(error)
    assert model._last_obs is None and env.envs[0].steps == 7  # env 0 moved on without the model
    resets = [e.resets for e in env.envs]
    model.learn(total_timesteps=4, reset_num_timesteps=False)
    assert [e.resets for e in env.envs] == [r + 1 for r in resets]

"""Background training: the trainer thread's contract, and MuZero.learn with it on."""

import threading
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from muzero_agents import MuZero
from muzero_agents.loops import BackgroundLoop


def wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def counting_trainer(failure: Exception | None = None):
    learner, acting = nn.Linear(2, 1), nn.Linear(2, 1)

    def gradient_step(replay_lock):
        if failure is not None:
            raise failure
        with torch.no_grad():
            learner.weight += 1.0
        return {"loss": float(learner.weight.detach().sum())}

    return BackgroundLoop(gradient_step, learner, acting), learner, acting


def test_trainer_takes_exactly_the_owed_steps_and_stops():
    trainer, _, _ = counting_trainer()
    trainer.start()
    trainer.owe(3)
    wait_until(lambda: trainer.steps_taken == 3)
    time.sleep(0.05)
    assert trainer.steps_taken == 3 and trainer.steps_owed == 0
    trainer.stop()
    assert not trainer.running


def test_statistics_are_drained_once():
    trainer, learner, _ = counting_trainer()
    start = float(learner.weight.sum())
    trainer.start()
    trainer.owe(2)
    wait_until(lambda: trainer.steps_taken == 2)
    losses = [s["loss"] for s in trainer.drain_statistics()]
    assert losses == pytest.approx([start + 2.0, start + 4.0])
    assert trainer.drain_statistics() == []
    trainer.stop()


def test_acting_policy_loads_the_newest_published_weights():
    trainer, learner, acting = counting_trainer()
    trainer.before_env_step()  # nothing published yet: unchanged
    assert not torch.equal(acting.weight, learner.weight)
    trainer.start()
    trainer.owe(2)
    wait_until(lambda: trainer.steps_taken == 2)
    trainer.stop()
    trainer.before_env_step()
    assert torch.equal(acting.weight, learner.weight) and torch.equal(acting.bias, learner.bias)
    with torch.no_grad():
        learner.weight += 5.0  # the copy is a snapshot, not a view of the learner
    assert not torch.equal(acting.weight, learner.weight)


def test_trainer_failure_is_raised_on_the_callers_thread():
    trainer, _, _ = counting_trainer(failure=ValueError("bad batch"))
    trainer.start()
    trainer.owe(1)
    wait_until(lambda: not trainer.running)
    with pytest.raises(RuntimeError, match="background trainer failed.*bad batch") as info:
        trainer.raise_if_failed()
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(RuntimeError, match="bad batch"):  # stopping raises it too
        trainer.stop()


def test_idle_trainer_stops_promptly():
    trainer, _, _ = counting_trainer()
    trainer.start()
    started = time.monotonic()
    trainer.stop()
    assert time.monotonic() - started < 5.0 and not trainer.running and trainer.steps_taken == 0


def trainer_threads():
    return [t for t in threading.enumerate() if t.name == "muzero-trainer" and t.is_alive()]


def cartpole_model(fast_kwargs, **overrides):
    return MuZero("MlpPolicy", gym.make("CartPole-v1"), seed=0, **{**fast_kwargs, **overrides})


def test_learn_in_background_trains_within_the_replay_ratio(fast_kwargs):
    model = cartpole_model(fast_kwargs, background_training=True)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=300)
    assert model._n_updates > 0
    collected_after_start = model.num_timesteps - fast_kwargs["learning_starts"] + 1
    assert model._n_updates <= fast_kwargs["replay_ratio"] * collected_after_start
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert model._loop is None and not trainer_threads()
    assert model._acting_policy is model.policy  # after learn, predict uses the trained network
    action, _ = model.predict(model.env.reset(), deterministic=True)
    assert action.shape == (1,)


class SaveAndPredictMidway(BaseCallback):
    """Saves and plays once while the trainer thread runs."""

    def __init__(self, path, at_step=150):
        super().__init__()
        self.path, self.at_step, self.saw_copy = path, at_step, None

    def _on_step(self) -> bool:
        if self.num_timesteps == self.at_step:
            self.saw_copy = self.model._acting_policy is not self.model.policy
            self.model.save(self.path)
            self.model.predict(self.locals["new_obs"], deterministic=True)
        return True


def test_save_and_predict_during_background_learn(fast_kwargs, tmp_path):
    model = cartpole_model(fast_kwargs, background_training=True)
    callback = SaveAndPredictMidway(tmp_path / "midway.zip")
    model.learn(total_timesteps=250, callback=callback)
    assert callback.saw_copy
    loaded = MuZero.load(tmp_path / "midway.zip")
    assert loaded.background_training and loaded._loop is None
    action, _ = loaded.predict(np.zeros(4, np.float32), deterministic=True)
    assert 0 <= int(action) < 2


def test_failed_gradient_step_stops_learn_with_the_cause(fast_kwargs, monkeypatch):
    model = cartpole_model(fast_kwargs, background_training=True)

    def broken_step(*args, **kwargs):
        raise FloatingPointError("loss is nan")

    monkeypatch.setattr(model, "_gradient_step", broken_step)
    with pytest.raises(RuntimeError, match="background trainer failed.*loss is nan"):
        model.learn(total_timesteps=400)
    assert model._loop is None and not trainer_threads()


def test_callback_stop_ends_the_trainer(fast_kwargs):
    class StopAt(BaseCallback):
        def _on_step(self):
            return self.num_timesteps < 120

    model = cartpole_model(fast_kwargs, background_training=True)
    model.learn(total_timesteps=10_000, callback=StopAt())
    assert model.num_timesteps == 120 and not trainer_threads()


def test_background_two_player_with_reanalyze_search():
    pytest.importorskip("pettingzoo")
    from tests.test_two_player import tictactoe_model

    model = tictactoe_model(background_training=True, reanalyze_kwargs=dict(search=True))
    model.learn(total_timesteps=120)
    assert model._n_updates > 0 and not trainer_threads()


def test_background_training_must_be_a_bool(fast_kwargs):
    with pytest.raises((TypeError, ValueError), match="background_training"):
        cartpole_model(fast_kwargs, background_training="yes")


class WatchActingCopy(BaseCallback):
    """Records whether self-play's copy has taken the learner's weights, and who trained."""

    def __init__(self):
        super().__init__()
        self.initial = None
        self.moved = False

    def _on_training_start(self):
        self.initial = [p.detach().clone() for p in self.model._acting_policy.parameters()]

    def _on_step(self):
        acting = list(self.model._acting_policy.parameters())
        self.moved |= any(not torch.equal(a, b) for a, b in zip(acting, self.initial))
        return True


def test_self_play_takes_the_trainers_weights_and_training_runs_off_the_main_thread(fast_kwargs):
    model = cartpole_model(fast_kwargs, background_training=True)
    threads = []
    step = model._gradient_step

    def recording_step(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return step(*args, **kwargs)

    model._gradient_step = recording_step
    watch = WatchActingCopy()
    model.learn(total_timesteps=400, callback=watch)
    assert threads and set(threads) == {"muzero-trainer"}
    assert watch.moved  # the acting copy loaded weights the trainer published


def test_callback_error_propagates_and_ends_the_trainer(fast_kwargs):
    class FailAt(BaseCallback):
        def _on_step(self):
            if self.num_timesteps == 150:
                raise ValueError("callback broke")
            return True

    model = cartpole_model(fast_kwargs, background_training=True)
    with pytest.raises(ValueError, match="callback broke"):
        model.learn(total_timesteps=1_000, callback=FailAt())
    assert model._loop is None and not trainer_threads()
    before = model._n_updates
    model.learn(total_timesteps=100)  # and the model can learn again
    assert model._n_updates > before


def test_a_trainer_that_outlived_its_learn_is_reaped_by_the_next(fast_kwargs):
    """learn() keeps a trainer that did not stop in time; the next learn() clears it once it ended."""
    model = cartpole_model(fast_kwargs, background_training=True)
    model.learn(total_timesteps=100)
    stale, _, _ = counting_trainer()
    stale.start()
    model._loop = stale  # as a stop that timed out leaves it
    with pytest.raises(RuntimeError, match="still running"):
        model.learn(total_timesteps=50)
    stale.stop()
    before = model._n_updates
    model.learn(total_timesteps=150, reset_num_timesteps=False)
    assert model._loop is None and not trainer_threads() and model._n_updates > before


def test_a_failed_trainer_does_not_block_the_next_learn(fast_kwargs, monkeypatch):
    model = cartpole_model(fast_kwargs, background_training=True)
    real_step = model._gradient_step
    calls = []

    def fails_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise FloatingPointError("loss is nan")
        return real_step(*args, **kwargs)

    monkeypatch.setattr(model, "_gradient_step", fails_once)
    with pytest.raises(RuntimeError, match="loss is nan"):
        model.learn(total_timesteps=400)
    assert model._loop is None and not trainer_threads()
    model.learn(total_timesteps=200)  # the failure is not raised again
    assert model._n_updates > 0

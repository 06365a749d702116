"""play_kwargs ema_decay: predict plays with a moving average of the weights; self-play and training use the newest."""

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from muzero_agents import MuZero
from muzero_agents.averaging import update_average


def small_model(**kwargs) -> MuZero:
    return MuZero(
        "MlpPolicy", "CartPole-v1", num_simulations=3, learning_starts=8, batch_size=4, seed=0, **kwargs
    )


def states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_update_average_moves_floats_by_one_minus_decay_and_copies_integer_buffers():
    torch.manual_seed(0)
    average, current = (
        nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)),
        nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)),
    )
    current[1].num_batches_tracked.fill_(7)
    current[1].running_mean.fill_(2.0)  # away from the fresh module's statistics, so a copy would show
    current[1].running_var.fill_(3.0)
    before = {k: v.clone() for k, v in average.state_dict().items()}
    update_average(average, current, decay=0.75)
    after, new = average.state_dict(), current.state_dict()
    for name in ("0.weight", "0.bias", "1.running_mean", "1.running_var"):
        torch.testing.assert_close(after[name], 0.75 * before[name] + 0.25 * new[name])
    assert after["1.num_batches_tracked"].item() == 7


@pytest.mark.parametrize("decay", [1, 1.5, -0.1, True, "0.99"])
def test_bad_ema_decay_is_refused_with_the_fix(decay):
    with pytest.raises((TypeError, ValueError), match="ema_decay"):
        small_model(play_kwargs=dict(ema_decay=decay))


def test_predict_searches_with_the_average_and_self_play_with_the_newest_weights(monkeypatch):
    model = small_model(play_kwargs=dict(ema_decay=0.5))
    used = []
    plan = model.planner.plan
    monkeypatch.setattr(
        model.planner, "plan", lambda policy, *a, **k: used.append(policy) or plan(policy, *a, **k)
    )
    model.learn(16)
    assert used and all(policy is model.policy for policy in used)  # self-play: the newest network
    assert not states_equal(model.learner.weight_average, model.policy)  # trained, and lagging behind
    used.clear()
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert used == [model.learner.weight_average]
    model.play_kwargs["ema_decay"] = None  # back to the newest weights
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert used[-1] is model.policy


def test_the_average_follows_training_with_a_background_trainer():
    model = small_model(play_kwargs=dict(ema_decay=0.5), background_training=True)
    start = {k: v.clone() for k, v in model.learner.weight_average.state_dict().items()}
    model.learn(64)
    assert model._n_updates > 0
    moved = model.learner.weight_average.state_dict()
    assert any(not torch.equal(start[k], moved[k]) for k in start)
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)


def test_the_average_is_saved_and_restored(tmp_path):
    model = small_model(play_kwargs=dict(ema_decay=0.5))
    model.learn(16)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model")
    assert loaded.play_kwargs["ema_decay"] == 0.5
    assert states_equal(loaded.learner.weight_average, model.learner.weight_average)
    assert not states_equal(loaded.learner.weight_average, loaded.policy)
    without = MuZero.load(tmp_path / "model", play_kwargs=dict(ema_decay=None))  # its average is dropped
    assert without.learner.weight_average is None and states_equal(without.policy, model.policy)


def test_a_save_without_an_average_starts_one_at_its_weights(tmp_path):
    model = small_model()
    model.learn(16)
    model.save(tmp_path / "plain")
    loaded = MuZero.load(tmp_path / "plain", play_kwargs=dict(ema_decay=0.9))
    assert states_equal(loaded.learner.weight_average, model.policy)
    other = small_model(play_kwargs=dict(ema_decay=0.9))
    other.set_parameters(str(tmp_path / "plain.zip"))  # from a path too
    assert states_equal(other.learner.weight_average, model.policy)


def test_ema_decay_set_after_training_starts_at_the_weights_then_and_is_checked():
    model = small_model()
    model.learn(16)
    model.play_kwargs["ema_decay"] = 0.9
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert states_equal(model.learner.weight_average, model.policy)
    with pytest.raises(ValueError, match="ema_decay"):  # refused where it is set
        model.play_kwargs["ema_decay"] = 2.0
    assert model.play_kwargs["ema_decay"] == 0.9


def test_numpy_floats_are_accepted():
    assert small_model(play_kwargs=dict(ema_decay=np.float32(0.99))).play_kwargs["ema_decay"] == np.float32(
        0.99
    )


def test_predict_holds_the_background_trainer_between_steps_while_it_reads_the_average(monkeypatch):
    model = small_model(play_kwargs=dict(ema_decay=0.5), background_training=True)
    locked = []
    plan = model.planner.plan

    def recording(policy, *args, **kwargs):
        if policy is model.learner.weight_average:  # predict's searches (self-play plays the acting copy)
            locked.append(model._loop is not None and model._loop.step_lock.locked())
        return plan(policy, *args, **kwargs)

    monkeypatch.setattr(model.planner, "plan", recording)

    class PredictEveryStep(BaseCallback):
        def _on_step(self) -> bool:
            self.model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
            return True

    model.learn(32, callback=PredictEveryStep())
    assert locked and all(locked)


def test_turning_the_average_off_drops_it_so_a_later_one_starts_afresh(tmp_path):
    model = small_model(play_kwargs=dict(ema_decay=0.5))
    model.learn(16)
    stale = model.learner.weight_average
    model.play_kwargs["ema_decay"] = None
    model.learn(16, reset_num_timesteps=False)  # a gradient step without the average drops it
    assert model.learner.weight_average is None
    model.play_kwargs["ema_decay"] = 0.5
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert model.learner.weight_average is not stale and states_equal(
        model.learner.weight_average, model.policy
    )

    other = small_model()
    other.learn(16)
    other.save(tmp_path / "other")
    model.play_kwargs["ema_decay"] = None
    model.set_parameters(str(tmp_path / "other.zip"))  # loading drops it too
    assert model.learner.weight_average is None


def test_set_parameters_fills_an_average_set_after_construction(tmp_path):
    averaged = small_model(play_kwargs=dict(ema_decay=0.5))
    averaged.learn(16)
    averaged.save(tmp_path / "averaged")
    model = small_model()
    model.play_kwargs["ema_decay"] = 0.9
    model.set_parameters(str(tmp_path / "averaged.zip"))
    assert states_equal(model.learner.weight_average, averaged.learner.weight_average)
    fresh = small_model(play_kwargs=dict(ema_decay=0.9))
    fresh.set_parameters(averaged.get_parameters())  # a dict with the average
    assert states_equal(fresh.learner.weight_average, averaged.learner.weight_average)
    plain = small_model()
    plain.learn(16)
    fresh.set_parameters(plain.get_parameters())  # a dict without one: it starts at its weights
    assert states_equal(fresh.learner.weight_average, plain.policy)

"""ema_decay: predict plays with a moving average of the weights; self-play and training use the newest."""

import numpy as np
import pytest
import torch
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
    before = {k: v.clone() for k, v in average.state_dict().items()}
    update_average(average, current, decay=0.75)
    after, new = average.state_dict(), current.state_dict()
    for name in ("0.weight", "0.bias", "1.running_mean"):
        torch.testing.assert_close(after[name], 0.75 * before[name] + 0.25 * new[name])
    assert after["1.num_batches_tracked"].item() == 7


@pytest.mark.parametrize("decay", [0, 1, 1.5, -0.1, True, "0.99"])
def test_bad_ema_decay_is_refused_with_the_fix(decay):
    with pytest.raises(ValueError, match="ema_decay must be None or a number in \\(0, 1\\)"):
        small_model(ema_decay=decay)


def test_predict_searches_with_the_average_and_self_play_with_the_newest_weights(monkeypatch):
    model = small_model(ema_decay=0.5)
    used = []
    search = model._search
    monkeypatch.setattr(
        model, "_search", lambda *a, policy=None, **k: used.append(policy) or search(*a, policy=policy, **k)
    )
    model.learn(16)
    assert used and all(policy is None for policy in used)  # self-play: the acting (newest) network
    assert not states_equal(model._averaged_policy, model.policy)  # trained, and lagging behind
    used.clear()
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert used == [model._averaged_policy]
    model.ema_decay = None  # back to the newest weights
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert used[-1] is model.policy


def test_the_average_follows_training_with_a_background_trainer():
    model = small_model(ema_decay=0.5, background_training=True)
    start = {k: v.clone() for k, v in model._averaged_policy.state_dict().items()}
    model.learn(64)
    assert model._n_updates > 0
    moved = model._averaged_policy.state_dict()
    assert any(not torch.equal(start[k], moved[k]) for k in start)
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)


def test_the_average_is_saved_and_restored(tmp_path):
    model = small_model(ema_decay=0.5)
    model.learn(16)
    model.save(tmp_path / "model")
    loaded = MuZero.load(tmp_path / "model")
    assert loaded.ema_decay == 0.5
    assert states_equal(loaded._averaged_policy, model._averaged_policy)
    assert not states_equal(loaded._averaged_policy, loaded.policy)
    without = MuZero.load(tmp_path / "model", ema_decay=None)  # its average is dropped
    assert without._averaged_policy is None and states_equal(without.policy, model.policy)


def test_a_save_without_an_average_starts_one_at_its_weights(tmp_path):
    model = small_model()
    model.learn(16)
    model.save(tmp_path / "plain")
    loaded = MuZero.load(tmp_path / "plain", ema_decay=0.9)
    assert states_equal(loaded._averaged_policy, model.policy)
    other = small_model(ema_decay=0.9)
    other.set_parameters(str(tmp_path / "plain.zip"))  # from a path too
    assert states_equal(other._averaged_policy, model.policy)


def test_ema_decay_set_after_training_starts_at_the_weights_then_and_is_checked():
    model = small_model()
    model.learn(16)
    model.ema_decay = 0.9
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert states_equal(model._averaged_policy, model.policy)
    model.ema_decay = 2.0
    with pytest.raises(ValueError, match="ema_decay must be None"):
        model.predict(np.zeros(4, dtype=np.float32), deterministic=True)

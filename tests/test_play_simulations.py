"""play_kwargs num_simulations: predict searches with its own simulation count, self-play with num_simulations."""

import numpy as np
import pytest

from muzero_agents import MuZero
from muzero_agents import planning as planning_module


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
def test_predict_plays_with_play_simulations_and_self_play_with_num_simulations(searched_simulations, search):
    model = small_model(search=search, reanalyze_kwargs=dict(search=True), play_kwargs=dict(num_simulations=11))  # Reanalyze searches too
    model.learn(12)
    assert searched_simulations and set(searched_simulations) == {3}
    searched_simulations.clear()
    obs = np.zeros((2, 4), dtype=np.float32)
    model.predict(obs, deterministic=True)
    model.predict(obs, deterministic=False)
    assert searched_simulations == [11, 11]


def test_without_play_simulations_predict_uses_num_simulations(searched_simulations):
    model = small_model()
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    model.play_kwargs["num_simulations"] = 7  # settable after training
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [3, 7]


def test_play_simulations_is_saved_and_overridable_at_load(tmp_path, searched_simulations):
    small_model(play_kwargs=dict(num_simulations=9)).save(tmp_path / "model")
    assert MuZero.load(tmp_path / "model").play_kwargs["num_simulations"] == 9
    loaded = MuZero.load(tmp_path / "model", play_kwargs=dict(num_simulations=5))
    loaded.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [5]


def test_an_old_save_without_play_simulations_plays_as_trained(tmp_path, searched_simulations):
    small_model().save(tmp_path / "old", exclude=["play_kwargs"])
    loaded = MuZero.load(tmp_path / "old")
    assert loaded.play_kwargs["num_simulations"] is None
    loaded.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert searched_simulations == [3]


def test_numpy_integers_are_accepted():
    assert small_model(play_kwargs=dict(num_simulations=np.int64(5))).play_kwargs["num_simulations"] == 5


@pytest.mark.parametrize("bad", [0, -3, 2.5, "100", True])
def test_bad_play_simulations_rejected(bad):
    with pytest.raises((TypeError, ValueError), match="num_simulations"):
        small_model(play_kwargs=dict(num_simulations=bad))


def test_bad_play_simulations_set_in_place_rejected_at_predict():
    model = small_model()
    with pytest.raises(ValueError, match="num_simulations"):  # refused where it is set
        model.play_kwargs["num_simulations"] = 0
    model.predict(np.zeros(4, dtype=np.float32), deterministic=True)

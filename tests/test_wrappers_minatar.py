"""MinAtar's games as uint8 channel-first images."""

import builtins

import numpy as np
import pytest

from wrappers.minatar import make_minatar


def test_observations_are_uint8_channel_first_copies_of_the_grid():
    pytest.importorskip("minatar")
    env = make_minatar("MinAtar/Breakout-v1")
    observation, _ = env.reset(seed=0)
    raw = env.unwrapped.game.state()  # (10, 10, C) bool
    assert env.observation_space.shape == (raw.shape[2], 10, 10) and observation.dtype == np.uint8
    assert env.observation_space.contains(observation)
    assert (observation == np.moveaxis(raw, -1, 0)).all()
    observation, *_ = env.step(0)
    assert (observation == np.moveaxis(env.unwrapped.game.state(), -1, 0)).all()


def test_a_missing_minatar_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_minatar(name, *args, **kwargs):
        if name.startswith("minatar"):
            raise ImportError("No module named 'minatar'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minatar)
    with pytest.raises(ModuleNotFoundError, match=r"muzero-agents\[minatar\]") as raised:
        make_minatar("MinAtar/Breakout-v1")
    assert raised.value.name == "minatar"

"""Save/load contract: models saved by muzero-agents 0.1.0 still load, play and train."""

import pathlib

import numpy as np
import pytest
import torch

from muzero_agents import MuZero

DATA = pathlib.Path(__file__).parent / "data"


def test_a_cartpole_model_saved_by_0_1_0_loads_without_env_and_plays():
    model = MuZero.load(DATA / "cartpole-mlp-v0.1.0.zip")
    assert model.search_kwargs["pb_c_init"] == 1.25 and model.replay_buffer_kwargs["priority_beta"] == 0.4
    assert model.policy_kwargs["support_size"] == 20 and model.policy.support_size == 20
    assert model.play_kwargs == {"num_simulations": None, "ema_decay": None}
    assert model.learner.weight_average is None
    assert not any(hasattr(model, name) for name in ("pb_c_init", "cut_returns_at_exploration", "play_symmetries"))
    action, _ = model.predict(np.zeros(4, dtype=np.float32), deterministic=True)
    assert 0 <= int(action) < 2


def test_a_board_game_model_saved_by_0_1_0_keeps_its_grouped_settings_and_trains_on(tmp_path):
    pytest.importorskip("pettingzoo")
    from wrappers import make_board_game

    env = make_board_game("tictactoe")
    model = MuZero.load(DATA / "tictactoe-cnn-v0.1.0.zip", env=env)
    assert model.search == "gumbel" and model.search_kwargs["pb_c_init"] == 1.3
    assert model.play_kwargs == {"num_simulations": 8, "ema_decay": 0.99}
    assert model.self_play_kwargs["random_opening_moves"] == 2 and model.self_play_kwargs["sampling_moves"] == 3
    average, newest = model.learner.weight_average.state_dict(), model.policy.state_dict()
    assert any(not torch.equal(average[k], newest[k]) for k in newest)  # the saved average, not a copy
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
    assert env.action_masks()[int(action)]
    updates = model._n_updates
    model.learn(48, reset_num_timesteps=False)
    assert model._n_updates > updates
    model.save(tmp_path / "again")
    again = MuZero.load(tmp_path / "again", env=env)
    assert again.play_kwargs == model.play_kwargs and again.search_kwargs == model.search_kwargs

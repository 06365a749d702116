"""MuZero on turn-based games: detects zero-sum self-play, uses masks, trains, plays legal moves."""

import numpy as np
import torch
import pytest

pytest.importorskip("pettingzoo")
from stable_baselines3.common.env_util import make_vec_env

from muzero_agents import MuZero
from wrappers import make_board_game


def tictactoe_model(**overrides):
    kwargs = dict(
        num_simulations=8,
        batch_size=16,
        learning_starts=16,
        unroll_steps=3,
        td_steps=9,
        discount=1.0,
        buffer_size=2_000,
        replay_ratio=0.25,
        policy_kwargs=dict(network_kwargs=dict(channels=8, num_blocks=1)),
        seed=0,
    )
    kwargs.update(overrides)
    env = make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2, seed=0)
    return MuZero("CnnPolicy", env, **kwargs)


def test_self_play_env_is_searched_as_two_player_with_masks():
    model = tictactoe_model()
    assert model.two_player
    model.learn(total_timesteps=120)
    assert model.replay_buffer.has_legal_masks and model.planner.two_player
    assert model._n_updates > 0


def test_predict_only_plays_legal_moves_on_boards():
    model = tictactoe_model()
    env = make_board_game("tictactoe")
    obs, _ = env.reset(seed=0)
    for _ in range(9):
        mask = env.action_masks()
        action, _ = model.predict(obs, action_masks=mask, deterministic=True)
        assert mask[int(action)]
        obs, _, terminated, truncated, info = env.step(int(action))
        assert not info.get("illegal_action", False)
        if terminated or truncated:
            break


def test_two_player_flag_survives_save_and_load_without_env(tmp_path):
    model = tictactoe_model()
    model.save(tmp_path / "ttt")
    loaded = MuZero.load(tmp_path / "ttt")
    assert loaded.two_player


def test_sb3_contrib_masked_evaluation_accepts_muzero():
    pytest.importorskip("sb3_contrib")
    from sb3_contrib.common.maskable.evaluation import evaluate_policy

    from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback

    model = tictactoe_model()
    env = make_board_game("tictactoe", opponent="random")
    illegal = []  # the env ends a game on an illegal move and says so in its info
    watch = lambda local_vars, _: illegal.append(local_vars["info"].get("illegal_action", False))
    mean, _ = evaluate_policy(model, env, n_eval_episodes=4, use_masking=True, callback=watch)
    assert -1.0 <= mean <= 1.0 and illegal and not any(illegal)
    evaluate = MaskableEvalCallback(
        make_board_game("tictactoe", opponent="random"), n_eval_episodes=2, eval_freq=8
    )
    model.learn(16, callback=evaluate)  # the README's evaluation during learn() for envs with masks
    assert np.isfinite(evaluate.last_mean_reward)  # it evaluated (-inf until then)


def test_sampling_moves_play_the_most_visited_action_after_the_opening(monkeypatch):
    """The first ``sampling_moves`` moves keep the search's (sampled) action, later ones the argmax."""

    from muzero_agents.search import SearchResult

    model = MuZero(
        "MlpPolicy",
        make_board_game("tictactoe"),
        learning_starts=1000,
        seed=0,
        self_play_kwargs=dict(sampling_moves=2),
    )

    def fake_search(policy, observations, legal_mask, **kwargs):
        batch, actions = legal_mask.shape
        visits = (legal_mask * np.arange(1, actions + 1)).astype(np.int32)  # argmax: highest legal
        lowest = np.argmax(legal_mask, axis=1).astype(np.int64)  # "sampled": lowest legal
        zeros = np.zeros(batch, np.float32)
        return SearchResult(lowest, visits, visits / visits.sum(1, keepdims=True), zeros, visits * 0.0)

    monkeypatch.setattr(model.planner, "plan", fake_search)
    model.learn(5)
    assert model.env.envs[0].unwrapped.history == [0, 1, 8, 7, 6]


def test_sampling_moves_count_per_env_and_break_visit_ties_by_the_policy(monkeypatch):
    """Visits all tied (as after Gumbel's halving): the largest policy wins. X wins on ply 7
    (0, 8, 6, 4 against 1, 7, 5), and the next game samples its first two moves again."""

    from muzero_agents.search import SearchResult

    env = make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2)
    model = MuZero("MlpPolicy", env, learning_starts=1000, seed=0, self_play_kwargs=dict(sampling_moves=2))

    def fake_search(policy, observations, legal_mask, **kwargs):
        visits = legal_mask.astype(np.int32)  # every legal action tied
        policy = (legal_mask * np.arange(1, legal_mask.shape[1] + 1)).astype(np.float32)
        lowest = np.argmax(legal_mask, axis=1).astype(np.int64)
        zeros = np.zeros(len(lowest), np.float32)
        return SearchResult(lowest, visits, policy / policy.sum(1, keepdims=True), zeros, visits * 0.0)

    monkeypatch.setattr(model.planner, "plan", fake_search)
    model.learn(2 * 9)
    assert model._episode_num == 2
    assert [e.unwrapped.history for e in model.env.envs] == [[0, 1], [0, 1]]


def test_sampling_moves_must_not_be_negative():
    with pytest.raises(ValueError, match="sampling_moves"):
        MuZero("MlpPolicy", make_board_game("tictactoe"), self_play_kwargs=dict(sampling_moves=-1))


def _root_values(model, observations, masks):
    search = dict(num_simulations=8, explore=False, temperature=0.0, rng=np.random.default_rng(0))
    return model.planner.plan(model.policy, observations, masks, **search).root_value


def test_a_self_play_model_searches_plies_on_an_env_with_an_opponent_and_learns_only_by_self_play(tmp_path):
    model = tictactoe_model()
    model.learn(48)
    with torch.no_grad():  # values far from 0, so that negating them at each ply shows
        for parameter in model.policy.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0)))
    model.save(tmp_path / "ttt")
    versus = make_board_game("tictactoe", opponent="random")
    observations = np.stack([versus.reset(seed=seed)[0] for seed in range(4)] + [versus.step(4)[0]])
    masks = np.ones((len(observations), 9), bool)
    alone = MuZero.load(tmp_path / "ttt")
    loaded = MuZero.load(tmp_path / "ttt", env=versus)  # it searched a one-player game before
    assert loaded.two_player and loaded.planner.two_player
    np.testing.assert_allclose(
        _root_values(loaded, observations, masks), _root_values(alone, observations, masks)
    )
    with pytest.raises(ValueError, match="learned self-play .*, but its env is a single-agent env"):
        loaded.learn(8, reset_num_timesteps=False)
    model.set_env(make_vec_env(lambda: make_board_game("tictactoe", opponent="random"), n_envs=2))
    assert model.two_player and model.planner.two_player
    untrained = tictactoe_model()  # takes its env's kind until it has learned
    untrained.set_env(make_vec_env(lambda: make_board_game("tictactoe", opponent="random"), n_envs=2))
    assert not untrained.two_player and not untrained.planner.two_player
    untrained.learn(16)
    untrained.set_env(make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2))  # now it has learned
    assert not untrained.two_player
    with pytest.raises(
        ValueError, match=r"learned a single-agent env .*its env is self-play.*opponent=\.\.\."
    ):
        untrained.learn(8, reset_num_timesteps=False)

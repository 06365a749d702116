"""make_board_game: names, settings, opponents and the errors that name the fix."""

import importlib

import numpy as np
import pytest

pytest.importorskip("pettingzoo.classic")
from wrappers import GAMES, RandomOpponent, SelfPlayEnv, VersusOpponentEnv, make_board_game


def test_names_build_self_play_or_versus_envs():
    assert isinstance(make_board_game("tictactoe"), SelfPlayEnv)
    assert isinstance(make_board_game("Connect-Four"), SelfPlayEnv)  # spelling is forgiving
    env = make_board_game("tictactoe", "random", agent_side="second")
    assert isinstance(env, VersusOpponentEnv) and isinstance(env.opponent, RandomOpponent)
    assert env.reset()[1]["agent_player"] == 1


def test_unknown_game_lists_the_known_ones():
    with pytest.raises(ValueError, match="known games: chess, connect_four, go, shogi, tictactoe"):
        make_board_game("checkers")
    assert set(GAMES) == {"tictactoe", "connect_four", "go", "chess", "shogi"}


def test_bad_settings_and_opponents_are_clear_errors():
    with pytest.raises(TypeError, match="board_size, komi"):
        make_board_game("go", size=9)
    with pytest.raises(ValueError, match="5..19"):
        make_board_game("go", board_size=21)
    with pytest.raises(ValueError, match="known names: random, minimax, gnugo, gnushogi, stockfish"):
        make_board_game("tictactoe", "alphazero")
    with pytest.raises(ValueError, match="plays go, not chess"):
        make_board_game("chess", "gnugo")
    with pytest.raises(ValueError, match="tic-tac-toe only"):
        make_board_game("connect_four", "minimax")
    with pytest.raises(ValueError, match="need an opponent"):
        make_board_game("tictactoe", agent_side="second")
    with pytest.raises(ValueError, match="agent_side"):
        make_board_game("tictactoe", "random", agent_side="black")
    with pytest.raises(TypeError, match="predict"):
        make_board_game("tictactoe", object())


@pytest.mark.parametrize("size", [9, 13, 19])
def test_go_sizes_and_komi(size):
    env = make_board_game("go", board_size=size, komi=5.5)
    obs, info = env.reset(seed=0)
    assert obs.shape == (size, size, 17) and env.action_space.n == size * size + 1
    assert env.aec_env.unwrapped._komi == 5.5
    assert info["action_mask"].all()  # every point and pass are legal on the empty board


def test_go_envs_of_different_sizes_live_side_by_side():
    """PettingZoo's Go keeps its size in module globals; the registry's guard restores it."""
    small, large = make_board_game("go", board_size=9), make_board_game("go", board_size=13)
    small.reset(seed=0)
    large.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(10):
        for env in (small, large):
            env.step(rng.choice(np.flatnonzero(env.action_masks()[:-1])))  # never pass
    assert small.action_masks().shape == (82,) and large.action_masks().shape == (170,)
    assert len(small.history) == len(large.history) == 10


def test_missing_optional_package_names_the_extra(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args):
        if name.startswith("pettingzoo.classic.chess"):
            raise ModuleNotFoundError("No module named 'chess'", name="chess")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match=r"missing: chess.*muzero-agents\[games\]"):
        make_board_game("chess")


def test_gymnasium_ids_make_the_same_envs():
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_vec_env

    env = gym.make("BoardGame/Go9x9-v0")
    obs, info = env.reset(seed=0)
    assert obs.shape == (9, 9, 17) and info["to_play"] == 0
    assert env.unwrapped.is_two_player_zero_sum
    versus = gym.make("BoardGame/TicTacToe-v0", opponent="random", agent_side="second")
    assert versus.reset(seed=0)[1]["agent_player"] == 1
    vec = make_vec_env("BoardGame/ConnectFour-v0", n_envs=2)
    vec.reset()
    assert np.stack(vec.env_method("action_masks")).shape == (2, 7)
    assert vec.get_attr("is_two_player_zero_sum") == [True, True]

"""Engine opponents: move translation, complete games, restarts, timeouts, missing binaries.

Engines are not installed here: tests that need one skip with the Debian package to install.
"""

import sys

import numpy as np
import pytest

pytest.importorskip("pettingzoo.classic")
from wrappers import GameState, make_board_game
from wrappers.engines import EngineError, EngineNotFoundError, GnuGoOpponent, find_engine
from wrappers.engines.base import EngineProcess
from wrappers.engines.gtp import action_to_vertex, vertex_to_action


def _need(binary: str, package: str) -> None:
    try:
        find_engine(binary, package)
    except EngineNotFoundError:
        pytest.skip(f"{binary} is not installed (apt-get install {package})")


def _play_out(env, seed=0, max_steps=2000):
    """Random legal agent moves until the game ends; returns (total reward, steps, info)."""
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    total = 0.0
    for steps in range(1, max_steps + 1):
        _, reward, terminated, truncated, info = env.step(rng.choice(np.flatnonzero(env.action_masks())))
        total += reward
        if terminated or truncated:
            return total, steps, info
    raise AssertionError(f"no end after {max_steps} agent moves")


def test_gtp_vertices_match_pettingzoo_coordinates():
    from pettingzoo.classic.go import coords, go_base

    saved, go_base.N = go_base.N, 9  # PettingZoo's coords read the size from its module globals
    try:
        for action in range(82):
            assert action_to_vertex(action, 9).upper() == coords.to_gtp(coords.from_flat(action)).upper()
            assert vertex_to_action(action_to_vertex(action, 9), 9) == action
    finally:
        go_base.N = saved
    assert vertex_to_action("J1", 9) == 80 and vertex_to_action("A9", 9) == 0
    with pytest.raises(EngineError, match="off a 9x9"):
        vertex_to_action("T19", 9)


def test_chess_actions_match_pettingzoo_masks():
    pytest.importorskip("chess")
    from wrappers.engines.chess_actions import board_from_actions, legal_action_moves

    env = make_board_game("chess")
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(60):
        board = board_from_actions(env.history)
        assert sorted(legal_action_moves(board)) == np.flatnonzero(env.action_masks()).tolist()
        _, _, terminated, truncated, _ = env.step(rng.choice(np.flatnonzero(env.action_masks())))
        if terminated or truncated:
            env.reset()
    assert board.fullmove_number > 1


def test_missing_binary_names_the_debian_package():
    with pytest.raises(EngineNotFoundError, match="apt-get install gnugo"):
        GnuGoOpponent(binary="no-such-gnugo-binary")


def test_engine_process_times_out_and_reports_death():
    proc = EngineProcess([sys.executable, "-c", "import time; time.sleep(30)"], "sleeper")
    proc.start()
    with pytest.raises(EngineError, match="no answer within 0.2 s"):
        proc.read_until(lambda line: True, timeout=0.2)
    assert not proc.alive  # stopped after the timeout
    proc = EngineProcess([sys.executable, "-c", "print('hello')"], "talker")
    proc.start()
    assert proc.read_until(lambda line: line == "hello", timeout=5.0) == ["hello"]
    with pytest.raises(EngineError, match="exited"):
        proc.read_until(lambda line: False, timeout=5.0)


def test_gnugo_plays_complete_9x9_games_as_either_side():
    _need("gnugo", "gnugo")
    env = make_board_game("go", "gnugo", board_size=9, agent_side="alternate", opponent_kwargs={"level": 1})
    with env:
        for seed in (0, 1):
            outcome, steps, info = _play_out(env, seed=seed)
            assert info["agent_player"] == seed % 2
            assert outcome in (-1.0, 1.0) and steps > 5
            assert env.game_env.game_over
    assert not env.opponent.process.alive  # closed with the env


def test_gnugo_restarts_after_it_dies_and_resyncs_the_board():
    _need("gnugo", "gnugo")
    env = make_board_game("go", "gnugo", board_size=9, opponent_kwargs={"level": 0})
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(3):
        env.step(rng.choice(np.flatnonzero(env.action_masks()[:-1])))
    env.opponent.process._proc.kill()
    env.opponent.process._proc.wait()
    env.step(rng.choice(np.flatnonzero(env.action_masks()[:-1])))  # restarts, replays, answers
    assert env.opponent.process.alive and len(env.history) == 8
    env.close()


def test_gnugo_refuses_a_move_it_did_not_expect():
    _need("gnugo", "gnugo")
    opponent = GnuGoOpponent(level=0)
    mask = np.ones(82, bool)
    with opponent:
        state = GameState(game="go", history=[40, 40], to_play=0, config={"komi": 7.5})
        with pytest.raises(EngineError, match="refused"):
            opponent.act(None, mask, state)  # the same point twice: illegal for GNU Go
        with pytest.raises(ValueError, match="plays go"):
            opponent.act(None, mask, GameState(game="chess", history=[], to_play=0))


def test_engine_move_outside_the_mask_is_a_clear_error():
    _need("gnugo", "gnugo")
    with GnuGoOpponent(level=0) as opponent:
        mask = np.zeros(82, bool)
        mask[81] = True  # pretend only passing is legal: GNU Go will want to play a stone
        with pytest.raises(EngineError, match="mask forbids"):
            opponent.act(None, mask, GameState(game="go", history=[], to_play=0))


def test_stockfish_plays_complete_games():
    pytest.importorskip("chess")
    _need("stockfish", "stockfish")
    env = make_board_game(
        "chess", "stockfish", agent_side="alternate", opponent_kwargs={"skill_level": 0, "depth": 1}
    )
    with env:
        for seed in (0, 1):
            outcome, steps, _ = _play_out(env, seed=seed)
            assert outcome in (-1.0, 0.0, 1.0) and steps > 2
            assert env.game_env.game_over


def test_gnushogi_plays_complete_games_and_survives_a_restart():
    pytest.importorskip("wrappers.envs.shogi_v0")
    _need("gnushogi", "gnushogi")
    env = make_board_game("shogi", "gnushogi", agent_side="alternate", opponent_kwargs={"depth": 1})
    with env:
        for seed in (0, 1):
            outcome, steps, _ = _play_out(env, seed=seed)
            assert outcome in (-1.0, 0.0, 1.0) and steps > 2
        rng = np.random.default_rng(2)
        env.reset(seed=2)
        for _ in range(4):
            env.step(rng.choice(np.flatnonzero(env.action_masks())))
        env.opponent.process._proc.kill()
        env.opponent.process._proc.wait()
        env.step(rng.choice(np.flatnonzero(env.action_masks())))  # restart: new game, replay, go
        assert len(env.history) == 10 and env.opponent.process.alive


def test_a_seeded_game_against_gnugo_repeats():
    _need("gnugo", "gnugo")
    env = make_board_game("go", "gnugo", board_size=9, agent_side="second", opponent_kwargs={"level": 0})

    def opening(seed):
        env.reset(seed=seed)
        for _ in range(6):  # the learner plays its first legal move each turn
            env.step(int(np.flatnonzero(env.action_masks())[0]))
        return list(env.history)

    try:
        first = opening(3)
        assert opening(3) == first and opening(3) == first
    finally:
        env.close()

"""The connect-four loss analysis: which of the learner's moves lost, proven by a deeper negamax."""

import numpy as np

from benchmarks.boardgame_play import play_games
from benchmarks.diagnostics.connect_four_losses import (
    Decision,
    Mistake,
    losing_move,
    main,
    play_recorded,
    tabulate,
)
from wrappers import ConnectFourNegamaxOpponent
from wrappers import make_board_game


def _observation(moves: list[int]) -> np.ndarray:
    env = make_board_game("connect_four")
    obs, _ = env.reset(seed=0)
    for move in moves:
        obs, *_ = env.step(move)
    return obs


def test_an_unblocked_threat_is_a_one_ply_mistake_and_a_block_is_none():
    threatened = _observation([0, 1, 0, 1, 0])  # second player to move; first threatens column 0
    assert losing_move([Decision(threatened, 3)], probe_depth=4) == Mistake(5, 1, missed_win=False)
    assert losing_move([Decision(threatened, 0)], probe_depth=4) is None


def test_ignoring_an_own_win_is_marked():
    both_threaten = _observation([0, 1, 0, 1, 0, 1])  # first to move: it wins in 0, second threatens 1
    assert losing_move([Decision(both_threaten, 5)], probe_depth=2) == Mistake(6, 1, missed_win=True)


def test_the_walk_back_skips_lost_positions_to_the_move_that_lost():
    open_two = _observation([1, 1, 2])  # second to move; first has two in a row on the bottom, 0 and 3-4 free
    double_threat = _observation([1, 1, 2, 2, 3])  # first's open three: columns 0 and 4 both win
    decisions = [Decision(open_two, 2), Decision(double_threat, 0)]
    mistake = losing_move(decisions, probe_depth=6)
    assert mistake == Mistake(3, 3, missed_win=False)
    assert losing_move([Decision(double_threat, 0)], probe_depth=6) is None  # lost from the start


def test_the_probe_proves_refutations_of_up_to_its_depth_in_plies():
    open_two, double_threat = _observation([1, 1, 2]), _observation([1, 1, 2, 2, 3])
    decisions = [Decision(open_two, 2), Decision(double_threat, 0)]
    assert losing_move(decisions, probe_depth=2) is None  # the 3-ply refutation is out of reach
    assert losing_move(decisions, probe_depth=3) == Mistake(3, 3, missed_win=False)


class _FirstLegal:
    def predict(self, obs, action_masks=None, deterministic=True):
        return np.array([int(np.flatnonzero(action_masks)[0])]), None


def test_play_recorded_plays_the_benchmarks_games_and_keeps_the_learners_moves():
    def versus_negamax():
        return make_board_game(
            "connect_four", opponent=ConnectFourNegamaxOpponent(depth=2), agent_side="first"
        )

    env = versus_negamax()
    recorded = [play_recorded(_FirstLegal(), env, seed=3 + game) for game in range(3)]
    tally = play_games(_FirstLegal(), versus_negamax(), n_games=3, first_seed=3)
    assert [outcome for outcome, _ in recorded].count(-1.0) == tally.losses == 3  # column 0 always loses
    for _, decisions in recorded:
        assert decisions and all(d.observation.shape == (6, 7, 2) for d in decisions)
        mistake = losing_move(decisions, probe_depth=3)
        assert mistake is not None and mistake.plies_to_loss in (1, 3)


def test_main_prints_a_line_per_side(tmp_path, capsys):
    from muzero_agents import MuZero

    path = tmp_path / "c4.zip"
    MuZero("CnnPolicy", make_board_game("connect_four"), seed=0).save(path)
    main([str(path), "--games", "1", "--probe-depth", "1", "--play-simulations", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2].startswith("first") and lines[-1].startswith("second")


def test_tabulate_counts_proven_and_unproven_losses():
    assert tabulate("second", 5, 1, [None], probe_depth=3).endswith("none)   not proven: 1")
    line = tabulate("first", 10, 3, [Mistake(10, 1, False), Mistake(20, 3, True), None], probe_depth=6)
    assert "proven at depth 6:   2 (1 ply: 1  3 ply: 1; missed an own win: 1" in line
    assert "at 15.0 stones" in line and line.endswith("not proven: 1")

"""The connect-four loss analysis: which of the learner's moves lost, proven by a deeper negamax."""

import numpy as np

from benchmarks.connect_four_losses import Decision, Mistake, losing_move, play_recorded, tabulate
from benchmarks.negamax import ConnectFourNegamaxOpponent
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


class _FirstLegal:
    def predict(self, obs, action_masks=None, deterministic=True):
        return np.array([int(np.flatnonzero(action_masks)[0])]), None


def test_play_recorded_keeps_the_learners_legal_moves_and_the_outcome():
    env = make_board_game("connect_four", opponent=ConnectFourNegamaxOpponent(depth=2), agent_side="first")
    outcome, decisions = play_recorded(_FirstLegal(), env, seed=3)
    env.close()
    assert outcome == -1.0  # always the leftmost column loses to negamax
    assert decisions and all(d.observation.shape == (6, 7, 2) for d in decisions)
    assert losing_move(decisions, probe_depth=4) is not None


def test_tabulate_counts_proven_and_unproven_losses():
    line = tabulate("first", 10, 3, [Mistake(10, 1, False), Mistake(20, 3, True), None], probe_depth=6)
    assert "proven at depth 6:   2 (1 ply: 1  3 ply: 1; missed an own win: 1" in line
    assert "at 15.0 stones" in line and line.endswith("not proven: 1")

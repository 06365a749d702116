"""wrappers.opponents: the connect-four negamax opponent reads PettingZoo's board, wins when it can and blocks."""

import numpy as np
import pytest

from wrappers import ConnectFourNegamaxOpponent
from wrappers.opponents.negamax import from_observation, has_four, threats

pytest.importorskip("pettingzoo.classic")


def _board(mine: list[tuple[int, int]], theirs: list[tuple[int, int]]) -> np.ndarray:
    """A (6, 7, 2) observation from (row, column) cells; row 5 is the bottom."""
    obs = np.zeros((6, 7, 2), dtype=np.int8)
    for row, col in mine:
        obs[row, col, 0] = 1
    for row, col in theirs:
        obs[row, col, 1] = 1
    return obs


def test_reads_the_bottom_row_as_the_first_cells():
    stones, mask, moves = from_observation(_board([(5, 0)], [(5, 1), (4, 1)]))
    assert stones == 1 and moves == 3  # column 0, lowest cell
    assert mask == 1 | (1 << 7) | (1 << 8)


def test_four_in_a_row_in_every_direction():
    assert has_four(sum(1 << (c * 7) for c in range(4)))  # horizontal along the bottom
    assert has_four(0b1111)  # vertical in column 0
    assert has_four(sum(1 << (c * 7 + c) for c in range(4)))  # diagonal up-right
    assert has_four(sum(1 << (c * 7 + 3 - c) for c in range(4)))  # diagonal down-right
    assert not has_four(0b111 | (1 << 7 * 4))


def test_threats_find_the_completing_cells():
    three = sum(1 << (c * 7) for c in (1, 2, 3))  # bottom row, columns 1-3
    assert threats(three, three) == (1 << 0) | (1 << 28)  # columns 0 and 4


@pytest.mark.parametrize("depth", [0, 2, 4])
def test_takes_an_immediate_win_and_blocks_an_immediate_loss(depth):
    opponent = ConnectFourNegamaxOpponent(depth=depth, seed=0)
    legal = np.ones(7, dtype=bool)
    win = _board([(5, 0), (5, 1), (5, 2)], [(4, 0), (4, 1), (4, 2)])
    assert opponent.act(win, legal) == 3
    block = _board([(5, 6), (4, 6), (5, 5)], [(5, 0), (5, 1), (5, 2)])
    assert opponent.act(block, legal) == 3


def test_beats_random_play_against_the_versus_env():
    from wrappers import make_board_game

    env = make_board_game(
        "connect_four", opponent=ConnectFourNegamaxOpponent(depth=2, seed=0), agent_side="alternate"
    )
    rng = np.random.default_rng(0)
    returns = []
    for episode in range(6):
        env.reset(seed=episode)
        done, reward = False, 0.0
        while not done:
            _, reward, terminated, truncated, _ = env.step(
                int(rng.choice(np.flatnonzero(env.action_masks())))
            )
            done = terminated or truncated
        returns.append(reward)
    assert np.mean(returns) <= -0.5  # the random learner loses nearly every game


def test_refuses_a_wrong_board():
    with pytest.raises(ValueError, match="6, 7, 2"):
        ConnectFourNegamaxOpponent().act(np.zeros((3, 3, 2)), np.ones(9, dtype=bool))


def test_every_opponent_is_exported_from_wrappers():
    import wrappers
    from wrappers.opponents import minimax, negamax, predictor, random

    assert wrappers.ConnectFourNegamaxOpponent is negamax.ConnectFourNegamaxOpponent
    assert wrappers.TicTacToeMinimaxOpponent is minimax.TicTacToeMinimaxOpponent
    assert wrappers.RandomOpponent is random.RandomOpponent
    assert wrappers.PolicyOpponent is predictor.PolicyOpponent
    for opponent in (
        negamax.ConnectFourNegamaxOpponent(),
        minimax.TicTacToeMinimaxOpponent(),
        random.RandomOpponent(),
    ):
        assert isinstance(opponent, wrappers.Opponent)

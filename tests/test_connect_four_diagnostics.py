"""The connect-four diagnostics: one-move tactics found from the bitboard, and the tallies."""

import numpy as np

from benchmarks.connect_four_diagnostics import hit_rate, random_play_positions, tactics
from benchmarks.model_rewards import reward_table
from wrappers import make_board_game


def _position(moves: list[int]) -> tuple[np.ndarray, np.ndarray]:
    env = make_board_game("connect_four")
    obs, _ = env.reset(seed=0)
    for move in moves:
        obs, *_ = env.step(move)
    return obs, env.action_masks()


def test_tactics_finds_the_movers_win_and_the_opponents_threat():
    obs, _ = _position([0, 1, 0, 1, 0, 1])  # first player to move, three up in column 0; second in 1
    own, threats = tactics(obs[None])
    assert own == [[0]] and threats == [[1]]
    obs, _ = _position([0, 1, 0, 1, 0])  # second player to move: it can only block column 0
    own, threats = tactics(obs[None])
    assert own == [[]] and threats == [[0]]


def test_random_play_positions_are_legal_and_seeded():
    obs, masks = random_play_positions(games=3, seed=5)
    again, _ = random_play_positions(games=3, seed=5)
    assert obs.shape[1:] == (6, 7, 2) and masks.shape == (len(obs), 7) and masks.any(axis=1).all()
    assert np.array_equal(obs, again)


class _FixedMoves:
    def __init__(self, actions):
        self.actions = np.array(actions)

    def predict(self, observations, action_masks=None, deterministic=True):
        return self.actions[: len(observations)], None


def test_hit_rate_counts_moves_in_the_targets():
    obs = np.zeros((4, 6, 7, 2))
    masks = np.ones((4, 7), dtype=bool)
    assert hit_rate(_FixedMoves([0, 3, 3, 6]), obs, masks, [[0], [3, 4], [1], []]) == 0.5


def test_reward_table_counts_the_wrong_side_of_one_half():
    table = reward_table(np.array([0.9, 0.4]), np.array([0.0, 0.6, 0.1, 0.2]))
    winning, others = table.splitlines()[1:]
    assert winning.split()[-1] == "0.500" and others.split()[-1] == "0.250"

"""random_opening_moves: self-play episodes open with random legal moves, marked in the replay."""

import numpy as np
import pytest

pytest.importorskip("pettingzoo")
from stable_baselines3.common.env_util import make_vec_env

from muzero_agents import MuZero
from muzero_agents.openings import RandomOpenings
from wrappers import make_board_game


def test_openings_draw_lengths_up_to_the_maximum_and_pick_only_legal_moves():
    openings = RandomOpenings(2, np.random.default_rng(0))
    openings.start(500)
    assert set(openings.moves_left) == {0, 1, 2}
    legal = np.zeros((500, 5), dtype=bool)
    legal[:, [1, 3]] = True
    actions, random_move = openings.choose(np.full(500, 4), legal, 5)
    np.testing.assert_array_equal(random_move, openings.moves_left > 0)
    assert set(actions[random_move]) == {1, 3} and (actions[~random_move] == 4).all()
    before = openings.moves_left.copy()
    dones = np.zeros(500, dtype=bool)
    dones[:10] = True
    openings.advance(dones)
    np.testing.assert_array_equal(openings.moves_left[10:], np.maximum(before[10:] - 1, 0))
    assert openings.moves_left[:10].max() <= 2


def test_no_openings_keep_the_search_actions():
    openings = RandomOpenings(0, np.random.default_rng(0))
    openings.start(3)
    actions = np.array([0, 1, 2])
    chosen, random_move = openings.choose(actions, None, 9)
    assert chosen is actions and not random_move.any()


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_random_opening_moves_are_refused(value):
    with pytest.raises(ValueError, match="random_opening_moves must be an int >= 0"):
        MuZero("MlpPolicy", make_board_game("tictactoe"), random_opening_moves=value)


def tictactoe_model(random_opening_moves: int) -> MuZero:
    env = make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2, seed=0)
    return MuZero(
        "MlpPolicy",
        env,
        num_simulations=4,
        learning_starts=10_000,  # self-play only
        discount=1.0,
        td_steps=9,
        random_opening_moves=random_opening_moves,
        seed=0,
    )


def test_self_play_marks_its_random_opening_moves_in_the_replay():
    model = tictactoe_model(random_opening_moves=3)
    model.learn(300)
    buffer = model.replay_buffer
    stored = buffer._valid
    flagged = buffer._random_move[stored]
    steps = buffer._step[stored]
    assert flagged.any() and (steps[flagged] < 3).all()  # only the first three moves may be random
    assert not flagged[steps == 0].all()  # some episodes open with the policy's own move
    # every stored move is legal: a random one too
    actions = buffer._actions[stored]
    assert buffer._legal[stored][np.arange(actions.size), actions].all()


def test_without_openings_nothing_is_marked():
    model = tictactoe_model(random_opening_moves=0)
    model.learn(50)
    assert model.replay_buffer._random_move is None


def test_a_maximum_set_between_learns_applies_and_is_checked():
    model = tictactoe_model(random_opening_moves=0)
    model.learn(20)
    model.random_opening_moves = 2
    model.learn(60, reset_num_timesteps=False)
    assert model.replay_buffer._random_move is not None  # openings drawn after the change
    model.random_opening_moves = -3
    with pytest.raises(ValueError, match="random_opening_moves must be an int >= 0"):
        model.learn(10, reset_num_timesteps=False)

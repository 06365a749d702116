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


REFUSED = r'self_play_kwargs\["random_opening_moves"\] must be an int >= 0'


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_bad_random_opening_moves_are_refused(value):
    with pytest.raises(ValueError if value == -1 else TypeError, match=REFUSED):
        MuZero("MlpPolicy", make_board_game("tictactoe"), self_play_kwargs=dict(random_opening_moves=value))


def tictactoe_model(random_opening_moves: int) -> MuZero:
    env = make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2, seed=0)
    return MuZero(
        "MlpPolicy",
        env,
        num_simulations=4,
        learning_starts=10_000,  # self-play only
        discount=1.0,
        td_steps=9,
        self_play_kwargs=dict(random_opening_moves=random_opening_moves),
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
    assert (~buffer._illegal[stored])[np.arange(actions.size), actions].all()


def test_without_openings_nothing_is_marked():
    model = tictactoe_model(random_opening_moves=0)
    model.learn(50)
    assert model.replay_buffer._random_move is None


def test_a_maximum_set_between_learns_applies_and_is_checked():
    model = tictactoe_model(random_opening_moves=0)
    model.learn(20)
    model.self_play_kwargs["random_opening_moves"] = 2
    model.learn(60, reset_num_timesteps=False)
    assert model.replay_buffer._random_move is not None  # openings drawn after the change
    with pytest.raises(ValueError, match=REFUSED):  # checked when set
        model.self_play_kwargs["random_opening_moves"] = -3
    assert model.self_play_kwargs["random_opening_moves"] == 2


def test_a_refused_value_changes_nothing():
    model = tictactoe_model(random_opening_moves=0)
    model.learn(20)
    last_obs = model._last_obs.copy()
    with pytest.raises(ValueError, match="random_opening_moves"):
        model.self_play_kwargs["random_opening_moves"] = -1
    assert model.self_play_kwargs["random_opening_moves"] == 0
    np.testing.assert_array_equal(model._last_obs, last_obs)
    model.learn(10, reset_num_timesteps=False)  # still learns, with the old value
    assert model.replay_buffer._random_move is None


def test_lowering_the_maximum_between_learns_ends_running_openings():
    model = tictactoe_model(random_opening_moves=3)
    model.learn(2)  # both envs are still inside their openings (or had none)
    model.self_play_kwargs["random_opening_moves"] = 0
    rows_before = model.replay_buffer._rows_written
    model.learn(40, reset_num_timesteps=False)
    new_rows = np.arange(rows_before, model.replay_buffer._rows_written) % model.replay_buffer.rows
    assert not model.replay_buffer._random_move[new_rows].any()


def test_openings_come_before_greedy_play_and_count_toward_sampling_moves(monkeypatch):
    """sampling_moves=0 makes every move greedy (the highest legal action of the fake search);
    the random opening moves still replace it, and only they are marked."""
    from muzero_agents.search import SearchResult

    env = make_vec_env(lambda: make_board_game("tictactoe"), n_envs=1, seed=0)
    self_play = dict(sampling_moves=0, random_opening_moves=4)
    model = MuZero("MlpPolicy", env, self_play_kwargs=self_play, learning_starts=10_000, seed=1)

    def fake_search(policy, observations, legal_mask, **search_settings):
        visits = (legal_mask * np.arange(1, legal_mask.shape[1] + 1)).astype(np.int32)
        zeros = np.zeros(len(legal_mask), np.float32)
        return SearchResult(
            np.zeros(len(legal_mask), np.int64),
            visits,
            visits / visits.sum(1, keepdims=True),
            zeros,
            visits * 0.0,
        )

    monkeypatch.setattr(model.planner, "plan", fake_search)
    model.learn(200)
    buffer = model.replay_buffer
    stored = buffer._valid[:, 0]
    actions, legal = buffer._actions[stored, 0], ~buffer._illegal[stored, 0]
    greedy = actions == legal.shape[1] - 1 - np.argmax(legal[:, ::-1], axis=1)  # the highest legal
    flagged = buffer._random_move[stored, 0]
    assert flagged.any() and not greedy[flagged].any()  # random moves off the greedy choice
    assert greedy[~flagged].all()  # the rest: greedy (a random move that picked it is not marked)

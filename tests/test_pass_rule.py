"""Go's learner-only pass rule (``pass_when_settled``, wrappers.pass_rule)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wrappers import make_board_game
from wrappers.pass_rule import PassWhenSettled, own_eyes

PASS = 25  # 5x5 Go: 25 points, pass last


def first_legal(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def position_of(env):
    """PettingZoo Go's position behind a self-play or versus env."""
    inner = env.unwrapped
    return getattr(inner, "game_env", inner).aec_env.unwrapped._go


def test_own_eyes_are_empty_points_surrounded_by_own_stones_or_the_edge():
    board = np.array([[0, 1, 0], [1, 1, -1], [0, -1, 0]])
    assert own_eyes(board, 1).tolist() == [[True, False, False], [False] * 3, [False] * 3]
    assert own_eyes(board, -1).tolist() == [[False] * 3, [False] * 3, [False, False, True]]


def test_pass_is_masked_while_a_move_fills_no_own_eye():
    env = make_board_game("go", board_size=5, pass_when_settled=True)
    env.reset(seed=0)
    assert not env.action_masks()[PASS]
    assert env.unwrapped.action_masks()[PASS]  # the game's own rules still allow it
    _, _, terminated, truncated, info = env.step(PASS)  # and a pass played anyway is legal
    assert not (terminated or truncated) and not info.get("illegal_action", False)


def test_pass_is_allowed_once_only_own_eyes_are_left():
    env = make_board_game("go", board_size=5, pass_when_settled=True)
    env.reset(seed=0)
    wrapper_mask = env.action_masks
    board = np.ones((5, 5), dtype=int)
    board[0, 0] = board[2, 2] = 0  # black to move; its only empty points are its eyes
    position = position_of(env)
    position.board, position.to_play = board, 1
    legal_cells = np.zeros(PASS + 1, dtype=bool)
    legal_cells[[0, 12, PASS]] = True
    env.unwrapped._mask = legal_cells
    assert wrapper_mask()[PASS]
    position.to_play = -1  # for white the same points are not its eyes
    assert not wrapper_mask()[PASS]


class AlwaysPass:
    def act(self, observation, action_mask, game_state) -> int:
        assert action_mask[PASS], "the opponent keeps the full rules"
        return PASS


def test_the_opponent_keeps_the_full_rules_and_its_pass_can_be_answered():
    env = make_board_game(
        "go", opponent=AlwaysPass(), agent_side="second", board_size=5, pass_when_settled=True
    )
    _, info = env.reset(seed=0)
    assert env.env.history == [PASS] and env.action_masks()[PASS]  # answering the opening pass
    assert np.array_equal(info["action_mask"], env.action_masks())
    _, reward, terminated, _, _ = env.step(PASS)
    assert terminated and reward == 1.0  # an empty board: white wins on komi


def test_info_mask_agrees_with_action_masks():
    env = make_board_game("go", board_size=5, pass_when_settled=True)
    _, info = env.reset(seed=0)
    assert not info["action_mask"][PASS]
    _, _, _, _, info = env.step(first_legal(env.action_masks()))
    assert np.array_equal(info["action_mask"], env.action_masks())


@pytest.mark.parametrize("opponent", [None, "random"])
def test_games_end_at_the_move_limit_scored_for_the_learner(opponent):
    kwargs = {} if opponent is None else {"opponent": opponent, "agent_side": "second"}
    env = make_board_game("go", board_size=5, pass_when_settled=True, **kwargs)
    rng = np.random.default_rng(0)
    for seed in range(3):
        env.reset(seed=seed)
        done = False
        while not done:
            mover = env.unwrapped.to_play if opponent is None else 1
            moves = np.flatnonzero(env.action_masks())
            moves = moves[moves != PASS] if len(moves) > 1 else moves  # random stones, no passes
            _, reward, terminated, truncated, info = env.step(int(rng.choice(moves)))
            done = terminated or truncated
        if info.get("move_limit"):
            assert terminated and not truncated and len(env.unwrapped.history) >= 50
            black_result = position_of(env).result()
            assert reward == (black_result if mover == 0 else -black_result)
            with pytest.raises(RuntimeError, match="reset"):
                env.step(0)
    assert info.get("move_limit"), "random play on 5x5 runs into the 50-move limit"


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")  # the wrapper is the point
def test_wrapped_env_passes_check_env_and_exposes_the_inner_attributes():
    env = make_board_game("go", board_size=5, pass_when_settled=True)
    check_env(env, skip_render_check=True)
    assert env.get_wrapper_attr("is_two_player_zero_sum")
    assert len(env.get_wrapper_attr("board_symmetries")) == 8


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="pass_when_settled"):
        make_board_game("go", board_size=5, pass_when_settled="yes")
    with pytest.raises(ValueError, match="max_moves"):
        PassWhenSettled(make_board_game("go", board_size=5), max_moves=0)
    with pytest.raises(TypeError, match="pass_when_settled"):
        make_board_game("tictactoe", pass_when_settled=True)
    make_board_game("tictactoe", pass_when_settled=False).close()
    with pytest.raises(TypeError, match="make_board_game"):
        PassWhenSettled(make_board_game("tictactoe"), max_moves=10)

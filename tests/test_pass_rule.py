"""Go's learner-only rule against early passes (``min_moves_before_pass``, wrappers.pass_rule)."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from wrappers import make_board_game
from wrappers.pass_rule import NoEarlyPass

PASS = 25  # 5x5 Go: 25 points, pass last


def first_legal(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def test_self_play_masks_pass_for_the_first_moves_only():
    env = make_board_game("go", board_size=5, min_moves_before_pass=3)
    env.reset(seed=0)
    seen = []
    for _ in range(4):
        seen.append(bool(env.action_masks()[PASS]))
        env.step(first_legal(env.action_masks()))
    assert seen == [False, False, False, True]
    assert env.unwrapped.action_masks()[PASS]  # the game's own rules still allow it


def test_a_pass_played_anyway_is_still_legal():
    env = make_board_game("go", board_size=5, min_moves_before_pass=10)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(PASS)
    assert not (terminated or truncated) and not info.get("illegal_move", False)


class AlwaysPass:
    def act(self, observation, action_mask, game_state) -> int:
        assert action_mask[PASS], "the opponent keeps the full rules"
        return PASS


def test_the_opponent_keeps_the_full_rules():
    env = make_board_game("go", opponent=AlwaysPass(), agent_side="second", board_size=5, min_moves_before_pass=4)
    env.reset(seed=0)
    assert env.env.history == [PASS] and not env.action_masks()[PASS]
    env.step(first_legal(env.action_masks()))
    assert env.env.history[-1] == PASS and len(env.env.history) == 3
    assert not env.action_masks()[PASS]  # 3 moves played, 4 needed
    env.step(first_legal(env.action_masks()))
    assert env.action_masks()[PASS]


class OnlyPass:
    """A stand-in env whose only legal move is the pass."""

    history: list[int] = []

    def action_masks(self) -> np.ndarray:
        mask = np.zeros(PASS + 1, dtype=bool)
        mask[PASS] = True
        return mask


def test_pass_stays_legal_when_it_is_the_only_move():
    env = make_board_game("go", board_size=5, min_moves_before_pass=50)
    wrapper = NoEarlyPass(env, pass_action=PASS, moves=50)
    wrapper.env = OnlyPass()
    assert wrapper.action_masks()[PASS]


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped")  # the wrapper is the point
def test_wrapped_env_passes_check_env_and_exposes_the_inner_attributes():
    env = make_board_game("go", board_size=5, min_moves_before_pass=5)
    check_env(env, skip_render_check=True)
    assert env.get_wrapper_attr("is_two_player_zero_sum")
    assert len(env.get_wrapper_attr("board_symmetries")) == 8


@pytest.mark.parametrize("bad", [-1, 2.5, "ten", True])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValueError, match="min_moves_before_pass"):
        make_board_game("go", board_size=5, min_moves_before_pass=bad)


def test_only_go_takes_the_rule():
    with pytest.raises(TypeError, match="min_moves_before_pass"):
        make_board_game("tictactoe", min_moves_before_pass=3)

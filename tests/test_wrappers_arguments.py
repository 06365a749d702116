"""Bad arguments are refused early, with an error naming the argument, the value and the fix:
engine time limits and strengths, Go's komi and board size, env actions, the negamax depth,
self-play's ``zero_sum`` and ``illegal_reward``, a policy opponent's ``deterministic``, and
``make_board_game``'s names, opponents and keyword arguments."""

import math

import numpy as np
import pytest

pytest.importorskip("pettingzoo.classic")
from wrappers import ConnectFourNegamaxOpponent, PolicyOpponent, SelfPlayEnv, make_board_game
from wrappers.engines import GnuGoOpponent

BAD_SECONDS = [
    (math.nan, ValueError, "finite"),
    (math.inf, ValueError, "finite"),
    (-math.inf, ValueError, "finite"),
    (0, ValueError, "> 0"),
    (-1.0, ValueError, "> 0"),
    ("5", TypeError, "a number"),
    (None, TypeError, "a number"),
    (True, TypeError, "a number"),
]


def _engine_classes():
    classes = [GnuGoOpponent]
    try:
        from wrappers.engines.uci import StockfishOpponent

        classes.append(StockfishOpponent)
    except ImportError:  # the chess package is optional
        pass
    from wrappers.engines.xshogi import GnuShogiOpponent

    return [*classes, GnuShogiOpponent]


@pytest.mark.parametrize(("value", "error", "reason"), BAD_SECONDS)
def test_time_limit_must_be_finite_positive_seconds(value, error, reason):
    for engine in _engine_classes():  # checked before the binary is looked for
        with pytest.raises(error, match=rf"time_limit must be .*{reason}.*e\.g\. time_limit=10\.0"):
            engine(time_limit=value, binary="no-such-engine-binary")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"level": 1.5}, TypeError, r"level must be an integer in 0\.\.10; got 1\.5 .*whole number"),
        ({"level": "1"}, TypeError, r"level must be an integer in 0\.\.10; got '1'"),
        ({"level": 11}, ValueError, r"level must be an integer in 0\.\.10; got 11"),
        (
            {"lvl": 1},
            TypeError,
            r"opponent_kwargs for GnuGoOpponent got unknown argument\(s\) \['lvl'\]; it takes: level",
        ),
        ({"binary": 3}, TypeError, r"binary must be the engine's executable"),
    ],
)
def test_engine_settings_are_checked_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_board_game("go", "gnugo", board_size=9, opponent_kwargs=kwargs)


@pytest.mark.parametrize(
    ("komi", "error"),
    [
        (math.nan, ValueError),
        (math.inf, ValueError),
        (-math.inf, ValueError),
        ("7.5", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_go_komi_must_be_a_finite_number(komi, error):
    with pytest.raises(error, match=r"komi must be a (finite )?number \(e\.g\. komi=7\.5\)"):
        make_board_game("go", board_size=9, komi=komi)
    make_board_game("go", board_size=9, komi=np.float32(5.5))  # any finite real is fine
    make_board_game("go", board_size=9, komi=0)


@pytest.mark.parametrize(
    ("size", "error"),
    [(9.0, TypeError), ("9", TypeError), (True, TypeError), (4, ValueError), (20, ValueError)],
)
def test_go_board_size_must_be_an_integer_in_range(size, error):
    with pytest.raises(error, match=r"board_size must be an integer in 5\.\.19; got .*"):
        make_board_game("go", board_size=size)
    assert make_board_game("go", board_size=np.int64(7)).action_space.n == 50


NON_INTEGER_ACTIONS = [1.7, 2.0, "4", True, np.float32(2.0), np.array([1.5]), np.array([1, 2]), None]
INTEGER_ACTIONS = [4, np.int64(4), np.uint8(4), np.array(4), np.array([4])]


def _action_envs():
    return {
        "self-play": make_board_game("tictactoe"),
        "versus": make_board_game("tictactoe", "random"),
        "go pass rule": make_board_game("go", board_size=5, pass_when_settled=True),
    }


@pytest.mark.parametrize("action", NON_INTEGER_ACTIONS, ids=repr)
def test_non_integer_actions_are_refused_and_change_nothing(action):
    for kind, env in _action_envs().items():
        env.reset(seed=0)
        n = env.action_space.n
        with pytest.raises(TypeError, match=rf"action must be an integer index in \[0, {n}\).*got"):
            env.step(action)
        assert env.unwrapped.history == [], kind
        env.step(4)  # the game goes on from the same position
        assert env.unwrapped.history[0] == 4, kind


@pytest.mark.parametrize("action", INTEGER_ACTIONS, ids=repr)
def test_integer_actions_of_any_integer_type_are_played(action):
    for kind, env in _action_envs().items():
        env.reset(seed=0)
        env.step(action)
        assert env.unwrapped.history[0] == 4 and type(env.unwrapped.history[0]) is int, kind


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            dict(name="checkers"),
            ValueError,
            r"Unknown board game name 'checkers'; known games: chess, connect_four",
        ),
        (
            dict(name="go", foo=1),
            TypeError,
            r"go takes no argument\(s\) \['foo'\]; its settings: board_size, komi",
        ),
        (
            dict(name="shogi", foo=1),
            TypeError,
            r"shogi got unknown argument\(s\) \['foo'\]; it takes: max_moves",
        ),
        (dict(name="shogi", max_moves=True), ValueError, r"max_moves must be a positive int"),
        (dict(name="tictactoe", render_mode="bogus"), ValueError, r"render_mode must be None or one of"),
        (
            dict(name="tictactoe", opponent="nobody"),
            ValueError,
            r"Unknown opponent 'nobody'; known names: random",
        ),
        (
            dict(name="tictactoe", opponent=42),
            TypeError,
            r"opponent must be an Opponent, a model with predict\(\)",
        ),
        (
            dict(name="go", opponent="stockfish"),
            ValueError,
            r"stockfish plays chess, not go; use opponent='gnugo'",
        ),
        (dict(name="go", opponent="minimax"), ValueError, r"tic-tac-toe only, not go; use opponent='random'"),
        (
            dict(name="tictactoe", opponent="random", agent_side="middle"),
            ValueError,
            r"agent_side must be one of",
        ),
        (dict(name="tictactoe", agent_side="first"), ValueError, r"need an opponent .*pass opponent=\.\.\."),
        (
            dict(name="tictactoe", opponent="random", opponent_kwargs=[1]),
            TypeError,
            r"opponent_kwargs must be a dict",
        ),
        (
            dict(name="tictactoe", opponent="random", opponent_kwargs={"sed": 1}),
            TypeError,
            r"opponent_kwargs for RandomOpponent got unknown argument\(s\) \['sed'\]; it takes: seed",
        ),
        (dict(name="tictactoe", pass_when_settled=1), ValueError, r"pass_when_settled must be True or False"),
    ],
)
def test_make_board_game_names_the_bad_argument_and_the_fix(call, error, match):
    call = dict(call)
    with pytest.raises(error, match=match):
        make_board_game(call.pop("name"), **call)


@pytest.mark.parametrize(
    ("depth", "error"),
    [("3", TypeError), (2.5, TypeError), (math.nan, TypeError), (True, TypeError), (-1, ValueError)],
)
def test_negamax_depth_must_be_a_whole_number_of_plies(depth, error):
    # 2.5 searched like 3, and NaN never reached the depth limit: the first reply never came
    with pytest.raises(error, match=r"depth must be an integer in >= 0; got .*"):
        ConnectFourNegamaxOpponent(depth=depth)
    assert ConnectFourNegamaxOpponent(depth=np.int64(2)).depth == 2


def _tictactoe_aec():
    return make_board_game("tictactoe").aec_env


@pytest.mark.parametrize("zero_sum", ["no", "False", 0, 1, None], ids=repr)
def test_selfplay_zero_sum_must_be_true_or_false(zero_sum):
    # any non-empty string was true: zero_sum="no" made the game zero-sum
    with pytest.raises(TypeError, match=r"zero_sum must be True or False \(e\.g\. zero_sum=False\); got"):
        SelfPlayEnv(_tictactoe_aec(), zero_sum=zero_sum)
    assert SelfPlayEnv(_tictactoe_aec(), zero_sum=np.bool_(False)).is_two_player_zero_sum is False


@pytest.mark.parametrize(
    ("reward", "error"),
    [(math.nan, ValueError), (math.inf, ValueError), ("-1", TypeError), (None, TypeError), (True, TypeError)],
)
def test_selfplay_illegal_reward_must_be_a_finite_number(reward, error):
    # a NaN surfaced only at the first illegal move, as a NaN reward blamed on the env
    with pytest.raises(
        error, match=r"illegal_reward must be a (finite )?number \(e\.g\. illegal_reward=-1\.0\)"
    ):
        SelfPlayEnv(_tictactoe_aec(), illegal_reward=reward)
    env = SelfPlayEnv(_tictactoe_aec(), illegal_reward=np.float32(-0.5))
    env.reset(seed=0)
    env.step(4)
    assert env.step(4)[1] == -0.5 and type(env.illegal_reward) is float


class _FirstLegal:
    def predict(self, observation, action_masks=None, deterministic=True):
        return np.flatnonzero(action_masks)[:1], None


@pytest.mark.parametrize("deterministic", ["no", "False", 0, None], ids=repr)
def test_policy_opponent_deterministic_must_be_true_or_false(deterministic):
    # SB3 tests `if deterministic`: deterministic="no" played the model's best move every time
    with pytest.raises(TypeError, match=r"deterministic must be True or False \(e\.g\. deterministic=True\)"):
        PolicyOpponent(_FirstLegal(), deterministic=deterministic)
    assert PolicyOpponent(_FirstLegal(), deterministic=np.bool_(False)).deterministic is False

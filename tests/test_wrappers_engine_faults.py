"""Engine failures leave the versus env in a defined state, and garbled answers are named.

Policy under test (``VersusOpponentEnv``'s docstring): a failing engine is restarted once and
asked the same position again; a second failure ends the episode as truncated with
``info["engine_error"]``. The learner's next move is never played for the opponent.
Fake engines (``tests.fake_engines``) play the faults; real GNU Go is killed mid-move.
"""

import time

import numpy as np
import pytest

pytest.importorskip("pettingzoo.classic")
from tests.fake_engines import asked_for_a_move, fake_engine
from wrappers import GameState, make_board_game
from wrappers.engines import EngineError, EngineNotFoundError, GnuGoOpponent, find_engine

QUICK = 0.3  # seconds: a fake that hangs costs two of these per move (one where it hangs once)
PATIENT = 5.0  # seconds: the limit where no answer is meant to time out (a loaded machine is slow)
ENGINE_OF = {"gtp": "gnugo", "uci": "stockfish", "xshogi": "gnushogi"}
GAME_OF = {"gtp": "go", "uci": "chess", "xshogi": "shogi"}


def _versus(protocol, binary, fault="", **kwargs):
    game_kwargs = {"board_size": 9} if protocol == "gtp" else {}
    opponent_kwargs = {"binary": binary, "time_limit": QUICK if fault == "hang" else PATIENT}
    return make_board_game(
        GAME_OF[protocol], ENGINE_OF[protocol], opponent_kwargs=opponent_kwargs, **game_kwargs, **kwargs
    )


def _first_learner_move(protocol):
    """The learner's opening move to which the fake's move is a legal reply."""
    if protocol == "gtp":
        return 0  # A9
    if protocol == "uci":
        pytest.importorskip("chess")
        return 2421  # e2e4
    pytest.importorskip("wrappers.envs.shogi_v0")
    return 7784  # 7g7f


@pytest.mark.parametrize("protocol", ["gtp", "uci", "xshogi"])
@pytest.mark.parametrize("fault", ["hang", "exit", "xyz"])
def test_an_engine_that_fails_twice_truncates_the_episode(tmp_path, protocol, fault):
    move = _first_learner_move(protocol)
    env = _versus(protocol, fake_engine(tmp_path, protocol, fault), fault)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(move)
    assert (reward, terminated, truncated) == (0.0, False, True)
    assert "after a restart" in info["engine_error"]
    assert env.history == [move]  # the failed reply was never played
    with pytest.raises(RuntimeError, match=r"call reset\(\)"):
        env.step(3)  # the repro: this used to be played as the opponent's move
    assert env.history == [move]
    env.reset(seed=1)  # a new game starts cleanly
    assert env.history == []
    env.close()


def _quick_only_once_the_first_process_hangs(opponent, binary):
    """Time only the hang with QUICK: the first process's answer to its move request, read once
    that process has been asked (``asked_for_a_move``). Every start, handshake and setup command,
    and the whole restarted process, get PATIENT, so that a slow start on a loaded machine is not
    taken for the hang."""
    process, start, send = opponent.process, opponent.process.start, opponent.process.send
    starts = []

    def start_patiently():
        opponent.time_limit = PATIENT
        starts.append(None)
        start()

    def send_then_quick_once_hanging(line):
        send(line)
        if len(starts) == 1 and line.split()[:1] in (["genmove"], ["go"]):  # GTP; UCI and xshogi
            deadline = time.monotonic() + PATIENT
            while not asked_for_a_move(binary):
                if time.monotonic() > deadline:
                    pytest.fail(f"the fake engine was not asked for a move within {PATIENT} s")
                time.sleep(0.01)
            opponent.time_limit = QUICK

    process.start, process.send = start_patiently, send_then_quick_once_hanging


def _record_failures(opponent):
    """The EngineErrors of each ask (``act`` swallows the first one when the restart answers)."""
    failures, ask = [], opponent._ask

    def recording_ask(mask, state):
        try:
            return ask(mask, state)
        except EngineError as error:
            failures.append(str(error))
            raise

    opponent._ask = recording_ask
    return failures


FIRST_FAILURE = {"hang": f"gave no answer within {QUICK:.1f} s", "exit": "exited", "xyz": "xyz"}


@pytest.mark.parametrize("protocol", ["gtp", "uci", "xshogi"])
@pytest.mark.parametrize("fault", ["hang", "exit", "xyz"])
def test_an_engine_that_fails_once_is_restarted_and_asked_again(tmp_path, protocol, fault):
    move = _first_learner_move(protocol)
    binary = fake_engine(tmp_path, protocol, fault, first_run_only=True)
    env = _versus(protocol, binary)
    if fault == "hang":
        _quick_only_once_the_first_process_hangs(env.opponent, binary)
    failures = _record_failures(env.opponent)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(move)
    assert not (terminated or truncated) and "engine_error" not in info
    assert len(failures) == 1 and FIRST_FAILURE[fault] in failures[0]  # the fault, told for what it is
    assert len(env.history) == 2 and env.history[0] == move
    assert env.opponent.process.alive  # the second process answered
    env.close()


def test_an_opening_move_failure_makes_reset_raise_and_step_refuse(tmp_path):
    env = _versus("gtp", fake_engine(tmp_path, "gtp", "exit"), agent_side="second")
    with pytest.raises(EngineError, match="opening move"):
        env.reset(seed=0)
    with pytest.raises(RuntimeError, match=r"call reset\(\)"):
        env.step(0)
    assert env.history == []


def test_any_other_opponent_error_leaves_the_episode_over():
    class Broken:
        def act(self, observation, action_mask, game_state):
            raise KeyError("broken opponent")

    env = make_board_game("tictactoe", Broken())
    env.reset(seed=0)
    with pytest.raises(KeyError):
        env.step(0)
    with pytest.raises(RuntimeError, match=r"call reset\(\)"):
        env.step(4)  # never played for the opponent
    assert env.history == [0]


GARBLED = {
    "gtp": ["I5", "", "xyz", "K1"],  # no column I in GTP; K is the tenth column
    "uci": ["xyz", "", "e2e9", "e2e5"],  # e2e5: well-formed but illegal
    "xshogi": ["xyz", "", "0z0z+"],
}
ANSWER_LINE = {"gtp": "{}", "uci": "bestmove {}", "xshogi": "1. ... {} 300000"}


@pytest.mark.parametrize(("protocol", "answer"), [(p, a) for p, answers in GARBLED.items() for a in answers])
def test_a_garbled_answer_is_an_engine_error_quoting_it(tmp_path, protocol, answer):
    move = _first_learner_move(protocol)
    env = _versus(protocol, fake_engine(tmp_path, protocol, answer))
    state = GameState(game=GAME_OF[protocol], history=[move], to_play=1, config={"komi": 7.5})
    mask = np.ones(env.action_space.n, bool)
    with env, pytest.raises(EngineError) as caught:
        env.opponent.act(None, mask, state)
    quoted = repr(ANSWER_LINE[protocol].format(answer).strip())
    assert quoted in str(caught.value)
    assert "after a restart" in str(caught.value)


def _need_gnugo():
    try:
        find_engine("gnugo", "gnugo")
    except EngineNotFoundError:
        pytest.skip("gnugo is not installed (apt-get install gnugo)")


def _kill_as_genmove_is_sent(opponent, times):
    """Make ``opponent``'s process die as each of the next ``times`` genmove commands is sent,
    before it can answer (killed after the send, a fast engine sometimes answered first)."""
    process, send = opponent.process, opponent.process.send
    left = [times]

    def kill_then_send(line):
        if line.startswith("genmove") and left[0] > 0:
            left[0] -= 1
            process._proc.kill()
            process._proc.wait()
        send(line)

    process.send = kill_then_send


def test_real_gnugo_killed_when_asked_for_a_move_is_restarted_and_colours_stay_right():
    _need_gnugo()
    env = make_board_game("go", "gnugo", board_size=9, opponent_kwargs={"level": 0, "time_limit": 5.0})
    with env:
        env.reset(seed=0)
        env.step(0)
        _kill_as_genmove_is_sent(env.opponent, times=1)
        _, _, terminated, truncated, info = env.step(80)
        assert not (terminated or truncated) and "engine_error" not in info
        assert len(env.history) == 4 and env.history[::2] == [0, 80]
        board = np.asarray(env.game_env.aec_env.unwrapped._go.board).reshape(-1)
        assert board[0] == board[80] == 1  # the learner's stones are black
        assert (board == -1).sum() == 2


def test_real_gnugo_killed_twice_truncates_the_episode():
    _need_gnugo()
    opponent = GnuGoOpponent(level=0, time_limit=5.0)
    env = make_board_game("go", opponent, board_size=9)
    with env:
        env.reset(seed=0)
        _kill_as_genmove_is_sent(env.opponent, times=2)
        _, reward, _, truncated, info = env.step(0)
        assert truncated and reward == 0.0 and "exited" in info["engine_error"]
        assert env.history == [0]
        with pytest.raises(RuntimeError, match=r"call reset\(\)"):
            env.step(3)

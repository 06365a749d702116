"""benchmarks.boardgame_play: game counting against scripted players, and the script end to end."""

import numpy as np
import pytest
import torch

from benchmarks import boardgame_play
from benchmarks.boardgame_play import Tally, main, make_opponent, play_games
from wrappers import ConnectFourNegamaxOpponent, TicTacToeMinimaxOpponent, make_board_game

torch.set_num_threads(1)


class FirstLegalModel:
    """A stub model: always the lowest-numbered legal action."""

    def predict(self, obs, action_masks=None, deterministic=True):
        return int(np.flatnonzero(action_masks)[0]), None


class PerfectModel:
    """A stub model that plays tic-tac-toe perfectly (first of the optimal moves)."""

    def predict(self, obs, action_masks=None, deterministic=True):
        return TicTacToeMinimaxOpponent.best_actions(obs)[0], None


class FirstLegalOpponent:
    def act(self, observation, action_mask, game_state):
        return int(np.flatnonzero(action_mask)[0])


def versus(opponent, side):
    return make_board_game("tictactoe", opponent=opponent, agent_side=side)


@pytest.mark.parametrize("side, expected", [("first", (3, 0, 0)), ("second", (0, 0, 3))])
def test_scripted_game_counts_the_known_outcome(side, expected):
    # both sides play the lowest free square: X takes 0, 2, 4, 6 and wins on the 2-4-6 diagonal
    tally = play_games(FirstLegalModel(), versus(FirstLegalOpponent(), side), 3, first_seed=0)
    assert (tally.wins, tally.draws, tally.losses) == expected


@pytest.mark.parametrize("side", ["first", "second"])
def test_a_fixed_move_player_never_beats_minimax(side):
    tally = play_games(FirstLegalModel(), versus(TicTacToeMinimaxOpponent(), side), 10, first_seed=0)
    assert tally.games == 10
    assert tally.wins == 0
    assert tally.losses > 0


@pytest.mark.parametrize("side", ["first", "second"])
def test_perfect_play_against_minimax_is_always_a_draw(side):
    tally = play_games(PerfectModel(), versus(TicTacToeMinimaxOpponent(), side), 10, first_seed=0)
    assert (tally.wins, tally.draws, tally.losses) == (0, 10, 0)


def test_tally_percentages():
    tally = Tally()
    for reward in (1.0, 1.0, 0.0, -1.0):
        tally.add(reward)
    assert (tally.games, tally.percent(tally.wins), tally.percent(tally.losses)) == (4, 50.0, 25.0)


def test_opponents_by_game():
    negamax = make_opponent("connect_four", "negamax", depth=3)
    assert isinstance(negamax, ConnectFourNegamaxOpponent) and negamax.depth == 3
    assert isinstance(make_opponent("tictactoe", "minimax"), TicTacToeMinimaxOpponent)
    with pytest.raises(ValueError, match="known: minimax, random"):
        make_opponent("tictactoe", "negamax")


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--games", "0"])
    assert "--games must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--play-simulations", "0"])
    assert "--play-simulations must be >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoint-minutes", "5"])
    assert "--checkpoint-minutes needs --save" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--checkpoint-minutes", "5", "--save", "x.zip", "--minutes", "5"])
    assert "a value in (0, --minutes)" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            main(["--device", "cuda"])
        assert "torch sees no CUDA device here" in capsys.readouterr().err


def test_device_reaches_training_and_loading(tmp_path, monkeypatch, fast_kwargs):
    from muzero_agents import MuZero

    devices = []
    real_build_run, real_load = boardgame_play.build_run, MuZero.load
    monkeypatch.setattr(
        boardgame_play,
        "build_run",
        lambda *a, device: devices.append(device) or real_build_run(*a, device=device),
    )
    monkeypatch.setattr(
        MuZero, "load", lambda *a, device: devices.append(device) or real_load(*a, device=device)
    )
    save = tmp_path / "m.zip"
    main(["--minutes", "0.01", "--games", "1", "--no-ppo", "--device", "auto", "--save", str(save)])
    main(["--load", str(save), "--games", "1", "--no-ppo", "--device", "auto"])
    assert devices == ["auto", "auto"]  # not the default "cpu": the option reached both


def test_main_end_to_end_with_a_tiny_budget(tmp_path, capsys, monkeypatch):
    save = tmp_path / "muzero_ttt.zip"
    rows = main(["--minutes", "0.02", "--ppo-minutes", "0.02", "--games", "1", "--save", str(save)])
    expected = {
        (agent, opponent, side)
        for agent in ("MuZero", "MaskablePPO")
        for opponent in ("minimax", "random")
        for side in ("first", "second")
    }
    assert {(r.agent, r.opponent, r.side) for r in rows} == expected
    assert all(r.tally.games == 1 and r.training.env_steps > 0 for r in rows)
    assert all(r.training.minutes < 0.5 for r in rows)  # the wall clock stopped training
    table = capsys.readouterr().out
    assert "win %" in table and table.count("MaskablePPO  minimax") == 2
    assert save.is_file()

    played_with = []
    real_evaluate = boardgame_play.evaluate

    def recording_evaluate(model, *args):
        played_with.append(
            (model.search, model.play_kwargs["num_simulations"], boardgame_play.play_simulations(model))
        )
        return real_evaluate(model, *args)

    monkeypatch.setattr(boardgame_play, "evaluate", recording_evaluate)
    play = ["--play-simulations", "3", "--play-search", "gumbel"]
    loaded = main(["--load", str(save), "--games", "1", "--no-ppo", *play])
    assert played_with == [("gumbel", 3, 3)]
    assert "MuZero plays with 3 simulations per move" in capsys.readouterr().out
    assert {(r.agent, r.opponent, r.side) for r in loaded} == {k for k in expected if k[0] == "MuZero"}
    assert all(
        r.training.minutes is None and r.training.env_steps == rows[0].training.env_steps for r in loaded
    )


def test_a_save_without_symmetries_loads_and_plays(tmp_path, fast_kwargs):
    from muzero_agents import MuZero

    old = tmp_path / "old.zip"
    MuZero("MlpPolicy", make_board_game("tictactoe"), **fast_kwargs).save(old, exclude=["_symmetries"])
    rows = main(["--load", str(old), "--games", "2", "--no-ppo"])
    assert len(rows) == 4 and all(r.tally.games == 2 for r in rows)


def test_the_removed_play_symmetries_option_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--games", "1", "--no-ppo", "--play-symmetries", "on"])
    assert "unrecognized arguments: --play-symmetries" in capsys.readouterr().err


def test_play_weights_chooses_the_average_or_the_newest_weights(tmp_path, capsys, monkeypatch, fast_kwargs):
    from muzero_agents import MuZero

    averaged, plain = tmp_path / "averaged.zip", tmp_path / "plain.zip"
    averaging = {**fast_kwargs, "play_kwargs": {"ema_decay": 0.9}}
    MuZero("MlpPolicy", make_board_game("tictactoe"), **averaging).save(averaged)
    MuZero("MlpPolicy", make_board_game("tictactoe"), **fast_kwargs).save(plain)
    played_with = []
    monkeypatch.setattr(
        boardgame_play,
        "evaluate",
        lambda model, *args: played_with.append(model.play_kwargs["ema_decay"]) or [],
    )
    main(["--load", str(averaged), "--games", "1", "--no-ppo", "--play-weights", "average"])
    main(["--load", str(averaged), "--games", "1", "--no-ppo", "--play-weights", "newest"])
    assert played_with == [0.9, None]
    assert "MuZero plays with its newest weights" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="keeps no weight average"):
        main(["--load", str(plain), "--games", "1", "--no-ppo", "--play-weights", "average"])


def test_wall_clock_budget_stops_learn_and_drives_progress(fast_kwargs):
    from stable_baselines3.common.env_util import make_vec_env

    from benchmarks.boardgame_play import UNBOUNDED_STEPS, WallClockBudget
    from muzero_agents import MuZero

    model = MuZero(
        "MlpPolicy", make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2), seed=0, **fast_kwargs
    )
    model.learn(8)  # compiles the search first: the budget times learning, not Numba
    model.learn(UNBOUNDED_STEPS, callback=WallClockBudget(seconds=1.5))
    assert 0 < model.num_timesteps < UNBOUNDED_STEPS
    # progress follows the clock: at the end of the budget little of it remains (temperature anneals)
    assert model._current_progress_remaining < 0.2


@pytest.mark.parametrize("background_training", [False, True])
def test_wall_clock_checkpoints_save_loadable_models_before_the_budget(
    tmp_path, fast_kwargs, background_training
):
    from stable_baselines3.common.env_util import make_vec_env

    from benchmarks.boardgame_play import WallClockCheckpoints
    from muzero_agents import MuZero

    model = MuZero(
        "MlpPolicy",
        make_vec_env(lambda: make_board_game("tictactoe"), n_envs=2),
        seed=0,
        background_training=background_training,
        **fast_kwargs,
    )
    calls = iter(range(10_000))
    clock = lambda: 20.0 * next(calls)  # 20 s a call: a checkpoint every third step
    checkpoints = WallClockCheckpoints(1.0, str(tmp_path / "run"), budget_minutes=3.0, clock=clock)
    model.learn(60, callback=checkpoints)  # 30 steps of 2 envs: 10 minutes on that clock
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-1min.zip", "run-2min.zip"]  # 3 is the budget's
    first, second = (MuZero.load(tmp_path / f"run-{m}min.zip") for m in (1, 2))
    assert 0 < first.num_timesteps < second.num_timesteps < model.num_timesteps

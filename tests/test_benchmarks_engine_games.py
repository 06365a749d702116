"""benchmarks.engine_games: argument checks, and a tiny end-to-end run per game against its engine.

The end-to-end runs need Stockfish / GNU Shogi and skip, naming the Debian package, without them.
"""

import pytest
import torch

pytest.importorskip("pettingzoo.classic")
from benchmarks import engine_games
from benchmarks.engine_games import ENGINES, main, parse_args
from tests.test_wrappers_engines import _need

torch.set_num_threads(1)

MOVE_CAP = 16
TRAIN_MOVES = 3 * MOVE_CAP  # a move budget, not wall clock: the same run on a fast or a loaded machine
TINY = [
    "--train-moves", str(TRAIN_MOVES),
    "--simulations", "2",
    "--eval-games", "2",
    "--move-cap", str(MOVE_CAP),
    "--n-envs", "1", "2",
    "--acting-moves", "6",
    "--channels", "8",
    "--blocks", "1",
    "--head-hidden", "16",
    "--batch-size", "8",
    "--learning-starts", "8",
    "--buffer-size", "300",
]  # fmt: skip


def test_defaults_follow_the_issue():
    args = parse_args([])
    assert args.games == ["chess", "shogi"]
    assert args.minutes == 5.0 and args.train_moves is None
    assert args.simulations == 50
    assert args.eval_games == 4
    assert args.n_envs == [1, 8]
    assert ENGINES["chess"] == ("stockfish", {"skill_level": 0, "depth": 1})
    assert ENGINES["shogi"][0] == "gnushogi"


def test_repeated_games_are_played_once():
    assert parse_args(["--games", "shogi", "shogi", "chess"]).games == ["shogi", "chess"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--minutes", "0"], "--minutes must be > 0"),
        (["--train-moves", "0"], "--train-moves must be >= 1"),
        (["--minutes", "1", "--train-moves", "9"], "not allowed with argument"),
        (["--simulations", "0"], "--simulations must be >= 1"),
        (["--eval-games", "-1"], "--eval-games must be >= 0"),
        (["--move-cap", "1"], "--move-cap must be >= 2"),
        (["--n-envs", "1", "0"], "--n-envs values must be >= 1"),
        (["--replay-ratio", "0"], "--replay-ratio must be > 0"),
        (["--learning-starts", "500", "--buffer-size", "100"], "--buffer-size must be >= --learning-starts"),
        (["--games", "go"], "invalid choice: 'go'"),
    ],
)
def test_bad_arguments_are_refused_with_the_fix(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_problems_are_reported_together(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--minutes", "-1", "--batch-size", "0"])
    err = capsys.readouterr().err
    assert "--minutes must be > 0" in err and "--batch-size must be >= 1" in err


@pytest.mark.parametrize("game", ["chess", "shogi"])
def test_tiny_run_end_to_end_against_the_engine(game, tmp_path, capsys):
    engine = ENGINES[game][0]
    _need(engine, engine)  # the binary and its Debian package share the name
    out = tmp_path / "table.txt"
    (report,) = main(["--games", game, *TINY, "--out", str(out)])

    assert [run.n_envs for run in report.acting] == [1, 2]
    for run in report.acting:
        assert run.moves >= 6 and run.moves_per_second > 0
        assert run.gradient_steps == 0  # acting only
        assert run.illegal == 0
    training = report.training
    assert training.moves == TRAIN_MOVES  # one training env: the budget exactly
    assert training.gradient_steps > 0  # past --learning-starts 8
    assert training.games_finished >= TRAIN_MOVES // MOVE_CAP  # each self-play game ends by the cap
    assert training.illegal == 0

    games = report.engine
    assert games.engine == engine and games.illegal == 0
    assert games.tally.games == 2 == len(games.plies)
    assert all(1 <= plies <= MOVE_CAP + 1 for plies in games.plies)  # the cap may land on the reply
    assert games.capped <= games.tally.draws

    printed = capsys.readouterr().out
    assert out.read_text().strip() in printed
    row = next(line for line in printed.splitlines() if line.split()[:2] == [game, "1"])
    assert row.split()[-1] == "0"  # no illegal moves on the training row


def test_capped_engine_game_is_a_draw():
    """A model that never loses within the cap: every game stops at the cap as a draw."""
    _need("stockfish", "stockfish")

    class FirstLegal:
        def predict(self, obs, action_masks=None, deterministic=True):
            return action_masks.nonzero()[0][0], None

    games = engine_games.play_engine(FirstLegal(), "chess", n_games=2, move_cap=2, seed=0)
    assert games.tally.draws == games.capped == 2
    assert games.plies == [2, 3]  # as second: engine, model, then the engine's reply inside step()


def test_the_move_budget_is_reported_as_the_whole_env_steps_learn_takes():
    assert (
        engine_games.training_budget(parse_args(["--train-moves", "10", "--train-envs", "3"])) == "12 moves"
    )
    assert engine_games.training_budget(parse_args(["--minutes", "0.5"])) == "0.5 min"

"""benchmarks.scaling: the CartPole and connect-four tasks in process (no Ray), the connect-four threshold."""

import json
import pickle

import pytest
from stable_baselines3.common.vec_env import VecEnv

from benchmarks import scaling
from benchmarks.boardgame_play import Tally
from muzero_agents import MuZero

TINY = {
    "num_simulations": 2,
    "batch_size": 8,
    "learning_starts": 16,
    "unroll_steps": 2,
    "td_steps": 5,
    "buffer_size": 1_000,
    "replay_ratio": 0.25,
}
TINY_MLP = {**TINY, "policy_kwargs": {"network_kwargs": {"hidden_dim": 8, "net_arch": [16]}}}
TINY_CNN = {**TINY, "policy_kwargs": {"network_kwargs": {"channels": 8, "num_blocks": 1, "head_hidden": 16}}}
COLUMNS = ["actors", "reanalyze", "env steps/s", "vs 1 actor", "grad steps/s", "start-up s", "env steps"]


def header_of(printed: str) -> str:
    return next(line for line in printed.splitlines() if line.lstrip().startswith("actors"))


def test_cartpole_in_process_run_prints_the_table(capsys):
    tiny = ["--envs", "2", "--muzero-kwargs", json.dumps(TINY_MLP)]
    rows = scaling.main(["--actors", "0", "--steps", "64", *tiny])
    header = header_of(capsys.readouterr().out)
    for column in [*COLUMNS, "s to 475", "steps to 475"]:
        assert column in header
    assert len(rows) == 1 and rows[0]["actors"] == 0 and rows[0]["reanalyze_workers"] == 0
    assert rows[0]["env_steps_per_s"] > 0 and rows[0]["env_steps"] >= 64
    assert rows[0]["seconds_to_threshold"] is None  # speed only: no evaluation


@pytest.mark.parametrize("won", [True, False])
def test_connect_four_in_process_run_to_threshold(capsys, monkeypatch, won):
    """The evaluation games are played, their outcomes then set: all won, the run stops at its first
    evaluation (32 env steps) and reports it; all lost, it goes on to its budget (64) and reports none."""
    games = []

    def decided_games(model, env, n_games, first_seed):
        games.append(real_play_games(model, env, n_games, first_seed).games)
        return Tally(wins=n_games) if won else Tally(losses=n_games)

    real_play_games = scaling.play_games
    monkeypatch.setattr(scaling, "play_games", decided_games)
    threshold = ["--to-threshold", "--budget", "64", "--eval-every", "32", "--eval-episodes", "2"]
    tiny = ["--envs", "2", "--muzero-kwargs", json.dumps(TINY_CNN)]
    rows = scaling.main(["--task", "connect_four", "--actors", "0", *threshold, *tiny])
    printed = capsys.readouterr().out
    header = header_of(printed)
    for column in [*COLUMNS, "s to 90%", "steps to 90%"]:
        assert column in header
    assert "475" not in header
    assert "connect_four: threshold 90%" in printed
    (row,) = rows
    assert row["env_steps_per_s"] > 0 and row["grad_steps_per_s"] > 0
    if won:  # one evaluation (a side each), and the run stopped there
        assert games == [2, 2] and row["env_steps"] == row["steps_to_threshold"] == 32
        assert row["seconds_to_threshold"] > 0
    else:  # evaluated at 32 and 64 env steps, never stopped
        assert games == [2, 2, 2, 2] and row["env_steps"] == 64
        assert row["steps_to_threshold"] is None and row["seconds_to_threshold"] is None


def test_the_threshold_decision_on_given_tallies():
    ninety = {"first": Tally(wins=18, draws=1, losses=1), "second": Tally(wins=19, losses=1)}
    assert scaling.reaches_threshold(ninety)
    assert scaling.lower_win_rate(ninety) == pytest.approx(0.9)
    one_side_short = {"first": Tally(wins=20), "second": Tally(wins=17, draws=3)}
    assert not scaling.reaches_threshold(one_side_short)
    assert scaling.lower_win_rate(one_side_short) == pytest.approx(0.85)
    assert not scaling.reaches_threshold({"first": Tally(losses=20), "second": Tally(losses=20)}, 0.5)
    assert scaling.win_rate(Tally()) == 0.0


def tiny_connect_four_model():
    _, policy, kwargs = scaling.connect_four_settings({**TINY_CNN, "learning_starts": 1_000}, 1)
    return MuZero(policy, scaling.connect_four_env(1, 0), seed=0, **kwargs)


@pytest.mark.parametrize("threshold", [0.0, 1.01])
def test_connect_four_evaluation_on_a_model(threshold):
    model = tiny_connect_four_model()
    evaluation = scaling.VersusRandomEval(every=8, games=3, seed=0, threshold=threshold)
    model.learn(24, callback=evaluation)
    assert set(evaluation.tallies) == {"first", "second"}
    assert all(tally.games == 3 for tally in evaluation.tallies.values())
    records = evaluation.history.of(scaling.BOTH_SIDES)
    sides = [record.eval_mean for record in evaluation.history.records[-3:-1]]
    assert 0.0 <= records[-1].eval_mean <= 1.0 and records[-1].eval_mean == min(sides)
    assert evaluation.eval_seconds() > 0
    if threshold == 0.0:  # reached at the first evaluation: training stops there
        assert evaluation.reached and len(records) == 1 and model.num_timesteps == 8
        assert evaluation.history.first_reaching(threshold, scaling.BOTH_SIDES).env_steps == 8
    else:  # out of reach: evaluated at 8, 16 and 24 steps, never stopped
        assert not evaluation.reached and len(records) == 3 and model.num_timesteps == 24
        assert evaluation.history.first_reaching(threshold, scaling.BOTH_SIDES) is None


def test_connect_four_settings_and_env_come_from_the_yml_entry():
    n_envs, policy, kwargs = scaling.connect_four_settings({"self_play_kwargs": {"sampling_moves": 4}}, None)
    assert (n_envs, policy, kwargs["td_steps"]) == (8, "CnnPolicy", 42)
    assert kwargs["self_play_kwargs"] == {"temperature": 1.0, "sampling_moves": 4}  # merged key by key
    factory = pickle.loads(pickle.dumps(scaling.connect_four_env(2, 0)))  # what actors receive
    env = factory()
    assert isinstance(env, VecEnv) and env.num_envs == 2 and env.action_space.n == 7
    env.close()
    assert scaling.cartpole_env(1, 0) == "CartPole-v1"
    assert scaling.cartpole_env(3, 0)().num_envs == 3


def test_task_defaults_and_refused_combinations():
    assert (scaling.parse_args([]).budget, scaling.parse_args([]).eval_every) == (20_000, 500)
    args = scaling.parse_args(["--task", "connect_four", "--eval-every", "700"])
    assert (args.budget, args.eval_every, args.eval_episodes) == (100_000, 700, 20)
    with pytest.raises(SystemExit):
        scaling.parse_args(["--self-play-only", "--to-threshold"])
    with pytest.raises(SystemExit):
        scaling.parse_args(["--task", "chess"])

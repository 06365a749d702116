"""MuZero registered with the RL Zoo: its train and enjoy scripts run MuZero from muzero.yml."""

import pytest

from muzero_agents import MuZero

pytest.importorskip("rl_zoo3")

from benchmarks.harness import muzero_sampler, rlzoo, zoo


def test_register_adds_muzero_and_its_sampler_to_the_zoo():
    from rl_zoo3 import ALGOS
    from rl_zoo3.hyperparams_opt import HYPERPARAMS_CONVERTER, HYPERPARAMS_SAMPLER

    from muzero_agents import MuZero

    rlzoo.register()
    assert ALGOS["muzero"] is rlzoo.ZooMuZero and issubclass(ALGOS["muzero"], MuZero)
    assert HYPERPARAMS_SAMPLER["muzero"] is muzero_sampler.sample_muzero_params
    assert HYPERPARAMS_CONVERTER["muzero"]({"td_steps": 5}) == {"td_steps": 5}


def test_grouped_settings_written_group_dot_key_merge_into_their_group():
    folded = zoo.fold_grouped_settings(
        {
            "td_steps": 50,
            "reanalyze_kwargs": {"fraction": 1.0, "search": False},
            "reanalyze_kwargs.fraction": 0.5,
            "learner_kwargs.reward_loss_coef": 10.0,
            "search_kwargs": "dict(dirichlet_alpha=0.3)",
            "search_kwargs.pb_c_init": 1.5,
        }
    )
    assert folded == {
        "td_steps": 50,
        "reanalyze_kwargs": {"fraction": 0.5, "search": False},
        "learner_kwargs": {"reward_loss_coef": 10.0},
        "search_kwargs": {"dirichlet_alpha": 0.3, "pb_c_init": 1.5},
    }
    with pytest.raises(ValueError, match="group.key"):
        zoo.fold_grouped_settings({"td_steps.x": 1})


def test_every_sample_builds_a_muzero_on_the_yml_entry():
    """Sampled settings pass MuZero's checks, merged into the CartPole entry's groups."""
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    entry = {k: v for k, v in rlzoo.hyperparams["CartPole-v1"].items() if k not in ("n_envs", "n_timesteps")}
    for _ in range(12):
        trial = study.ask()
        sampled = muzero_sampler.sample_muzero_params(trial, n_actions=2, n_envs=1, additional_args={})
        assert set(sampled) == set(muzero_sampler.SEARCH_SPACE) | set(muzero_sampler.LOG_UNIFORM)
        assert muzero_sampler.convert_muzero_params(trial.params) == sampled
        model = rlzoo.ZooMuZero(env="CartPole-v1", **{**entry, **sampled})
        assert model.reanalyze_kwargs["search"] is False  # the entry's other group key is kept
        assert model.reanalyze_kwargs["fraction"] == sampled["reanalyze_kwargs.fraction"]
        assert (
            model.learner_kwargs["consistency_loss_coef"] == sampled["learner_kwargs.consistency_loss_coef"]
        )
        assert (model.td_steps, model.num_simulations) == (sampled["td_steps"], sampled["num_simulations"])
        study.tell(trial, 0.0)


def test_zoo_optimizes_muzero(tmp_path, monkeypatch, capsys):
    """Two trials of the Zoo's -optimize, each a few gradient steps (fast choices, same wiring)."""
    fast = {name: choices[:1] for name, choices in muzero_sampler.SEARCH_SPACE.items()}
    fast.update(batch_size=(8,), num_simulations=(2,), unroll_steps=(3,), td_steps=(5,))
    monkeypatch.setattr(muzero_sampler, "SEARCH_SPACE", fast)
    rlzoo.main(
        [
            "train",
            "--algo",
            "muzero",
            "--env",
            "CartPole-v1",
            "-optimize",
            "--n-trials",
            "2",
            "--n-timesteps",
            "64",
            "--n-jobs",
            "1",
            "--eval-episodes",
            "2",
            "--no-optim-plots",
            "--seed",
            "0",
            "--num-threads",
            "1",
            "-f",
            str(tmp_path),
            "-params",
            "learning_starts:16",
        ]
    )
    (report,) = (tmp_path / "muzero").glob("report_CartPole-v1_2-trials-64-*.csv")
    import csv

    with open(report) as handle:
        trials = list(csv.DictReader(handle))
    assert [trial["state"] for trial in trials] == ["COMPLETE", "COMPLETE"]
    assert all(float(trial["value"]) > 0 for trial in trials)
    assert "params_learner_kwargs.consistency_loss_coef" in trials[0]
    assert "Best trial" in capsys.readouterr().out


def test_muzero_gets_its_table_unless_a_conf_file_is_given():
    assert rlzoo._with_muzero_config(["--algo", "muzero"])[-2:] == ["--conf-file", "benchmarks.harness.rlzoo"]
    assert rlzoo._with_muzero_config(["--algo", "muzero", "-conf", "x.yml"]) == [
        "--algo",
        "muzero",
        "-conf",
        "x.yml",
    ]
    assert rlzoo._with_muzero_config(["--algo=muzero"])[-2:] == ["--conf-file", "benchmarks.harness.rlzoo"]
    assert rlzoo._with_muzero_config(["--algo", "ppo"]) == ["--algo", "ppo"]
    assert {"CartPole-v1", "BoardGame/TicTacToe-v0", "atari"} <= set(rlzoo.hyperparams)


def test_usage_error_names_the_scripts():
    with pytest.raises(SystemExit, match="train,enjoy"):
        rlzoo.main(["plot"])


def test_zoo_trains_and_enjoys_muzero(tmp_path, capsys):
    pytest.importorskip("requests")  # the Zoo's enjoy script imports it
    rlzoo.main(
        [
            "train",
            "--algo",
            "muzero",
            "--env",
            "CartPole-v1",
            "-n",
            "64",
            "--eval-freq",
            "-1",
            "-f",
            str(tmp_path),
            "--seed",
            "0",
            "--num-threads",
            "1",
            "-params",
            "num_simulations:2",
            "batch_size:8",
            "learning_starts:16",
        ]
    )
    assert (tmp_path / "muzero" / "CartPole-v1_1" / "CartPole-v1.zip").exists()
    capsys.readouterr()
    rlzoo.main(
        [
            "enjoy",
            "--algo",
            "muzero",
            "--env",
            "CartPole-v1",
            "-f",
            str(tmp_path),
            "-n",
            "30",
            "--no-render",
            "--deterministic",
            "--num-threads",
            "1",
        ]
    )
    assert "Episode Reward" in capsys.readouterr().out


def test_grouped_settings_are_folded_at_load_too(tmp_path):
    """The Zoo's ``-i`` (continue training) loads the agent with the entry's settings and ``-params``."""
    rlzoo.ZooMuZero("MlpPolicy", "CartPole-v1", num_simulations=2).save(tmp_path / "agent")
    loaded = rlzoo.ZooMuZero.load(tmp_path / "agent", **{"learner_kwargs.reward_loss_coef": 7.0})
    assert loaded.learner_kwargs["reward_loss_coef"] == 7.0
    assert loaded.learner.settings["reward_loss_coef"] == 7.0


def zoo_params(*arguments: str) -> dict:
    """``-params`` parsed as the Zoo's command line parses it (``rl_zoo3.utils.StoreDict``)."""
    import argparse

    from rl_zoo3.utils import StoreDict

    parser = argparse.ArgumentParser()
    parser.add_argument("-params", nargs="+", action=StoreDict)
    return parser.parse_args(["-params", *arguments]).params


def yml_schedule_values(group: str, key: str, value: str) -> list[float]:
    """What the schedule ``value`` of ``group: {key: value}`` in muzero.yml gives along training."""
    schedule = zoo.convert_zoo_value(group, {key: value})[key]
    return [schedule(progress) for progress in (1.0, 0.5, 0.0)]


@pytest.mark.parametrize(
    "param, kept_sampling_moves",
    [
        ("self_play_kwargs.temperature:'lin_1.0'", 4),  # merged into the entry's group
        ("self_play_kwargs:dict(temperature='lin_1.0')", None),  # replaces it, as the Zoo's -params do
    ],
)
def test_grouped_lin_schedules_on_the_command_line_read_as_in_muzero_yml(param, kept_sampling_moves):
    """``-params`` with ``lin_X`` inside a group gives the schedule the same muzero.yml entry gives."""
    entry = rlzoo.zoo_ready({"self_play_kwargs": {"sampling_moves": 4}})  # as the Zoo's table holds it
    settings = {**entry, **zoo_params(param)}  # as the Zoo applies -params to the entry
    model = rlzoo.ZooMuZero("MlpPolicy", "CartPole-v1", num_simulations=2, **settings)
    temperature = model.self_play_kwargs["temperature"]
    assert [temperature(progress) for progress in (1.0, 0.5, 0.0)] == yml_schedule_values(
        "self_play_kwargs", "temperature", "lin_1.0"
    )
    assert model.self_play_kwargs["sampling_moves"] == kept_sampling_moves


def test_grouped_lin_schedules_are_converted_at_load_too(tmp_path):
    """The Zoo's ``-i`` hands the same ``-params`` to ``load``."""
    rlzoo.ZooMuZero("MlpPolicy", "CartPole-v1", num_simulations=2).save(tmp_path / "agent")
    loaded = rlzoo.ZooMuZero.load(tmp_path / "agent", **zoo_params("self_play_kwargs.temperature:'lin_0.5'"))
    temperature = loaded.self_play_kwargs["temperature"]
    assert [temperature(progress) for progress in (1.0, 0.5, 0.0)] == yml_schedule_values(
        "self_play_kwargs", "temperature", "lin_0.5"
    )


def test_the_zoo_plays_go9x9_with_the_pass_rule_of_the_go9x9_suite():
    """The id alone has no pass rule; the entry's env_kwargs give the Zoo's envs the suite's rule,
    and the suite's MuZero settings (its board envs come from the task) do not take them."""
    import gymnasium as gym

    import wrappers  # noqa: F401 (registers the BoardGame ids)
    from benchmarks.harness.suites import get_suite
    from benchmarks.harness.tasks import algo_config
    from wrappers.pass_rule import PassWhenSettled

    (task,) = get_suite("go9x9").tasks
    env_kwargs = rlzoo.hyperparams["BoardGame/Go9x9-v0"]["env_kwargs"]
    assert env_kwargs == {"pass_when_settled": task.game_kwargs["pass_when_settled"]}
    env = gym.make("BoardGame/Go9x9-v0", **env_kwargs)
    layers = [env]
    while hasattr(layers[-1], "env"):
        layers.append(layers[-1].env)
    (rule,) = [layer for layer in layers if isinstance(layer, PassWhenSettled)]
    assert rule.max_moves == 162
    assert "env_kwargs" not in algo_config("muzero", task).kwargs


def test_the_zoo_trains_muzero_on_minatar_with_its_entry(tmp_path):
    """--gym-packages wrappers.minatar registers the ids, and the entry's env_wrapper gives MuZero
    the (C, 10, 10) uint8 grids of the minatar suite, whose settings the wrapper does not change."""
    pytest.importorskip("minatar")
    from benchmarks.harness.suites import get_suite
    from benchmarks.harness.tasks import algo_config

    arguments = ["--algo", "muzero", "--env", "MinAtar/Breakout-v1", "--gym-packages", "wrappers.minatar"]
    tiny = ["n_envs:1", "num_simulations:2", "batch_size:8", "learning_starts:16"]
    rlzoo.main(["train", *arguments, "-n", "32", "--eval-freq", "-1", "-f", str(tmp_path), "-params", *tiny])
    model = MuZero.load(tmp_path / "muzero" / "MinAtar-Breakout-v1_1" / "MinAtar-Breakout-v1.zip")
    assert model.observation_space.shape == (4, 10, 10) and model.num_timesteps == 32
    task = next(task for task in get_suite("minatar").tasks if task.env_id == "MinAtar/Breakout-v1")
    assert "env_wrapper" not in algo_config("muzero", task).kwargs

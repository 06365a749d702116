"""MuZero registered with the RL Zoo: its train and enjoy scripts run MuZero from muzero.yml."""

import pytest

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

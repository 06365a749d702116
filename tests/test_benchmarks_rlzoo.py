"""MuZero registered with the RL Zoo: its train and enjoy scripts run MuZero from muzero.yml."""

import pytest

pytest.importorskip("rl_zoo3")

from benchmarks.harness import rlzoo


def test_register_adds_muzero_to_the_zoo():
    from rl_zoo3 import ALGOS

    from muzero_agents import MuZero

    rlzoo.register()
    assert ALGOS["muzero"] is MuZero


def test_muzero_gets_its_table_unless_a_conf_file_is_given():
    assert rlzoo._with_muzero_config(["--algo", "muzero"])[-2:] == ["--conf-file", "benchmarks.harness.rlzoo"]
    assert rlzoo._with_muzero_config(["--algo", "muzero", "-conf", "x.yml"]) == [
        "--algo",
        "muzero",
        "-conf",
        "x.yml",
    ]
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

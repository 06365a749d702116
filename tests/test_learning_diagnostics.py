"""benchmarks.diagnostics.learning_diagnostics: a short run logs the diagnostics, and plots them."""

from __future__ import annotations

import csv

import pytest

from benchmarks.diagnostics import learning_diagnostics


def test_run_logs_diagnostics_and_evaluations_then_plots(tmp_path):
    out = tmp_path / "cartpole"
    learning_diagnostics.main(
        ["run", "--task", "CartPole-v1", "--out", str(out), "--max-steps", "600",
         "--muzero-kwargs", '{"num_simulations": 4}']
    )  # fmt: skip
    with open(out / "progress.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows, "the logger wrote no row"
    for column in ("train/value_error_k0", "train/policy_entropy", "search/policy_kl", "train/priority_mean"):
        assert any(row.get(column) for row in rows), column
    with open(out / "evaluations.csv", newline="") as file:
        evaluations = list(csv.DictReader(file))
    assert [int(row["env_steps"]) for row in evaluations][-1] >= 600
    figure = tmp_path / "figure.png"
    learning_diagnostics.main(["plot", str(out), str(out), "--labels", "a", "b", "--out", str(figure)])
    assert figure.stat().st_size > 10_000


def test_unknown_task_and_label_mismatch_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="in no suite"):
        learning_diagnostics.main(["run", "--task", "NoSuchEnv-v0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="one label per run"):
        learning_diagnostics.main(
            ["plot", str(tmp_path), "--labels", "a", "b", "--out", str(tmp_path / "x.png")]
        )

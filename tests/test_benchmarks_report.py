"""The report: summaries from hand-made results, report.md, and the PNG curves."""

import math

import pytest

from benchmarks.harness.report import aggregate, comparable_envs, summarize, write_report
from benchmarks.harness.runner import collect_results, save_run

pytest.importorskip("matplotlib")


def _record(algo, env, seed, curve, budget=300):
    rows = [
        {
            "algo": algo,
            "env": env,
            "seed": seed,
            "env_steps": steps,
            "wall_s": wall,
            "eval_mean": mean,
            "eval_std": 0.0,
        }
        for steps, wall, mean in curve
    ]
    return {
        "algo": algo,
        "task": env,
        "seed": seed,
        "rows": rows,
        "env_steps": budget,
        "train_s": curve[-1][1],
        "eval_s": 1.0,
        "total_s": 2.0,
        "protocol": {"budget": budget, "eval_every": 100, "eval_episodes": 5, "evaluations": [env]},
        "settings": {"source": "test", "n_envs": 1, "policy": "MlpPolicy"},
    }


CURVES = {  # CartPole-v1's threshold is 475
    ("ppo", 0): [(100, 1.0, 100.0), (200, 2.0, 480.0), (300, 3.0, 500.0)],
    ("ppo", 1): [(100, 1.5, 200.0), (200, 2.5, 300.0), (300, 3.5, 490.0)],
    ("ppo", 2): [(100, 1.2, 50.0), (200, 2.2, 60.0), (300, 3.2, 70.0)],
    ("muzero", 0): [(100, 5.0, 20.0), (200, 10.0, 30.0), (300, 15.0, 40.0)],
}


def _results(tmp_path):
    for (algo, seed), curve in CURVES.items():
        save_run(tmp_path, _record(algo, "CartPole-v1", seed, curve))
    save_run(tmp_path, _record("ppo", "Acrobot-v1", 0, [(100, 1.0, -500.0), (300, 2.0, -100.0)]))
    collect_results(tmp_path)
    return tmp_path


def test_summaries_match_hand_computed_values(tmp_path):
    from benchmarks.harness.runner import read_csv

    summaries = {(s.env, s.algo): s for s in summarize(read_csv(_results(tmp_path) / "results.csv"))}
    ppo = summaries[("CartPole-v1", "ppo")]
    assert ppo.finals == [500.0, 490.0, 70.0]
    assert ppo.iqm == pytest.approx(70 / 6 + 2 / 3 * 490 + 500 / 6)  # IQM weights 1/6, 2/3, 1/6
    assert ppo.ci[0] <= ppo.iqm <= ppo.ci[1]
    assert ppo.steps_to == [200.0, 300.0, math.inf] and ppo.seconds_to == [2.0, 3.5, math.inf]
    assert ppo.reached == 2
    assert summaries[("CartPole-v1", "muzero")].reached == 0


def test_aggregate_normalizes_per_env_over_the_envs_every_algorithm_ran(tmp_path):
    from benchmarks.harness.runner import read_csv

    summaries = summarize(read_csv(_results(tmp_path) / "results.csv"))
    assert comparable_envs(summaries) == ["CartPole-v1"]  # muzero has no Acrobot run
    table = {row.algo: row for row in aggregate(summaries)}
    assert (table["ppo"].envs, table["ppo"].runs) == (1, 3)
    assert table["ppo"].ci[0] <= table["ppo"].iqm <= table["ppo"].ci[1]
    # muzero: one CartPole run, final 40 -> (40 - 23.7) / (500 - 23.7); one run gives no interval
    assert table["muzero"].iqm == pytest.approx((40 - 23.7) / (500 - 23.7))
    assert table["muzero"].ci is None
    both = {row.algo: row for row in aggregate(summaries, ["Acrobot-v1", "CartPole-v1"])}
    assert (both["ppo"].envs, both["ppo"].runs) == (2, 4)


def test_report_and_plots_are_written(tmp_path):
    path, table = write_report(_results(tmp_path))
    text = path.read_text()
    for needle in (
        "## CartPole-v1",
        "## Acrobot-v1",
        "## All envs, normalized",
        "threshold 475",
        "300 (2/3)",
        "not reached (0/1)",
        "40.00 [no interval: 1 run]",
        "spans this budget",
        "Left out, as not every algorithm ran them: Acrobot-v1 (no run of muzero).",
        "With 1-3 seeds they are coarse",
        "plots/CartPole-v1_steps.png",
        "plots/CartPole-v1_wallclock.png",
    ):
        assert needle in text, needle
    for name in ("CartPole-v1_steps.png", "CartPole-v1_wallclock.png", "Acrobot-v1_steps.png"):
        png = tmp_path / "plots" / name
        assert png.stat().st_size > 1_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "CartPole-v1" in table and "muzero" in table and "ppo" in table


def test_empty_results_are_refused(tmp_path):
    collect_results(tmp_path)
    with pytest.raises(ValueError, match="no results"):
        write_report(tmp_path)


def test_runs_under_different_protocols_are_flagged(tmp_path):
    _results(tmp_path)
    save_run(tmp_path, _record("dqn", "CartPole-v1", 0, [(100, 1.0, 20.0), (600, 2.0, 30.0)], budget=600))
    collect_results(tmp_path)
    text = write_report(tmp_path)[0].read_text()
    warning = next(line for line in text.splitlines() if "different protocols" in line)
    assert "2 different protocols" in warning and "300" in warning and "600" in warning

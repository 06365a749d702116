"""Why a MuZero run learns or fails: its evaluations beside the learner's diagnostics, as a figure.

    python -m benchmarks.diagnostics.learning_diagnostics run --task Acrobot-v1 --out DIR [--seed 0]
        [--max-steps N] [--muzero-kwargs JSON]
    python -m benchmarks.diagnostics.learning_diagnostics plot DIR [DIR ...] --out FIGURE.png
        [--labels A B ...]

``run`` trains MuZero on a task of the harness's suites (``benchmarks/harness/suites.py``) with
its ``benchmarks/muzero.yml`` entry, changed by ``--muzero-kwargs`` (grouped settings merge key
by key), under the suite's evaluation protocol. It writes the SB3 logger's csv
(``DIR/progress.csv``: every ``train/*`` and ``search/*`` key, README "Logger and TensorBoard")
and the evaluations (``DIR/evaluations.csv``).

``plot`` draws one column of panels per diagnostic, one line per run directory, against env
steps: the evaluation return; the value error at the first and the last unroll step; the reward
error at the first unroll step; the predicted policy's entropy and the search's KL divergence
from the prior; the hidden state's spread; the value targets' spread; the mean priority. A run
that learns and then collapses shows which prediction went wrong first.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

PANELS = (  # (title, csv column or "eval", log scale)
    ("evaluation return", "eval", False),
    ("value error, k=0", "train/value_error_k0", True),
    ("value error, last k", "train/value_error_last", True),
    ("reward error, k=1", "train/reward_error_k1", True),
    ("policy entropy", "train/policy_entropy", False),
    ("search KL to prior", "search/policy_kl", False),
    ("hidden state std", "train/hidden_std_last", False),
    ("value target std", "train/value_target_std", False),
    ("mean priority", "train/priority_mean", True),
)


def find_task(name: str):
    """The suites' task called ``name``."""
    from benchmarks.harness.suites import SUITES

    for suite in SUITES.values():
        for task in suite.tasks:
            if task.name == name:
                return task
    names = sorted({task.name for suite in SUITES.values() for task in suite.tasks})
    raise SystemExit(f"--task {name!r} is in no suite; choose one of {names}")


def run(task_name: str, out: Path, seed: int, max_steps: int | None, overrides: dict[str, Any]) -> None:
    """Train one MuZero run, logging the diagnostics to ``out/progress.csv``."""
    import torch
    from stable_baselines3.common.logger import configure

    from benchmarks.harness.evaluation import EvalHistory, PeriodicEval, StepBudget
    from benchmarks.harness.tasks import build_run

    torch.set_num_threads(1)
    task = find_task(task_name).sliced(max_steps)
    task = replace(
        task, overrides={**task.overrides, "muzero": {**task.overrides.get("muzero", {}), **overrides}}
    )
    built = build_run("muzero", task, seed, device="cpu")
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps({"task": task_name, "seed": seed, "overrides": overrides}))
    built.model.set_logger(configure(str(out), ["csv"]))
    history = EvalHistory()
    evaluator = PeriodicEval(
        built.eval_envs, task.eval_every, task.eval_episodes, history=history, final_eval=True
    )
    built.model.learn(task.budget, callback=[evaluator, StepBudget(task.budget)], log_interval=1)
    with open(out / "evaluations.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["env_steps", "eval_mean", "eval_std"])
        writer.writerows((r.env_steps, r.eval_mean, r.eval_std) for r in history.records)
    print(f"{task_name} seed {seed}: {[round(r.eval_mean, 1) for r in history.records]}")


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def _series(run_dir: Path, column: str) -> tuple[list[float], list[float]]:
    """(env steps, values) of one panel's column in a run directory."""
    if column == "eval":
        if not (run_dir / "evaluations.csv").exists():  # a run stopped before its end
            return [], []
        rows = _read_rows(run_dir / "evaluations.csv")
        return [float(r["env_steps"]) for r in rows], [float(r["eval_mean"]) for r in rows]
    rows = _read_rows(run_dir / "progress.csv")
    if column == "train/value_error_last":
        errors = sorted(key for key in rows[0] if key.startswith("train/value_error_k"))
        column = max(errors, key=lambda key: int(key.rsplit("k", 1)[1])) if errors else column
    points = [(r["time/total_timesteps"], r.get(column, "")) for r in rows]
    kept = [(float(step), float(value)) for step, value in points if step and value]
    return [step for step, _ in kept], [value for _, value in kept]


def plot(run_dirs: list[Path], labels: list[str], out: Path) -> None:
    """One panel per diagnostic, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = -(-len(PANELS) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.8 * rows), squeeze=False)
    for axis, (title, column, log_scale) in zip(axes.flat, PANELS):
        for run_dir, label in zip(run_dirs, labels):
            steps, values = _series(run_dir, column)
            axis.plot(steps, values, label=label, linewidth=1.2)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("env steps", fontsize=8)
        if log_scale:
            axis.set_yscale("log")
        axis.tick_params(labelsize=8)
    handles, names = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, names, loc="lower center", ncol=len(names), fontsize=9)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("run", help="train one run, logging its diagnostics")
    train.add_argument("--task", required=True, help="a task name of the harness's suites")
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-steps", type=int, default=None, help="cut the task's budget")
    train.add_argument("--muzero-kwargs", type=json.loads, default={}, help="JSON object of settings")
    figure = commands.add_parser("plot", help="draw the diagnostics of one or more runs")
    figure.add_argument("runs", type=Path, nargs="+")
    figure.add_argument("--out", type=Path, required=True)
    figure.add_argument("--labels", nargs="+", default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "run":
        run(args.task, args.out, args.seed, args.max_steps, args.muzero_kwargs)
    else:
        labels = args.labels or [path.name for path in args.runs]
        if len(labels) != len(args.runs):
            raise SystemExit(f"--labels needs one label per run directory ({len(args.runs)})")
        plot(args.runs, labels, args.out)


if __name__ == "__main__":
    main()

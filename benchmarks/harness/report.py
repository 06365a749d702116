"""Turn a results folder into ``report.md``, PNG learning curves and the console table.

Per env and algorithm: the final return (the evaluation at the end of the budget) as the IQM
across seeds with a 95% stratified bootstrap interval, and the env steps and training seconds
until an evaluation first reached the env's threshold. Across envs: returns normalized between
a random policy (0) and the env's reference score (1), IQM over every (env, seed) run of the envs
that every algorithm ran, envs as strata.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import stats
from benchmarks.harness.runner import finished_runs, protocol_differences, read_csv
from benchmarks.harness.suites import Evaluation, find_evaluation

CONFIDENCE = 0.95
BOOTSTRAP_REPS = 2_000


@dataclass
class Summary:
    """One (env, algo) cell of the report."""

    env: str
    algo: str
    seeds: list[int]
    finals: list[float]
    iqm: float
    ci: tuple[float, float]
    threshold: float | None
    steps_to: list[float]  # per seed; inf where the threshold was never reached
    seconds_to: list[float]
    train_s: list[float]

    @property
    def reached(self) -> int:
        return sum(np.isfinite(self.steps_to))


def _by_run(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[int, list[dict[str, Any]]]]:
    """(env, algo) -> seed -> its evaluation rows in step order."""
    grouped: dict[tuple[str, str], dict[int, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[(row["env"], row["algo"])][row["seed"]].append(row)
    for runs in grouped.values():
        for curve in runs.values():
            curve.sort(key=lambda r: r["env_steps"])
    return grouped


def summarize(rows: list[dict[str, Any]]) -> list[Summary]:
    """One summary per (env, algo), envs in name order, algorithms in name order."""
    summaries = []
    for (env, algo), runs in sorted(_by_run(rows).items()):
        evaluation = find_evaluation(env)
        threshold = evaluation.threshold if evaluation else None
        seeds = sorted(runs)
        finals = [runs[s][-1]["eval_mean"] for s in seeds]
        point, low, high = stats.point_and_interval([finals], stats.iqm, CONFIDENCE, BOOTSTRAP_REPS)
        steps_to, seconds_to = [], []
        for seed in seeds:
            hit = next((r for r in runs[seed] if threshold is not None and r["eval_mean"] >= threshold), None)
            steps_to.append(float(hit["env_steps"]) if hit else float("inf"))
            seconds_to.append(float(hit["wall_s"]) if hit else float("inf"))
        summaries.append(
            Summary(
                env,
                algo,
                seeds,
                finals,
                point,
                (low, high),
                threshold,
                steps_to,
                seconds_to,
                [runs[s][-1]["wall_s"] for s in seeds],
            )
        )
    return summaries


@dataclass
class Aggregate:
    """One algorithm's normalized final returns over a set of envs."""

    algo: str
    envs: int
    runs: int
    iqm: float
    ci: tuple[float, float] | None  # None where an env has a single run: withheld, as one run shows no spread


def _algos_per_scored_env(summaries: list[Summary]) -> dict[str, set[str]]:
    """Env with reference scores -> the algorithms that ran it."""
    ran: dict[str, set[str]] = defaultdict(set)
    for summary in summaries:
        if find_evaluation(summary.env) is not None:
            ran[summary.env].add(summary.algo)
    return ran


def comparable_envs(summaries: list[Summary]) -> list[str]:
    """The envs with reference scores that every algorithm in ``summaries`` ran, in name order."""
    ran = _algos_per_scored_env(summaries)
    algos = set().union(*ran.values())
    return sorted(env for env, by in ran.items() if by == algos)


def aggregate(summaries: list[Summary], envs: list[str] | None = None) -> list[Aggregate]:
    """Per algo, normalized final IQM over ``envs`` (default: :func:`comparable_envs`), envs as strata.

    Only envs every algorithm ran are comparable: an algorithm left out of a hard env would
    otherwise look better than one that ran it.
    """
    envs = comparable_envs(summaries) if envs is None else envs
    per_algo: dict[str, list[np.ndarray]] = defaultdict(list)
    for summary in summaries:
        evaluation = find_evaluation(summary.env)
        if summary.env in envs and evaluation is not None:
            per_algo[summary.algo].append(stats.normalize(summary.finals, evaluation.low, evaluation.high))
    table = []
    for algo, strata in sorted(per_algo.items()):
        point, low, high = stats.point_and_interval(strata, stats.iqm, CONFIDENCE, BOOTSTRAP_REPS)
        ci = (low, high) if min(len(s) for s in strata) > 1 else None
        table.append(Aggregate(algo, len(strata), sum(len(s) for s in strata), point, ci))
    return table


# ---------------------------------------------------------------------------------- formatting


def _median_to(values: list[float], reached: int, total: int, fmt: str) -> str:
    median = statistics.median(values)  # unreached seeds count as infinitely late
    shown = "not reached" if not np.isfinite(median) else format(median, fmt)
    return f"{shown} ({reached}/{total})"


def _iqm_cell(point: float, ci: tuple[float, float] | None, single: str = "1 run") -> str:
    if ci is None:  # one run per stratum: every bootstrap resample is that run
        return f"{point:.2f} [no interval: {single}]"
    return f"{point:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def _cells(summary: Summary) -> list[str]:
    n = len(summary.seeds)
    return [
        summary.algo,
        str(n),
        _iqm_cell(summary.iqm, summary.ci if n > 1 else None),
        _median_to(summary.steps_to, summary.reached, n, ",.0f") if summary.threshold is not None else "-",
        _median_to(summary.seconds_to, summary.reached, n, ".1f") if summary.threshold is not None else "-",
        f"{statistics.median(summary.train_s):.1f}",
    ]


HEADER = [
    "algo",
    "seeds",
    "final return IQM [95% CI]",
    "env steps to threshold (median, reached)",
    "train s to threshold (median)",
    "train s total (median)",
]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(summaries: list[Summary]) -> str:
    """The console table: one line per (env, algo)."""
    header = ["env", "algo", "seeds", "final IQM [95% CI]", "steps to thr.", "train s to thr.", "train s"]
    body = [[s.env, *_cells(s)] for s in summaries]
    widths = [max(len(str(row[i])) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- plots


def _curves(runs: dict[int, list[dict[str, Any]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Seeds aligned by evaluation index: median steps, median train s, IQM return, and every seed's returns."""
    length = min(len(curve) for curve in runs.values())

    def grid(key: str) -> np.ndarray:
        return np.array([[r[key] for r in curve[:length]] for curve in runs.values()])

    steps, wall, means = grid("env_steps"), grid("wall_s"), grid("eval_mean")
    return np.median(steps, axis=0), np.median(wall, axis=0), np.asarray(stats.iqm(means, axis=0)), means


def plot_env(rows: list[dict[str, Any]], env: str, folder: Path) -> list[Path]:
    """Two PNGs for ``env``: IQM return across seeds (band: min to max) vs env steps and vs train seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    evaluation = find_evaluation(env)
    grouped = {algo: runs for (name, algo), runs in sorted(_by_run(rows).items()) if name == env}
    paths = []
    for axis_key, label, suffix in (
        ("steps", "env steps", "steps"),
        ("wall", "training seconds (evaluation excluded)", "wallclock"),
    ):
        figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=100)
        for algo, runs in grouped.items():
            steps, wall, center, means = _curves(runs)
            x = steps if axis_key == "steps" else wall
            (line,) = axes.plot(x, center, marker="o", markersize=3, label=f"{algo} ({len(runs)} seeds)")
            axes.fill_between(x, means.min(axis=0), means.max(axis=0), color=line.get_color(), alpha=0.2)
        if evaluation is not None:
            axes.axhline(evaluation.threshold, color="grey", linestyle="--", linewidth=1, label="threshold")
        if axis_key == "wall":  # algorithms differ by orders of magnitude in speed
            axes.set_xscale("log")
        axes.set_xlabel(label + (", log scale" if axis_key == "wall" else ""))
        axes.set_ylabel("eval return (IQM over seeds)")
        axes.set_title(env)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        figure.tight_layout()
        path = folder / f"{_file_name(env)}_{suffix}.png"
        figure.savefig(path)
        plt.close(figure)
        paths.append(path)
    return paths


def _file_name(env: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in env)


# ---------------------------------------------------------------------------------- report


def _protocols(out: Path) -> dict[str, list[dict[str, Any]]]:
    """env name -> the distinct protocols its runs used (from the runs' JSON records)."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in finished_runs(out).values():
        for env in record["protocol"]["evaluations"]:
            if record["protocol"] not in found[env]:
                found[env].append(record["protocol"])
    return found


def _settings(out: Path) -> list[list[str]]:
    seen: dict[tuple[str, str], str] = {}
    for record in finished_runs(out).values():
        settings = record.get("settings", {})
        seen[(record["task"], record["algo"])] = (
            f"{settings.get('source', '?')}; {settings.get('n_envs', '?')} envs, {settings.get('policy', '?')}"
        )
    return [[task, algo, source] for (task, algo), source in sorted(seen.items())]


def _protocol_line(protocols: list[dict[str, Any]], evaluation: Evaluation | None) -> list[str]:
    protocol = protocols[0]
    line = (
        f"Budget {protocol['budget']:,} env steps; evaluation every {protocol['eval_every']:,} "
        f"steps on {protocol['eval_episodes']} deterministic episodes"
        + (
            ""
            if protocol.get("eval_reseeded")
            else " (eval envs seeded once: each evaluation played new episodes)"
        )
    )
    if evaluation:
        line += (
            f"; threshold {evaluation.threshold:g}; normalized so that {evaluation.low:g} (a random "
            f"policy) scores 0 and {evaluation.high:g} (the reference score) scores 1."
        )
    lines = [line + ("" if evaluation else "."), ""]
    if len(protocols) > 1:
        lines += [
            f"**Warning:** these runs used {len(protocols)} different protocols "
            f"({protocol_differences(protocols)}; the line above is the first): their numbers are not "
            "comparable. Rerun them into separate folders.",
            "",
        ]
    return lines


def _env_section(
    env: str,
    summaries: list[Summary],
    protocols: list[dict[str, Any]],
    evaluation: Evaluation | None,
    plots: list[Path],
    out: Path,
) -> list[str]:
    lines = [f"## {env}", ""]
    if protocols:
        lines += _protocol_line(protocols, evaluation)
    lines += [markdown_table(HEADER, [_cells(s) for s in summaries]), ""]
    captions = {"steps": "return vs env steps", "wallclock": "return vs training seconds"}
    lines += [
        " ".join(
            f"![{env}: {captions.get(p.stem.rsplit('_', 1)[-1], p.stem)}]({p.relative_to(out).as_posix()})"
            for p in plots
        ),
        "",
    ]
    return lines


AGGREGATE_NOTE = (
    "Final returns rescaled per env so that a uniformly random policy scores 0 and the env's "
    "reference score scores 1 (each env's section names both: the threshold, the best possible "
    "score or a published one; board games: a certain loss scores 0, a certain win 1); IQM over "
    "all (env, seed) runs of the envs every algorithm ran, stratified bootstrap with the envs as "
    "strata. Every run counts once, so an env where an algorithm has more seeds weighs more in its IQM."
)
PROTOCOL_NOTE = (
    "Every algorithm gets the same env-step budget for an env and the same evaluation: every E env "
    "steps, N deterministic episodes on separate eval envs seeded 10,000 + the run's seed before "
    "each evaluation, so that every evaluation plays the same episodes (runs of earlier versions "
    "seeded them once, and their env's section says so; the training envs use the run's seed); board games pass legal-action masks to every model. "
    "Training seconds exclude evaluation. The final return is the evaluation at the end of the budget. "
    "IQM: interquartile mean across seeds, the mean of the scores' quantile function over [0.25, 0.75] "
    "(the 25% trimmed mean when 4 divides the number of seeds; 3 seeds weigh 1/6, 2/3, 1/6, where "
    "rliable's trimmed mean takes the plain mean); intervals: 95% stratified bootstrap percentile "
    f"intervals ({BOOTSTRAP_REPS:,} resamples), after Agarwal et al. (2021). With {{seeds}} seeds they "
    "are coarse: read them as the spread of a handful of runs, not as a precise error bar. Steps and "
    "seconds to the threshold: the first evaluation at or above it, even where later ones fall below; "
    "the median counts seeds that never reached it as infinitely late. Curves: IQM over seeds, the band "
    "spans the lowest to the highest seed."
)


HYPERPARAMETERS_NOTE = (
    "Each algorithm's settings come from the file its source names (the RL Zoo's hyperparameter "
    "files, or benchmarks/muzero.yml), with the suite's budget in place of their n_timesteps: what "
    "they define as a share of the run (linear schedules lin_X, exploration_fraction) spans this "
    "budget."
)


def _seed_counts(summaries: list[Summary]) -> str:
    counts = sorted({len(s.seeds) for s in summaries})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def _aggregate_section(summaries: list[Summary]) -> list[str]:
    """The normalized table over the envs every algorithm ran, naming the envs it leaves out."""
    ran = _algos_per_scored_env(summaries)
    if len(ran) < 2:
        return []
    envs, algos = comparable_envs(summaries), set().union(*ran.values())
    lines = ["## All envs, normalized", "", AGGREGATE_NOTE, ""]
    left_out = [env for env in sorted(ran) if env not in envs]
    if left_out:
        named = "; ".join(f"{env} (no run of {', '.join(sorted(algos - ran[env]))})" for env in left_out)
        lines += [f"Left out, as not every algorithm ran them: {named}.", ""]
    if not envs:
        return lines
    rows = [
        [a.algo, str(a.envs), str(a.runs), _iqm_cell(a.iqm, a.ci, "an env has 1 run")]
        for a in aggregate(summaries, envs)
    ]
    return lines + [markdown_table(["algo", "envs", "runs", "normalized final IQM [95% CI]"], rows), ""]


def write_report(out: Path, title: str | None = None) -> tuple[Path, str]:
    """Write ``out/report.md`` and ``out/plots/*.png`` from ``out/results.csv``; returns (path, console table)."""
    rows = read_csv(out / "results.csv")
    if not rows:
        raise ValueError(f"{out / 'results.csv'} has no results yet: run a suite into {out} first.")
    summaries = summarize(rows)
    protocols = _protocols(out)
    lines = [f"# {title or 'Benchmark report'}", "", PROTOCOL_NOTE.format(seeds=_seed_counts(summaries)), ""]
    plot_error = None
    for env in sorted({s.env for s in summaries}):
        plots: list[Path] = []
        if plot_error is None:
            try:
                plots = plot_env(rows, env, out / "plots")
            except ImportError as error:
                plot_error = (
                    f"Plots skipped: matplotlib is missing ({error}); pip install 'muzero-agents[bench]'."
                )
        lines += _env_section(
            env,
            [s for s in summaries if s.env == env],
            protocols.get(env, []),
            find_evaluation(env),
            plots,
            out,
        )
    lines += _aggregate_section(summaries)
    settings = _settings(out)
    if settings:
        lines += [
            "## Hyperparameters",
            "",
            HYPERPARAMETERS_NOTE,
            "",
            markdown_table(["task", "algo", "source"], settings),
            "",
        ]
    if plot_error:
        lines += [plot_error, ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    table = text_table(summaries)
    if plot_error:
        table += "\n" + plot_error
    return path, table

"""Benchmark MuZero against SB3's algorithms: ``python -m benchmarks run --suite smoke``.

    python -m benchmarks list
    python -m benchmarks run --suite NAME [--seeds N] [--algos ...] [--envs ...] [--out DIR] [--jobs J]
                             [--max-steps N] [--eval-every N] [--eval-episodes N] [--device cpu|cuda|auto]
    python -m benchmarks report DIR

``run`` trains what is not yet finished in DIR (default: benchmarks/results/<suite>), then writes
DIR/results.csv, DIR/report.md and DIR/plots/*.png and prints the table. Suites are declared in
benchmarks/harness/suites.py. Run from the repository root (the benchmarks are not installed).
Ctrl-C or SIGTERM ends the run and its worker processes; the finished runs stay saved, each
unfinished one keeps a checkpoint from its last evaluation, and the same command resumes from
them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.harness.suites import SUITES, get_suite

DEFAULT_OUT = Path("benchmarks") / "results"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the suites")
    run = commands.add_parser("run", help="run a suite (resumable) and write its report")
    run.add_argument("--suite", required=True, choices=sorted(SUITES))
    run.add_argument("--seeds", type=_positive, help="number of seeds, 0..N-1 (default: the suite's)")
    run.add_argument("--algos", nargs="+", help="a subset of the suite's algorithms")
    run.add_argument("--envs", nargs="+", help="a subset of the suite's envs (task names)")
    run.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/<suite>)")
    run.add_argument(
        "--jobs", type=_positive, help="parallel processes, one torch thread each (default: the suite's)"
    )
    run.add_argument(
        "--max-steps", type=_positive, help="cap every budget (a short slice, e.g. atari100k on a CPU)"
    )
    run.add_argument("--eval-every", type=_positive, help="evaluate every N env steps instead of the suite's")
    run.add_argument("--eval-episodes", type=_positive, help="episodes per evaluation instead of the suite's")
    run.add_argument("--device", default="auto", help="torch device for the models (default: auto)")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    report = commands.add_parser("report", help="rewrite report.md and plots from a results folder")
    report.add_argument("out", type=Path)
    return parser


def list_suites() -> None:
    for suite in SUITES.values():
        envs = ", ".join(task.name for task in suite.tasks)
        print(
            f"{suite.name:<11} {suite.description}\n{'':<11} envs: {envs}; algos: {', '.join(suite.algos)}; "
            f"seeds: {suite.seeds}"
        )


def report(out: Path) -> None:
    """Rebuild ``out``'s results.csv, report.md and plots from its finished runs; print the table."""
    from benchmarks.harness.report import write_report
    from benchmarks.harness.runner import collect_results

    if not (out / "runs").is_dir():
        raise SystemExit(f"error: {out} has no runs/ folder: run a suite with --out {out} first")
    collect_results(out)  # the finished runs as they are now (a suite may still be running)
    title = f"Benchmark report: {out.name} suite" if out.name in SUITES else None  # as `run` titles it
    path, table = write_report(out, title=title)
    print(table)
    print(f"\nReport: {path}")


def run(args: argparse.Namespace) -> None:
    """Train what is missing of the suite, then write and print its report."""
    from benchmarks.harness.report import write_report
    from benchmarks.harness.runner import SetupError, run_suite

    suite = get_suite(args.suite)
    out = args.out or DEFAULT_OUT / suite.name
    started = time.perf_counter()
    try:
        run_suite(
            suite,
            out,
            seeds=args.seeds,
            algos=args.algos,
            tasks=args.envs,
            n_jobs=args.jobs,
            max_steps=args.max_steps,
            eval_every=args.eval_every,
            eval_episodes=args.eval_episodes,
            device=args.device,
            progress=False if args.no_progress else None,
        )
    except SetupError as error:
        raise SystemExit(f"error: {error}") from None
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: the finished runs and the checkpoints of the others are saved in {out}; "
            "the same command resumes",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    path, table = write_report(out, title=f"Benchmark report: {suite.name} suite")
    print()
    print(table)
    print(
        f"\nSuite {suite.name} done in {time.perf_counter() - started:.0f} s. "
        f"Report: {path}; plots: {out / 'plots'}; results: {out / 'results.csv'}"
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        list_suites()
    elif args.command == "report":
        report(args.out)
    else:
        run(args)


if __name__ == "__main__":
    main()

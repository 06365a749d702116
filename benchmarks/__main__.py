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
them (exit status 130 after Ctrl-C, 143 after SIGTERM).
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

from benchmarks.harness.suites import SUITES, Suite, get_suite

DEFAULT_OUT = Path("benchmarks") / "results"
INTERRUPTED = 130  # the exit status after Ctrl-C
TERMINATED = 128 + signal.SIGTERM  # 143, after SIGTERM (as while the worker pool is open)


def positive_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _device(text: str) -> str:
    """A torch device this machine has, or ``auto`` (checked before anything is trained)."""
    if text == "auto":
        return text
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device; use cpu, cuda, cuda:N or auto"
        ) from None
    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= cuda_devices:
        raise argparse.ArgumentTypeError(
            f"{text}: torch finds {cuda_devices} CUDA device(s) on this machine; use --device cpu or auto"
        )
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="show the suites")
    run = commands.add_parser("run", help="run a suite (resumable) and write its report")
    run.add_argument("--suite", required=True, choices=sorted(SUITES))
    run.add_argument("--seeds", type=positive_count, help="number of seeds, 0..N-1 (default: the suite's)")
    run.add_argument("--algos", nargs="+", help="a subset of the suite's algorithms")
    run.add_argument("--envs", nargs="+", help="a subset of the suite's envs (task names)")
    run.add_argument("--out", type=Path, help="results folder (default: benchmarks/results/<suite>)")
    run.add_argument(
        "--jobs", type=positive_count, help="parallel processes, one torch thread each (default: the suite's)"
    )
    run.add_argument(
        "--max-steps", type=positive_count, help="cap every budget (a short slice, e.g. atari100k on a CPU)"
    )
    run.add_argument(
        "--eval-every", type=positive_count, help="evaluate every N env steps instead of the suite's"
    )
    run.add_argument(
        "--eval-episodes", type=positive_count, help="episodes per evaluation instead of the suite's"
    )
    run.add_argument(
        "--device", type=_device, default="auto", help="torch device for the models (default: auto)"
    )
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

    problem = _nothing_to_report(out)
    if problem:
        raise SystemExit(f"error: {problem}")
    collect_results(out)  # the finished runs as they are now (a suite may still be running)
    path, table = write_report(out, title=_title(_suite_name(out)))
    print(table)
    print(f"\nReport: {path}")


def _nothing_to_report(out: Path) -> str | None:
    """Why ``out`` has no finished run to report, or None when it has one."""
    from benchmarks.harness.runner import PARTIAL, finished_runs

    if finished_runs(out):
        return None
    if (out / PARTIAL).is_dir() and any((out / PARTIAL).iterdir()):
        return (
            f"the runs in {out} are unfinished (their checkpoints are in {out / PARTIAL}); "
            f"rerun the same `python -m benchmarks run ... --out {out}` command to resume them"
        )
    if not (out / "runs").is_dir():
        return f"{out} has no runs/ folder: run a suite with --out {out} first"
    return f"{out / 'runs'} holds no finished run: run a suite with --out {out} first"


def _suite_name(out: Path) -> str | None:
    """The suite of ``out``'s report: the one its report.md names (``run`` wrote it), else the
    folder's name if a suite has it."""
    report_md = out / "report.md"
    first_line = report_md.read_text().split("\n", 1)[0] if report_md.is_file() else ""
    named = re.fullmatch(r"# Benchmark report: (\S+) suite", first_line)
    name = named.group(1) if named else out.name
    return name if name in SUITES else None


def _title(suite_name: str | None) -> str | None:
    return f"Benchmark report: {suite_name} suite" if suite_name else None


def run(args: argparse.Namespace) -> None:
    """Train what is missing of the suite, then write and print its report."""
    from benchmarks.harness.report import write_report
    from benchmarks.harness.runner import SetupError

    suite = get_suite(args.suite)
    out = args.out or DEFAULT_OUT / suite.name
    started = time.perf_counter()
    try:
        _train(args, suite, out)
    except SetupError as error:
        raise SystemExit(f"error: {error}") from None
    except KeyboardInterrupt:
        _stop_interrupted(out, INTERRUPTED)
    except SystemExit as stop:
        if stop.code != TERMINATED:
            raise
        _stop_interrupted(out, TERMINATED)
    path, table = write_report(out, title=_title(suite.name))
    print()
    print(table)
    print(
        f"\nSuite {suite.name} done in {time.perf_counter() - started:.0f} s. "
        f"Report: {path}; plots: {out / 'plots'}; results: {out / 'results.csv'}"
    )


def _train(args: argparse.Namespace, suite: Suite, out: Path) -> None:
    """``run_suite`` with the command line's choices; SIGTERM meanwhile raises SystemExit(TERMINATED)."""
    from benchmarks.harness.pool import sigterm_raises_system_exit
    from benchmarks.harness.runner import run_suite

    with sigterm_raises_system_exit():  # as inside the worker pool
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


def _stop_interrupted(out: Path, status: int) -> NoReturn:
    """Say where the interrupted run's work is kept, then exit with ``status``."""
    print(
        f"\ninterrupted: the finished runs and the checkpoints of the others are saved in {out}; "
        "the same command resumes",
        file=sys.stderr,
    )
    raise SystemExit(status) from None


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

"""Run a suite: every (algo, task, seed) once, in parallel processes if asked, resumable.

Each finished run leaves two files in ``OUT/runs/``: ``<run>.csv`` (its tidy evaluation rows)
and ``<run>.json`` (its protocol, settings, device and timings), written atomically, the JSON last.
A run whose JSON exists is finished and is skipped next time, provided it was run under the
same protocol (budget, evaluation schedule); a different protocol is refused rather than mixed.
``OUT/results.csv`` is rebuilt from every finished run in the folder after each invocation.
An unfinished run keeps a checkpoint after each evaluation in ``OUT/partial/<run>/`` and goes on
from it next time (``benchmarks.harness.checkpoints``), so a run longer than one sitting still
finishes.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from benchmarks.harness.checkpoints import (
    CheckpointAfterEval,
    RunState,
    read_state,
    restore,
    write_text_atomically,
)
from benchmarks.harness.pool import SPAWN, worker_pool
from benchmarks.harness.suites import Suite, Task

PARTIAL = "partial"  # OUT/partial/<run>/: the checkpoints of unfinished runs
CSV_COLUMNS = ("algo", "env", "seed", "env_steps", "wall_s", "eval_mean", "eval_std")


class SetupError(ValueError):
    """A request the runner refuses before training anything (the message names the fix)."""


@dataclass(frozen=True)
class Job:
    """One training run to do."""

    algo: str
    task: Task
    seed: int
    device: str = "auto"

    @property
    def run_id(self) -> str:
        return run_id(self.algo, self.task.name, self.seed)

    def protocol(self) -> dict[str, Any]:
        """What must match for an earlier run to count as this one."""
        return {
            "budget": self.task.budget,
            "eval_every": self.task.eval_every,
            "eval_episodes": self.task.eval_episodes,
            "evaluations": [evaluation.name for evaluation in self.task.evaluations],
            "eval_reseeded": True,  # each evaluation plays the same episodes (earlier runs: seeded once)
        }


# protocol fields that describe how evaluations were made without deciding which run is which: a
# run recorded without them is still the same run (kept, resumed), and the report marks it
DESCRIPTIVE_FIELDS = ("eval_reseeded",)


def same_run_protocol(recorded: dict[str, Any], asked: dict[str, Any]) -> bool:
    """Whether a run recorded under ``recorded`` is the run ``asked`` describes (budget and
    evaluation schedule), whatever their descriptive fields say."""

    def identity(protocol: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in protocol.items() if name not in DESCRIPTIVE_FIELDS}

    return identity(recorded) == identity(asked)


def run_id(algo: str, task_name: str, seed: int) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in task_name)
    return f"{algo}__{safe}__seed{seed}"


# ---------------------------------------------------------------------------------- one run


def run_job(
    job: Job, position: int = 0, progress: bool | None = None, partial: Path | None = None
) -> dict[str, Any]:
    """Train one run to its budget under the shared protocol; returns its rows and timings.

    With ``partial`` (the run's checkpoint folder) the run saves a checkpoint after each
    evaluation and resumes from the newest one made under the same protocol and settings
    (``benchmarks.harness.checkpoints``); the folder is deleted when the run's files are saved.
    """
    import torch

    from benchmarks.harness.tasks import build_run

    torch.set_num_threads(1)
    started = time.perf_counter()
    built = build_run(job.algo, job.task, job.seed, job.device)
    state = _resume(job, built, partial)
    evaluator = _train(job, built, state, partial, position, progress)
    for env in built.eval_envs.values():
        env.close()
    built.model.get_env().close()
    record = {
        "algo": job.algo,
        "task": job.task.name,
        "seed": job.seed,
        "protocol": state.protocol,  # a checkpoint's own, when the run resumed from one
        "settings": built.settings(),
        "device": str(built.model.device),  # what "auto" chose
        "env_steps": int(built.model.num_timesteps),
        "train_s": round(evaluator.train_seconds(), 3),
        "eval_s": round(evaluator.eval_seconds(), 3),
        "total_s": round(state.total_s + time.perf_counter() - started, 3),
        "rows": _rows(job, evaluator.history),
    }
    if state.resumed_at:
        record["resumed_at"] = state.resumed_at
        record["checkpoint_s"] = round(evaluator.excluded_seconds(), 3)
    return record


def _train(job: Job, built: Any, state: RunState, partial: Path | None, position: int, progress) -> Any:
    """``built.model.learn`` from ``state`` to the budget under the protocol's evaluations; returns
    the evaluation callback (its history and seconds)."""
    from benchmarks.harness.evaluation import PeriodicEval, StepBudget
    from benchmarks.harness.progress import RunProgress

    budget = job.task.budget
    evaluator = PeriodicEval(
        built.eval_envs,
        job.task.eval_every,
        n_episodes=job.task.eval_episodes,
        history=state.history(),
        use_masks=built.use_masks,
        final_eval=True,
        eval_seed=built.eval_seed,
    )
    evaluator.continue_from(state.env_steps, state.train_s, state.eval_s, state.checkpoint_s)
    label = f"{job.algo} {job.task.name} s{job.seed}"
    hidden = None if progress is None else not progress
    bar = RunProgress(label, budget, evaluator.history, position, disable=hidden)
    callbacks = [evaluator, StepBudget(budget), bar]
    if partial is not None:
        callbacks.append(CheckpointAfterEval(partial, state, evaluator, budget))
    built.model.learn(
        total_timesteps=budget - state.env_steps, callback=callbacks, reset_num_timesteps=state.env_steps == 0
    )
    return evaluator


def _rows(job: Job, history: Any) -> list[dict[str, Any]]:
    return [
        {
            "algo": job.algo,
            "env": r.label,
            "seed": job.seed,
            "env_steps": r.env_steps,
            "wall_s": round(r.wall_s, 3),
            "eval_mean": r.eval_mean,
            "eval_std": r.eval_std,
        }
        for r in history.records
    ]


def _resume(job: Job, built: Any, partial: Path | None) -> RunState:
    """The state the run starts from: a fresh one, or its newest checkpoint made under this
    protocol and these settings (``built.model`` is then replaced by the checkpointed model)."""
    fresh = RunState(job.protocol(), built.settings(), env_steps=0, train_s=0.0, eval_s=0.0, records=[])
    found = read_state(partial) if partial is not None else None
    if found is None:
        return fresh
    step_dir, state = found
    if not same_run_protocol(state.protocol, fresh.protocol) or state.settings != fresh.settings:
        tqdm.write(
            f"{job.run_id}: its checkpoint was made under another protocol or settings; starting over."
        )
        return fresh
    try:  # new random streams, not the first leg's again
        built.model = restore(step_dir, built.model, job.device, seed=job.seed + state.env_steps)
    except Exception as error:  # e.g. saved by another version of a library
        tqdm.write(f"{job.run_id}: its checkpoint could not be loaded ({error!r}); starting over.")
        return fresh
    state.resumed_at.append(state.env_steps)
    tqdm.write(f"{job.run_id}: resumed from its checkpoint at {state.env_steps:,} env steps.")
    return state


# ---------------------------------------------------------------------------------- files


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """The tidy CSV text (header + one row per evaluation)."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row[column] for column in CSV_COLUMNS})
    return buffer.getvalue()


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a tidy CSV with numbers parsed; checks the header."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ValueError(
                f"{path} is not a benchmark CSV: columns {reader.fieldnames}, expected {CSV_COLUMNS}"
            )
        return [
            {
                "algo": r["algo"],
                "env": r["env"],
                "seed": int(r["seed"]),
                "env_steps": int(r["env_steps"]),
                "wall_s": float(r["wall_s"]),
                "eval_mean": float(r["eval_mean"]),
                "eval_std": float(r["eval_std"]),
            }
            for r in reader
        ]


def partial_folder(out: Path, job: Job) -> Path:
    """Where an unfinished run keeps its checkpoints."""
    return out / PARTIAL / job.run_id


def save_run(out: Path, record: dict[str, Any]) -> None:
    """Write a finished run's CSV, then its JSON (the JSON marks it finished), then delete its
    checkpoints."""
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    name = run_id(record["algo"], record["task"], record["seed"])
    write_text_atomically(runs / f"{name}.csv", rows_to_csv(record["rows"]))
    meta = {key: value for key, value in record.items() if key != "rows"}
    write_text_atomically(runs / f"{name}.json", json.dumps(meta, indent=2, default=str) + "\n")
    shutil.rmtree(out / PARTIAL / name, ignore_errors=True)


def finished_runs(out: Path) -> dict[str, dict[str, Any]]:
    """run id -> its JSON record, for every finished run in ``out`` (JSON and CSV both present)."""
    runs = out / "runs"
    if not runs.is_dir():
        return {}
    found = {}
    for meta_path in sorted(runs.glob("*.json")):
        if meta_path.with_suffix(".csv").exists():
            found[meta_path.stem] = json.loads(meta_path.read_text())
    return found


def collect_results(out: Path) -> Path:
    """Rebuild ``out/results.csv`` from every finished run's CSV; returns its path."""
    rows = []
    for name in finished_runs(out):
        rows.extend(read_csv(out / "runs" / f"{name}.csv"))
    rows.sort(key=lambda r: (r["env"], r["algo"], r["seed"], r["env_steps"]))
    path = out / "results.csv"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, rows_to_csv(rows))
    return path


# ---------------------------------------------------------------------------------- scheduling


def plan(
    suite: Suite,
    seeds: int,
    algos: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    max_steps: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    device: str = "auto",
) -> list[Job]:
    """Every job of the suite, the slow algorithms first (parallel workers then finish together)."""
    algos = list(dict.fromkeys(algos or suite.algos))  # a name given twice runs once
    unknown = [a for a in algos if a not in suite.algos]
    if unknown:
        raise SetupError(
            f"Suite {suite.name} has no algorithm(s) {unknown}; its algorithms: {list(suite.algos)}"
        )
    names = [task.name for task in suite.tasks]
    if tasks:
        missing = [t for t in tasks if t not in names]
        if missing:
            raise SetupError(f"Suite {suite.name} has no env(s) {missing}; its envs: {names}")
    if seeds < 1:
        raise SetupError(f"--seeds must be >= 1, got {seeds}")
    chosen = [
        task.sliced(max_steps, eval_every, eval_episodes)
        for task in suite.tasks
        if not tasks or task.name in tasks
    ]
    jobs = [Job(algo, task, seed, device) for task in chosen for algo in algos for seed in range(seeds)]
    return sorted(jobs, key=lambda job: job.algo != "muzero")  # stable: MuZero's long runs start first


def pending(jobs: Sequence[Job], out: Path) -> list[Job]:
    """The jobs not yet finished in ``out``; refuses finished runs made under another protocol."""
    done = finished_runs(out)
    conflicts = [
        f"{job.run_id} (as recorded, as asked): "
        f"{protocol_differences([done[job.run_id].get('protocol', {}), job.protocol()])}"
        for job in jobs
        if job.run_id in done and not same_run_protocol(done[job.run_id].get("protocol", {}), job.protocol())
    ]
    if conflicts:
        raise SetupError(
            f"{out} holds runs made under another protocol (budget or evaluation schedule):\n  "
            + "\n  ".join(conflicts)
            + "\nUse another --out, repeat the earlier --max-steps/--eval-every/--eval-episodes, "
            "or delete those runs' files in runs/."
        )
    _warn_of_changed_settings([job for job in jobs if job.run_id in done], done, out)
    _warn_of_mixed_protocols([job for job in jobs if job.run_id not in done], done, out)
    for job in jobs:  # a run finished just before its checkpoints were deleted
        if job.run_id in done:
            shutil.rmtree(partial_folder(out, job), ignore_errors=True)
    return [job for job in jobs if job.run_id not in done]


def _warn_of_changed_settings(finished: Sequence[Job], done: dict[str, dict[str, Any]], out: Path) -> None:
    """Finished runs are kept as they are; say which of them the settings of now would run otherwise."""
    from benchmarks.harness.tasks import algo_config, run_settings

    changed = [
        job.run_id
        for job in finished
        if done[job.run_id].get("settings") != run_settings(algo_config(job.algo, job.task))
    ]
    if changed:
        shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
        warnings.warn(
            f"{len(changed)} finished run(s) in {out} were recorded with other settings than their entry "
            f"gives now (or the same ones under older names), and are kept as they are (the report pools "
            f"them with new runs): {shown}. "
            "Delete their files in runs/ to run them again.",
            UserWarning,
            stacklevel=3,
        )


def protocol_differences(protocols: Sequence[dict[str, Any]]) -> str:
    """The protocol fields on which ``protocols`` differ, with each one's values: "budget 300, 600"."""
    fields = sorted({name for protocol in protocols for name in protocol})
    differ = [name for name in fields if len({repr(p.get(name)) for p in protocols}) > 1]
    return "; ".join(
        f"{name} {', '.join(dict.fromkeys(str(p.get(name, 'not recorded')) for p in protocols))}"
        for name in differ
    )


def _warn_of_mixed_protocols(todo: Sequence[Job], done: dict[str, dict[str, Any]], out: Path) -> None:
    """Say where new runs would sit beside finished runs of the same task made under another
    protocol (another algorithm's or seed's): the report cannot compare them."""
    for task_name in dict.fromkeys(job.task.name for job in todo):
        job = next(job for job in todo if job.task.name == task_name)
        others = [r["protocol"] for r in done.values() if r.get("task") == task_name]
        if any(protocol != job.protocol() for protocol in others):
            differences = protocol_differences([job.protocol(), *others])
            warnings.warn(
                f"{out} holds finished {task_name} runs made under another protocol ({differences}): "
                "the report cannot compare them with the runs asked for now. Use another --out, or "
                "delete those runs' files in runs/.",
                UserWarning,
                stacklevel=3,
            )


def _init_worker(lock: Any, slots: Any) -> None:
    import torch

    torch.set_num_threads(1)
    tqdm.set_lock(lock)
    global _SLOTS
    _SLOTS = slots


_SLOTS: Any = None


def _run_in_worker(job: Job, progress: bool | None, partial: Path) -> dict[str, Any]:
    slot = _SLOTS.get()
    try:
        return run_job(job, position=slot, progress=progress, partial=partial)
    finally:
        _SLOTS.put(slot)


def _describe(record: dict[str, Any]) -> str:
    finals = {}
    for row in record["rows"]:
        finals[row["env"]] = row["eval_mean"]
    scores = ", ".join(f"{env} {mean:.2f}" for env, mean in finals.items())
    return (
        f"done {record['algo']} {record['task']} seed {record['seed']}: final {scores} after "
        f"{record['env_steps']:,} steps, {record['train_s']:.1f} s training (+{record['eval_s']:.1f} s eval)"
    )


def execute(
    jobs: Sequence[Job], out: Path, n_jobs: int = 1, progress: bool | None = None
) -> list[dict[str, Any]]:
    """Run the jobs (saving each as it finishes); ``n_jobs`` > 1 uses that many spawned processes,
    which end with this one when it is interrupted or terminated (``benchmarks.harness.pool``)."""
    out.mkdir(parents=True, exist_ok=True)
    records = []
    if n_jobs <= 1 or len(jobs) <= 1:
        for job in jobs:
            record = run_job(job, progress=progress, partial=partial_folder(out, job))
            save_run(out, record)
            tqdm.write(_describe(record))
            records.append(record)
        return records
    slots = SPAWN.Queue()
    for slot in range(n_jobs):
        slots.put(slot)
    with worker_pool(n_jobs, _init_worker, (SPAWN.RLock(), slots)) as pool:
        futures = {pool.submit(_run_in_worker, job, progress, partial_folder(out, job)): job for job in jobs}
        for future in as_completed(futures):
            record = future.result()
            save_run(out, record)
            tqdm.write(_describe(record))
            records.append(record)
    return records


def run_suite(
    suite: Suite,
    out: Path,
    seeds: int | None = None,
    algos: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
    n_jobs: int | None = None,
    max_steps: int | None = None,
    eval_every: int | None = None,
    eval_episodes: int | None = None,
    device: str = "auto",
    progress: bool | None = None,
) -> Path:
    """Run what is missing of ``suite`` into ``out`` and rebuild ``out/results.csv``; returns its path."""
    jobs = plan(suite, seeds or suite.seeds, algos, tasks, max_steps, eval_every, eval_episodes, device)
    if any(job.task.kind == "board" for job in jobs) and importlib.util.find_spec("sb3_contrib") is None:
        raise SetupError(
            "board games are evaluated with legal-action masks by sb3-contrib: pip install 'muzero-agents[bench]'"
        )
    todo = pending(jobs, out)
    skipped = len(jobs) - len(todo)
    if skipped:
        print(f"{skipped} of {len(jobs)} runs already finished in {out}: skipped.")
    execute(todo, out, n_jobs or suite.jobs, progress)
    return collect_results(out)

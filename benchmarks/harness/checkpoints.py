"""Mid-run checkpoints, so a suite interrupted during a long run resumes inside that run.

After each evaluation a run saves into ``OUT/partial/<run>/``: the model (weights, optimizer,
step count), its replay buffer (off-policy algorithms), the observation normalization statistics
(VecNormalize), the evaluation records so far and the seconds spent. Each checkpoint goes into a
new ``step-<N>`` folder; ``latest.json``, replaced atomically once that folder is complete, names
it, and only then are older folders removed, so an interruption at any moment leaves a readable
checkpoint. A finished run deletes its partial folder.

A resumed run goes on from the checkpoint's env steps with the saved weights, optimizer and
replay, under the same budget and evaluation schedule. Its training envs start new episodes
(the episodes unfinished at the checkpoint are lost; on-policy algorithms also lose the part of a
rollout collected before it) and its random streams are reseeded from the run's seed and the
step count. Its eval envs start again from their first seeds. So a resumed run is a run of the
same protocol but not bit-identical to an uninterrupted one; its record lists the env steps at
which it resumed. A checkpoint made under another protocol or other settings, or one that cannot
be read, is set aside and the run starts over. Seconds spent writing checkpoints are counted
apart (``checkpoint_s``), not as training time.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.harness.evaluation import EvalHistory, EvalRecord, PeriodicEval
from muzero_agents.files import replace_atomically, temporary_file

LATEST = "latest.json"
MODEL = "model.zip"
REPLAY = "replay.pkl"
NORMALIZATION = "normalization.pkl"


@dataclass
class RunState:
    """What a checkpoint holds besides the model's own files."""

    protocol: dict[str, Any]
    settings: dict[str, Any]
    env_steps: int
    train_s: float
    eval_s: float
    records: list[dict[str, Any]]
    checkpoint_s: float = 0.0
    total_s: float = 0.0  # wall-clock seconds of the run up to the checkpoint, every leg
    resumed_at: list[int] = field(default_factory=list)

    def history(self) -> EvalHistory:
        return EvalHistory([EvalRecord(**record) for record in self.records])


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed over it."""
    fd, tmp = temporary_file(path)
    with os.fdopen(fd, "w", newline="") as handle:
        handle.write(text)
    replace_atomically(tmp, path)


def _has_replay(model: BaseAlgorithm) -> bool:
    return getattr(model, "replay_buffer", None) is not None and hasattr(model, "save_replay_buffer")


def save_checkpoint(folder: Path, model: BaseAlgorithm, state: RunState) -> None:
    """Write ``model`` and ``state`` as the newest checkpoint in ``folder`` (see the module docstring)."""
    step_dir = folder / f"step-{state.env_steps}"
    if step_dir.exists():
        shutil.rmtree(step_dir)
    step_dir.mkdir(parents=True)
    model.save(step_dir / MODEL)
    if _has_replay(model):
        model.save_replay_buffer(step_dir / REPLAY)
    normalization = model.get_vec_normalize_env()
    if normalization is not None:
        with open(step_dir / NORMALIZATION, "wb") as file:
            pickle.dump({"obs_rms": normalization.obs_rms, "ret_rms": normalization.ret_rms}, file)
    latest = {"folder": step_dir.name, **asdict(state)}
    write_text_atomically(folder / LATEST, json.dumps(latest, indent=2) + "\n")
    for old in folder.glob("step-*"):
        if old != step_dir:
            shutil.rmtree(old, ignore_errors=True)


def read_state(folder: Path) -> tuple[Path, RunState] | None:
    """The newest complete checkpoint in ``folder`` (its files' folder and state), if any."""
    try:
        latest = json.loads((folder / LATEST).read_text())
        step_dir = folder / latest.pop("folder")
        state = RunState(**latest)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # unreadable, or another layout
        return None
    return (step_dir, state) if (step_dir / MODEL).exists() else None


def restore(step_dir: Path, model: BaseAlgorithm, device: str, seed: int) -> BaseAlgorithm:
    """The checkpointed model, on ``model``'s envs (normalization statistics and replay restored),
    its random streams seeded with ``seed`` (``load`` sets the model up, and seeds it, with it)."""
    env = model.get_env()
    loaded = type(model).load(step_dir / MODEL, env=env, device=device, seed=seed)
    if (step_dir / REPLAY).exists():
        loaded.load_replay_buffer(step_dir / REPLAY)
    normalization = loaded.get_vec_normalize_env()
    if normalization is not None and (step_dir / NORMALIZATION).exists():
        with open(step_dir / NORMALIZATION, "rb") as file:
            saved = pickle.load(file)
        normalization.obs_rms, normalization.ret_rms = saved["obs_rms"], saved["ret_rms"]
    return loaded


class CheckpointAfterEval(BaseCallback):
    """Save a checkpoint after every evaluation ``evaluator`` records before the budget (at the
    budget the run is finished, and its result files replace the checkpoint).

    :param folder: the run's partial folder
    :param start: the state the run started from (its protocol, settings, resumptions, seconds)
    :param evaluator: the run's periodic evaluation, whose records and seconds are saved; the
        seconds spent saving are excluded from its training time
    :param budget: the run's env-step budget
    """

    def __init__(self, folder: Path, start: RunState, evaluator: PeriodicEval, budget: int) -> None:
        super().__init__()
        self.folder, self.start, self.evaluator, self.budget = folder, start, evaluator, budget
        self._saved_records = len(evaluator.history.records)
        self._leg_started = time.perf_counter()

    def _on_step(self) -> bool:
        records = self.evaluator.history.records
        if len(records) > self._saved_records and self.num_timesteps < self.budget:
            self._saved_records = len(records)
            started = time.perf_counter()
            save_checkpoint(self.folder, self.model, self._state(records))
            self.evaluator.exclude(time.perf_counter() - started)
        return True

    def _state(self, records: list[EvalRecord]) -> RunState:
        return RunState(
            protocol=self.start.protocol,
            settings=self.start.settings,
            env_steps=int(self.num_timesteps),
            train_s=self.evaluator.train_seconds(),
            eval_s=self.evaluator.eval_seconds(),
            records=[asdict(record) for record in records],
            checkpoint_s=self.evaluator.excluded_seconds(),
            total_s=self.start.total_s + time.perf_counter() - self._leg_started,
            resumed_at=list(self.start.resumed_at),
        )

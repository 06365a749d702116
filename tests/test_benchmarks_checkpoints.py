"""Mid-run checkpoints of the benchmark runner: an interrupted run resumes from its last evaluation."""

import json

import numpy as np
import pytest
import torch

from benchmarks.harness import checkpoints, runner
from benchmarks.harness.suites import gym_task

torch.set_num_threads(1)


class Interrupted(Exception):
    pass


def _interrupt_after_first_checkpoint(monkeypatch):
    """Make the next run stop (as an interruption would) right after its first checkpoint."""
    original = checkpoints.CheckpointAfterEval._on_step

    def on_step(self):
        before = self._saved_records
        go_on = original(self)
        if self._saved_records != before:
            monkeypatch.setattr(checkpoints.CheckpointAfterEval, "_on_step", original)
            raise Interrupted
        return go_on

    monkeypatch.setattr(checkpoints.CheckpointAfterEval, "_on_step", on_step)


def _interrupted(job, tmp_path, monkeypatch):
    """Run ``job`` until its first checkpoint (then it is interrupted); returns its partial folder."""
    partial = runner.partial_folder(tmp_path, job)
    _interrupt_after_first_checkpoint(monkeypatch)
    with pytest.raises(Interrupted):
        runner.run_job(job, progress=False, partial=partial)
    return partial


def _interrupted_then_resumed(job, tmp_path, monkeypatch):
    partial = _interrupted(job, tmp_path, monkeypatch)
    step_dir, state = checkpoints.read_state(partial)
    assert state.env_steps >= job.task.eval_every and len(state.records) == len(job.task.evaluations)
    assert state.train_s > 0 and step_dir.name == f"step-{state.env_steps}"
    record = runner.run_job(job, progress=False, partial=partial)
    return state, record


@pytest.mark.parametrize(
    ("algo", "env_id", "budget", "every"),
    [
        ("muzero", "CartPole-v1", 384, 192),  # its own replay, trained after 256 steps
        ("dqn", "CartPole-v1", 256, 128),  # SB3's replay buffer
        ("ppo", "MountainCar-v0", 512, 256),  # VecNormalize statistics (the Zoo's entry)
    ],
)
def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch, algo, env_id, budget, every):
    task = gym_task(env_id, budget=budget, eval_every=every, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job(algo, task, seed=0)
    state, record = _interrupted_then_resumed(job, tmp_path, monkeypatch)
    assert record["resumed_at"] == [state.env_steps]
    assert record["env_steps"] == budget
    steps = [row["env_steps"] for row in record["rows"]]
    assert steps[0] == state.env_steps and steps[-1] == budget and steps == sorted(set(steps))
    assert record["rows"][0]["eval_mean"] == state.records[0]["eval_mean"]  # the first leg's evaluation
    assert record["train_s"] > state.train_s and record["rows"][-1]["wall_s"] > state.records[0]["wall_s"]
    runner.save_run(tmp_path, record)
    assert not runner.partial_folder(tmp_path, job).exists()  # a finished run drops its checkpoints
    assert runner.finished_runs(tmp_path)[job.run_id]["resumed_at"] == [state.env_steps]


def test_the_resumed_model_is_the_checkpointed_one(tmp_path, monkeypatch):
    task = gym_task("CartPole-v1", budget=640, eval_every=320, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job("muzero", task, seed=1)  # trains from step 256 on
    partial = _interrupted(job, tmp_path, monkeypatch)
    step_dir, state = checkpoints.read_state(partial)
    from benchmarks.harness.tasks import build_run

    built = build_run(job.algo, job.task, job.seed)
    fresh_weights = [p.detach().clone() for p in built.model.policy.parameters()]
    fresh_stream = built.model._rng.bit_generator.state
    restored = checkpoints.restore(step_dir, built.model, "auto", seed=job.seed + state.env_steps)
    assert restored.num_timesteps == state.env_steps
    assert len(restored.replay_buffer) > 0
    assert restored._rng.bit_generator.state != fresh_stream  # search noise does not replay the first leg
    assert any(  # not a fresh model's weights: it trained before the checkpoint
        not torch.equal(a, b) for a, b in zip(fresh_weights, restored.policy.parameters(), strict=True)
    )


def test_observation_normalization_is_restored(tmp_path, monkeypatch):
    task = gym_task("MountainCar-v0", budget=512, eval_every=256, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job("ppo", task, seed=0)  # the Zoo's PPO entry normalizes MountainCar's observations
    partial = _interrupted(job, tmp_path, monkeypatch)
    step_dir, _ = checkpoints.read_state(partial)
    from benchmarks.harness.tasks import build_run

    built = build_run(job.algo, job.task, job.seed)
    assert built.model.get_vec_normalize_env().obs_rms.count < 2  # fresh statistics
    restored = checkpoints.restore(step_dir, built.model, "auto", seed=1)
    statistics = restored.get_vec_normalize_env().obs_rms
    assert statistics.count >= 256 and np.abs(statistics.mean).sum() > 0


def test_no_checkpoint_is_written_at_the_budget(tmp_path):
    task = gym_task("CartPole-v1", budget=128, eval_every=64, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job("ppo", task, seed=0)
    partial = runner.partial_folder(tmp_path, job)
    record = runner.run_job(job, progress=False, partial=partial)
    assert [row["env_steps"] for row in record["rows"]] == [64, 128]
    assert checkpoints.read_state(partial)[1].env_steps == 64  # the finished run's files replace it


def test_checkpoint_seconds_are_not_training_seconds():
    from benchmarks.harness.evaluation import PeriodicEval

    evaluator = PeriodicEval({"": None}, every=10)
    evaluator._on_training_start()
    before = evaluator.train_seconds()
    evaluator.exclude(100.0)
    assert evaluator.train_seconds() < before - 99.0 and evaluator.excluded_seconds() == 100.0
    evaluator.continue_from(env_steps=10, train_s=5.0, eval_s=2.0, excluded_s=3.0)
    evaluator._on_training_start()
    assert 5.0 <= evaluator.train_seconds() < 6.0 and evaluator.eval_seconds() == 2.0


def test_a_checkpoint_under_other_settings_is_not_resumed(tmp_path, monkeypatch, capsys):
    from benchmarks.harness import tasks

    task = gym_task("CartPole-v1", budget=128, eval_every=64, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job("ppo", task, seed=0)
    partial = _interrupted(job, tmp_path, monkeypatch)
    settings = tasks.BuiltRun.settings
    monkeypatch.setattr(tasks.BuiltRun, "settings", lambda self: {**settings(self), "n_envs": 99})
    record = runner.run_job(job, progress=False, partial=partial)
    assert "resumed_at" not in record and "another protocol or settings" in capsys.readouterr().out
    assert record["rows"][0]["env_steps"] == 64  # trained from the start again


def test_a_checkpoint_under_another_protocol_is_not_resumed(tmp_path, monkeypatch, capsys):
    task = gym_task("CartPole-v1", budget=128, eval_every=64, threshold=0, low=0, high=1, eval_episodes=2)
    job = runner.Job("ppo", task, seed=0)
    partial = _interrupted(job, tmp_path, monkeypatch)
    other = runner.Job("ppo", task.sliced(eval_every=32), seed=0)
    record = runner.run_job(other, progress=False, partial=partial)
    assert "resumed_at" not in record and "another protocol" in capsys.readouterr().out
    assert record["rows"][0]["env_steps"] == 32


def test_an_unreadable_or_incomplete_checkpoint_is_ignored(tmp_path):
    assert checkpoints.read_state(tmp_path / "none") is None
    (tmp_path / checkpoints.LATEST).write_text("{not json")
    assert checkpoints.read_state(tmp_path) is None
    state = checkpoints.RunState({"budget": 1}, {}, env_steps=5, train_s=1.0, eval_s=0.5, records=[])
    latest = {"folder": "step-5", **state.__dict__}
    (tmp_path / checkpoints.LATEST).write_text(json.dumps(latest))
    assert checkpoints.read_state(tmp_path) is None  # the folder it names was never completed
    (tmp_path / "step-5").mkdir()
    (tmp_path / "step-5" / checkpoints.MODEL).write_bytes(b"")
    step_dir, read = checkpoints.read_state(tmp_path)
    assert step_dir.name == "step-5" and read == state and np.isclose(read.eval_s, 0.5)

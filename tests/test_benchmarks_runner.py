"""The runner: CSV schema, resumption, the shared evaluation protocol, and small end-to-end runs."""

import csv
import os
import time
import warnings

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnvWrapper

from benchmarks.harness import runner
from benchmarks.__main__ import main
from benchmarks.harness.evaluation import EvalHistory, PeriodicEval, StepBudget
from benchmarks.harness.suites import Suite, Task, get_suite, gym_task

torch.set_num_threads(1)

TINY = Suite(
    "tiny",
    "test only",
    (gym_task("CartPole-v1", budget=128, eval_every=64, threshold=475, low=23.7, high=500, eval_episodes=2),),
    ("ppo",),
    seeds=1,
)


def _header(path):
    with open(path, newline="") as handle:
        return next(csv.reader(handle))


def test_csv_schema_round_trips(tmp_path):
    row = {
        "algo": "ppo",
        "env": "CartPole-v1",
        "seed": 0,
        "env_steps": 64,
        "wall_s": 0.5,
        "eval_mean": 9.5,
        "eval_std": 0.5,
    }
    path = tmp_path / "r.csv"
    path.write_text(runner.rows_to_csv([row]))
    assert (
        tuple(_header(path))
        == runner.CSV_COLUMNS
        == ("algo", "env", "seed", "env_steps", "wall_s", "eval_mean", "eval_std")
    )
    assert runner.read_csv(path) == [row]
    path.write_text("algo,env\nppo,x\n")
    with pytest.raises(ValueError, match="not a benchmark CSV"):
        runner.read_csv(path)


def test_plan_refuses_unknown_names_and_orders_slow_algorithms_first():
    jobs = runner.plan(
        get_suite("classic"), seeds=2, algos=["ppo", "muzero"], tasks=["Acrobot-v1"], max_steps=1_000
    )
    assert [(j.algo, j.seed) for j in jobs] == [("muzero", 0), ("muzero", 1), ("ppo", 0), ("ppo", 1)]
    assert all(j.task.budget == 1_000 for j in jobs)
    with pytest.raises(runner.SetupError, match="no algorithm"):
        runner.plan(get_suite("smoke"), seeds=1, algos=["dqn"])
    with pytest.raises(runner.SetupError, match="no env"):
        runner.plan(get_suite("smoke"), seeds=1, tasks=["Pong"])


def _finished(job, **changes):
    from benchmarks.harness.tasks import algo_config, run_settings

    settings = run_settings(algo_config(job.algo, job.task))
    return {
        "algo": job.algo,
        "task": job.task.name,
        "seed": job.seed,
        "protocol": job.protocol(),
        "settings": settings,
        "rows": [],
        **changes,
    }


def test_finished_runs_are_skipped_and_other_protocols_refused(tmp_path):
    jobs = runner.plan(TINY, seeds=3)
    runner.save_run(tmp_path, _finished(jobs[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # its settings are the entry's: nothing to say
        assert [j.seed for j in runner.pending(jobs, tmp_path)] == [0, 2]
    # a CSV without its JSON is an unfinished run
    (tmp_path / "runs" / f"{jobs[2].run_id}.csv").write_text(runner.rows_to_csv([]))
    assert [j.seed for j in runner.pending(jobs, tmp_path)] == [0, 2]
    with pytest.raises(runner.SetupError, match="another protocol"):
        runner.pending(runner.plan(TINY, seeds=3, max_steps=100), tmp_path)


def test_finished_runs_made_with_other_settings_are_kept_with_a_warning(tmp_path):
    jobs = runner.plan(TINY, seeds=2)
    record = _finished(jobs[0])
    record["settings"]["kwargs"]["n_steps"] = "1"
    runner.save_run(tmp_path, record)
    with pytest.warns(UserWarning, match=r"1 finished run\(s\) .* other settings .*ppo__CartPole-v1__seed0"):
        assert [j.seed for j in runner.pending(jobs, tmp_path)] == [1]


def test_new_runs_beside_finished_ones_under_another_protocol_are_warned_of(tmp_path):
    jobs = runner.plan(TINY, seeds=2)
    earlier = _finished(
        jobs[0], protocol={k: v for k, v in jobs[0].protocol().items() if k != "eval_reseeded"}
    )
    runner.save_run(tmp_path, earlier)  # a run of a version that seeded the eval envs once
    # the same run still (kept, not refused), but new runs beside it are warned of
    with pytest.warns(UserWarning, match=r"another protocol \(eval_reseeded True, not recorded\)"):
        assert [j.seed for j in runner.pending(jobs, tmp_path)] == [1]


class _RecordResets(VecEnvWrapper):
    def __init__(self, venv):
        super().__init__(venv)
        self.first_observations = []

    def reset(self):
        observations = self.venv.reset()
        self.first_observations.append(observations.copy())
        return observations

    def step_wait(self):
        return self.venv.step_wait()


class _Policy:
    """A stand-in model: always action 0, or seeded random actions (episodes of other lengths)."""

    def __init__(self, action_seed: int | None, n_actions: int) -> None:
        self.rng = None if action_seed is None else np.random.default_rng(action_seed)
        self.n_actions = n_actions

    def predict(self, observations, state=None, episode_start=None, deterministic=True):
        if self.rng is None:
            return np.zeros(len(observations), int), None
        return self.rng.integers(0, self.n_actions, len(observations)), None

    def get_vec_normalize_env(self):
        return None


def _cartpole_eval_envs():
    return make_vec_env("CartPole-v1", n_envs=2, seed=10)


def _atari_eval_envs():
    """As the harness's Atari tasks: SB3's AtariWrapper, whose EpisodicLifeEnv ends an episode at
    each lost life and resets the game for real only after a game over."""
    ale_py = pytest.importorskip("ale_py")
    import gymnasium as gym
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gym.register_envs(ale_py)
    return VecFrameStack(make_atari_env("BreakoutNoFrameskip-v4", n_envs=2, seed=10), 4)


@pytest.mark.parametrize("make_envs, n_actions", [(_cartpole_eval_envs, 2), (_atari_eval_envs, 4)])
def test_every_evaluation_plays_the_same_episodes_whatever_came_before(make_envs, n_actions):
    """Sub-envs that end early play extra episodes, as many as the policy's episodes allow, and
    Atari games can be left running: without a real, reseeded reset, the next evaluation would
    start elsewhere."""
    env = _RecordResets(make_envs())
    evaluator = PeriodicEval(env, every=1, n_episodes=2, eval_seed=10)
    results = []
    for action_seed in (None, 0, None, 1, None):
        evaluator.model = _Policy(action_seed, n_actions)
        results.append(evaluator._evaluate_one(env))
    assert all(np.array_equal(env.first_observations[0], first) for first in env.first_observations)
    assert results[0] == results[2] == results[4]


def test_periodic_eval_labels_each_env_ends_with_an_evaluation_and_excludes_its_time():
    model = PPO("MlpPolicy", make_vec_env("CartPole-v1", n_envs=2, seed=0), n_steps=32, batch_size=64, seed=0)
    evals = {name: make_vec_env("CartPole-v1", n_envs=2, seed=10) for name in ("a", "b")}
    history = EvalHistory()
    evaluator = PeriodicEval(evals, every=50, n_episodes=2, history=history, final_eval=True)
    model.learn(total_timesteps=100, callback=[evaluator, StepBudget(90)])
    assert model.num_timesteps == 90  # stopped by the budget inside the second rollout
    assert [r.env_steps for r in history.of("a")] == [50, 90] == [r.env_steps for r in history.of("b")]
    assert evaluator.eval_seconds() > 0
    assert history.of("a")[-1].wall_s <= evaluator.train_seconds()


def test_end_to_end_through_the_command_line_then_resumed(tmp_path, capsys, monkeypatch):
    args = [
        "run",
        "--suite",
        "smoke",
        "--seeds",
        "1",
        "--max-steps",
        "128",
        "--eval-every",
        "64",
        "--eval-episodes",
        "2",
        "--jobs",
        "1",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    main(args)
    printed = capsys.readouterr().out
    assert "CartPole-v1" in printed and "muzero" in printed and "ppo" in printed and "report.md" in printed
    rows = runner.read_csv(tmp_path / "results.csv")
    assert {(r["algo"], r["env_steps"]) for r in rows} == {
        ("muzero", 64),
        ("muzero", 128),
        ("ppo", 64),
        ("ppo", 128),
    }
    assert (tmp_path / "report.md").exists()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is missing" in printed
    else:
        assert (tmp_path / "plots" / "CartPole-v1_steps.png").stat().st_size > 0
    # a second invocation trains nothing
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: pytest.fail("a finished run was run again"))
    main(args)
    assert "2 of 2 runs already finished" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="another protocol"):
        main([*args[:-3], "--max-steps", "100", "--out", str(tmp_path)])
    # `report` rebuilds results.csv from the finished runs alone (e.g. while a suite still runs)
    (tmp_path / "results.csv").unlink()
    (tmp_path / "report.md").unlink()
    main(["report", str(tmp_path)])
    assert len(runner.read_csv(tmp_path / "results.csv")) == 4 and (tmp_path / "report.md").exists()
    with pytest.raises(SystemExit, match="no runs/ folder"):
        main(["report", str(tmp_path / "nothing")])


def test_board_games_train_by_self_play_and_are_measured_against_each_opponent(tmp_path):
    pytest.importorskip("sb3_contrib")
    pytest.importorskip("pettingzoo.classic")
    runner.run_suite(
        get_suite("boardgames"),
        tmp_path,
        seeds=1,
        tasks=["tictactoe"],
        max_steps=48,
        eval_episodes=2,
        progress=False,
    )
    rows = runner.read_csv(tmp_path / "results.csv")
    assert {(r["algo"], r["env"]) for r in rows} == {
        (algo, env)
        for algo in ("muzero", "maskable_ppo")
        for env in ("tictactoe-vs-random", "tictactoe-vs-minimax")
    }
    assert all(-1.0 <= r["eval_mean"] <= 1.0 for r in rows)


RUN_IN_WORKER = runner._run_in_worker


def run_noting_its_process(job, progress, partial):
    """``runner._run_in_worker`` that first writes its process id to OUT/pids/seed<seed>, then waits
    (30 s at most) for both jobs of the test to have started: jobs running at once are two processes."""
    started = partial.parent.parent / "pids"
    started.mkdir(exist_ok=True)
    (started / f"seed{job.seed}").write_text(str(os.getpid()))
    deadline = time.monotonic() + 30
    while len(list(started.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return RUN_IN_WORKER(job, progress, partial)


def test_parallel_jobs_run_in_separate_processes(tmp_path, monkeypatch):
    # pickled by its name: each worker imports this module's run_noting_its_process
    monkeypatch.setattr(runner, "_run_in_worker", run_noting_its_process)
    suite = Suite("tiny2", "test only", TINY.tasks, ("ppo",), seeds=2)
    runner.run_suite(suite, tmp_path, n_jobs=2, progress=False)
    rows = runner.read_csv(tmp_path / "results.csv")
    assert sorted({r["seed"] for r in rows}) == [0, 1]
    assert len(runner.finished_runs(tmp_path)) == 2
    pids = {int((tmp_path / "pids" / f"seed{seed}").read_text()) for seed in (0, 1)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_task_dataclass_is_what_a_run_is_keyed_on():
    task = Task("x/y", "gym", "CartPole-v1", 10, 5, 1, TINY.tasks[0].evaluations)
    assert runner.run_id("ppo", task.name, 3) == "ppo__x_y__seed3"


def test_an_algorithm_named_twice_runs_once():
    jobs = runner.plan(TINY, seeds=1, algos=["ppo", "ppo"], tasks=["CartPole-v1", "CartPole-v1"])
    assert [job.run_id for job in jobs] == ["ppo__CartPole-v1__seed0"]


def test_a_run_records_the_device_its_model_used_outside_its_protocol_and_settings():
    record = runner.run_job(runner.Job("ppo", TINY.tasks[0], 0, device="cpu"), progress=False)
    assert record["device"] == "cpu"
    assert "device" not in record["protocol"] and "device" not in record["settings"]

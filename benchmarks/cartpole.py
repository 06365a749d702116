"""MuZero vs SB3's PPO and DQN on CartPole-v1: env steps and training seconds to a return of 475.

    python -m benchmarks.cartpole --seeds 3 [--algos muzero ppo dqn] [--jobs 2]

Every algorithm gets the same protocol: every ``--eval-every`` env steps, 20 deterministic
episodes on a separate env (seeded apart from training); training stops at the threshold or at
the budget. Baselines use the RL Zoo's tuned hyperparameters, MuZero its CartPole-v1 entry in
``benchmarks/muzero.yml`` (the one the harness reads; ``--muzero-kwargs`` overrides it). Wall-clock
excludes evaluation. Ctrl-C or SIGTERM also ends the worker processes of ``--jobs``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import as_completed
from typing import Any

import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.__main__ import positive_count
from benchmarks.harness.evaluation import EvalHistory, PeriodicEval
from benchmarks.harness.pool import worker_pool
from benchmarks.harness.zoo import convert_zoo_value, merge_settings, zoo_config, zoo_hyperparams
from muzero_agents import MuZero

ENV_ID = "CartPole-v1"
THRESHOLD = 475.0
BUDGET = {"muzero": 20_000, "ppo": 100_000, "dqn": 100_000}


def muzero_settings(overrides: dict[str, Any] | None = None, n_envs: int | None = None) -> tuple[int, dict]:
    """(training envs, constructor kwargs) of MuZero on CartPole-v1: ``benchmarks/muzero.yml``'s
    entry, the harness's too, with ``overrides`` merged over it (grouped ``*_kwargs`` key by key,
    ``lin_X`` strings as schedules) and ``n_envs`` in place of the entry's when given."""
    config = zoo_config("muzero", ENV_ID)
    converted = {name: convert_zoo_value(name, value) for name, value in (overrides or {}).items()}
    return n_envs or config.n_envs, merge_settings(config.kwargs, converted)


def build(
    algo: str, seed: int, muzero_overrides: dict[str, Any] | None = None, muzero_envs: int | None = None
):
    """``algo`` on CartPole-v1 training envs seeded with ``seed``; MuZero's settings from
    ``muzero_settings``, the baselines' from the RL Zoo."""
    if algo == "muzero":
        n_envs, kwargs = muzero_settings(muzero_overrides, muzero_envs)
        env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
        return MuZero("MlpPolicy", env, seed=seed, **kwargs)
    n_envs, _, kwargs = zoo_hyperparams(algo, ENV_ID)
    env = make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)
    return {"ppo": PPO, "dqn": DQN}[algo]("MlpPolicy", env, seed=seed, **kwargs)


def run_one(
    algo: str,
    seed: int,
    eval_every: int,
    budget: int,
    muzero_overrides: dict[str, Any] | None = None,
    muzero_envs: int | None = None,
) -> dict[str, Any]:
    """Train one (algo, seed) until the threshold or the budget; return its eval history."""
    torch.set_num_threads(1)
    model = build(algo, seed, muzero_overrides, muzero_envs)
    eval_env = make_vec_env(ENV_ID, n_envs=20, seed=10_000 + seed)
    history = EvalHistory()
    callback = PeriodicEval(eval_env, eval_every, n_episodes=20, stop_threshold=THRESHOLD, history=history)
    started = time.perf_counter()
    model.learn(total_timesteps=budget, callback=callback)
    hit = history.first_reaching(THRESHOLD)
    return {
        "algo": algo,
        "seed": seed,
        "steps": hit.env_steps if hit else None,
        "seconds": hit.wall_s if hit else None,
        "final": history.records[-1].eval_mean if history.records else float("nan"),
        "total_s": time.perf_counter() - started,
        "curve": [(r.env_steps, round(r.eval_mean, 1)) for r in history.records],
    }


def format_table(results: list[dict[str, Any]]) -> str:
    lines = [f"{'algo':<8} {'seed':>4} {'steps to 475':>13} {'train s':>8} {'last eval':>9} {'total s':>8}"]
    for r in sorted(results, key=lambda r: (r["algo"], r["seed"])):
        steps = "not reached" if r["steps"] is None else str(r["steps"])
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
        lines.append(
            f"{r['algo']:<8} {r['seed']:>4} {steps:>13} {secs:>8} {r['final']:>9.1f} {r['total_s']:>8.1f}"
        )
    for algo in sorted({r["algo"] for r in results}):
        runs = [r for r in results if r["algo"] == algo]
        # an unreached seed counts as never reaching it (inf), so the median stays honest
        steps = [r["steps"] if r["steps"] is not None else float("inf") for r in runs]
        secs = [r["seconds"] if r["seconds"] is not None else float("inf") for r in runs]
        lines.append(f"{algo:<8} {'med':>4} {statistics.median(steps):>13} {statistics.median(secs):>8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=positive_count, default=3)
    parser.add_argument("--algos", nargs="+", default=["muzero", "ppo", "dqn"], choices=sorted(BUDGET))
    parser.add_argument("--eval-every", type=positive_count, default=500)
    parser.add_argument(
        "--budget", type=positive_count, default=None, help="env-step budget for every algorithm"
    )
    parser.add_argument(
        "--jobs", type=positive_count, default=1, help="parallel processes (each uses one torch thread)"
    )
    parser.add_argument("--curves", action="store_true", help="also print each run's eval curve")
    parser.add_argument(
        "--muzero-kwargs",
        type=json.loads,
        default={},
        help="JSON overrides of MuZero's settings, e.g. '{\"replay_ratio\": 1.0}' or "
        '\'{"self_play_kwargs": {"temperature": "lin_1.0"}}\' (merged into the group)',
    )
    parser.add_argument(
        "--muzero-envs", type=positive_count, default=None, help="MuZero's number of training envs"
    )
    args = parser.parse_args(argv)
    if not isinstance(args.muzero_kwargs, dict):
        parser.error(f"--muzero-kwargs must be a JSON object, got {args.muzero_kwargs!r}")
    if args.budget is not None:
        BUDGET.update({algo: args.budget for algo in BUDGET})
    jobs = [
        (algo, seed, args.eval_every, BUDGET[algo], args.muzero_kwargs, args.muzero_envs)
        for algo in args.algos
        for seed in range(args.seeds)
    ]
    results = []
    with worker_pool(args.jobs) as pool:
        futures = [pool.submit(run_one, *job) for job in jobs]
        for future in as_completed(futures):
            results.append(future.result())
            r = results[-1]
            print(
                f"done: {r['algo']} seed {r['seed']}: steps {r['steps']} train_s {r['seconds']}", flush=True
            )
    print(format_table(results))
    if args.curves:
        for r in results:
            print(r["algo"], r["seed"], r["curve"])


if __name__ == "__main__":
    main()

"""MuZero's speed against the number of self-play actors and Reanalyze workers (Ray), on CartPole-v1.

    python -m benchmarks.scaling [--actors 0 1 2] [--reanalyze-workers 0 1] [--steps 3000]
                                 [--to-threshold --budget 20000]

For each actor count and each Reanalyze worker count, in one process (0 actors: the in-process
loop; 0 workers: Reanalyze in the learner), it trains MuZero with its CartPole-v1 entry of
``benchmarks/muzero.yml`` and prints env steps/s and gradient steps/s, both measured from the
first env step to the last (actor start-up excluded, evaluations excluded), and the start-up
seconds. ``--self-play-only`` takes no gradient steps, so it measures what the actors alone
play (with training, the replay ratio holds env steps/s to the learner's gradient steps/s
divided by ``replay_ratio``). With ``--to-threshold`` each run instead goes on until 20
deterministic evaluation episodes average 475 (``benchmarks.cartpole``'s protocol, evaluated
every ``--eval-every`` env steps) or ``--budget`` env steps, and the wall-clock seconds to the
threshold (from the start of ``learn``, start-up included, evaluations excluded) are printed
beside the speeds of the same run. Needs ``pip install 'muzero-agents[distributed]'`` for actor
or worker counts above 0.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.cartpole import ENV_ID, THRESHOLD, muzero_settings
from benchmarks.harness.evaluation import EvalHistory, PeriodicEval
from muzero_agents import MuZero


class Speed(BaseCallback):
    """Env steps and gradient steps between the first env step and the last, and their seconds."""

    def __init__(self, evaluation: PeriodicEval | None = None) -> None:
        super().__init__()
        self.evaluation = evaluation
        self.first: tuple[float, int, int] | None = None
        self.last: tuple[float, int, int] | None = None

    def _now(self) -> tuple[float, int, int]:
        eval_s = self.evaluation.eval_seconds() if self.evaluation is not None else 0.0
        return time.perf_counter() - eval_s, self.num_timesteps, self.model._n_updates

    def _on_step(self) -> bool:
        self.last = self._now()
        if self.first is None:
            self.first = self.last
        return True

    def rates(self) -> tuple[float, float]:
        """(env steps/s, gradient steps/s) between the first and the last env step."""
        (t0, steps0, updates0), (t1, steps1, updates1) = self.first, self.last
        seconds = max(t1 - t0, 1e-9)
        return (steps1 - steps0) / seconds, (updates1 - updates0) / seconds


def env_for(n_envs: int, seed: int):
    """The training env as actors can rebuild it: the id for one env, else a function."""
    if n_envs == 1:
        return ENV_ID
    return lambda: make_vec_env(ENV_ID, n_envs=n_envs, seed=seed)


def run(actors: int, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """One training run with ``actors`` self-play actors and ``workers`` Reanalyze workers; its
    speeds (and threshold time)."""
    n_envs, kwargs = muzero_settings(args.muzero_kwargs, args.envs)
    if args.self_play_only:  # no gradient step: what the actors alone can play
        kwargs["learning_starts"] = 10 * args.steps
    env = env_for(n_envs, args.seed)
    model = MuZero(
        "MlpPolicy", env, num_actors=actors, num_reanalyze_workers=workers, seed=args.seed, **kwargs
    )
    evaluation, history = None, EvalHistory()
    if args.to_threshold:
        eval_env = make_vec_env(ENV_ID, n_envs=20, seed=10_000 + args.seed)
        evaluation = PeriodicEval(eval_env, args.eval_every, 20, stop_threshold=THRESHOLD, history=history)
    speed = Speed(evaluation)
    callbacks = [speed] if evaluation is None else [evaluation, speed]
    started = time.perf_counter()
    model.learn(args.budget if args.to_threshold else args.steps, callback=CallbackList(callbacks))
    env_rate, grad_rate = speed.rates()
    hit = history.first_reaching(THRESHOLD)
    return {
        "actors": actors,
        "reanalyze_workers": workers,
        "env_steps_per_s": env_rate,
        "grad_steps_per_s": grad_rate,
        "startup_s": speed.first[0] - started,
        "env_steps": model.num_timesteps,
        "seconds_to_threshold": hit.wall_s if hit else None,
        "steps_to_threshold": hit.env_steps if hit else None,
    }


def format_table(results: list[dict[str, Any]]) -> str:
    """One row per run; "vs 1 actor" compares env steps/s with the run of 1 actor and as many
    Reanalyze workers."""
    base = {r["reanalyze_workers"]: r["env_steps_per_s"] for r in results if r["actors"] == 1}
    lines = [
        f"{'actors':>6} {'reanalyze':>9} {'env steps/s':>12} {'vs 1 actor':>10} {'grad steps/s':>12} "
        f"{'start-up s':>10} {'env steps':>9} {'s to 475':>9} {'steps to 475':>12}"
    ]
    for r in results:
        one_actor = base.get(r["reanalyze_workers"])
        ratio = "-" if not one_actor else f"{r['env_steps_per_s'] / one_actor:.2f}x"
        secs = "-" if r["seconds_to_threshold"] is None else f"{r['seconds_to_threshold']:.0f}"
        steps = "-" if r["steps_to_threshold"] is None else str(r["steps_to_threshold"])
        lines.append(
            f"{r['actors']:>6} {r['reanalyze_workers']:>9} {r['env_steps_per_s']:>12.1f} {ratio:>10} "
            f"{r['grad_steps_per_s']:>12.1f} {r['startup_s']:>10.1f} {r['env_steps']:>9} {secs:>9} {steps:>12}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actors", type=int, nargs="+", default=[0, 1, 2], help="actor counts to compare")
    parser.add_argument(
        "--reanalyze-workers", type=int, nargs="+", default=[0], help="Reanalyze worker counts to compare"
    )
    parser.add_argument("--steps", type=int, default=3000, help="env steps per run (speed only)")
    parser.add_argument("--to-threshold", action="store_true", help="train each run to 475 (or the budget)")
    parser.add_argument("--budget", type=int, default=20_000, help="env-step budget with --to-threshold")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--self-play-only",
        action="store_true",
        help="no gradient steps: the actors' own speed (no threshold)",
    )
    parser.add_argument("--envs", type=int, default=None, help="envs per actor (default: the yml entry's)")
    parser.add_argument("--muzero-kwargs", type=json.loads, default={}, help="JSON overrides of the settings")
    args = parser.parse_args(argv)
    if args.self_play_only and args.to_threshold:
        parser.error("--self-play-only takes no gradient steps, so it cannot reach a threshold")
    torch.set_num_threads(1)
    results = []
    for workers in args.reanalyze_workers:
        for actors in args.actors:
            results.append(run(actors, workers, args))
            done = results[-1]
            print(
                f"done: {actors} actors, {workers} Reanalyze workers: {done['env_steps_per_s']:.1f} env steps/s"
                + (
                    ""
                    if done["seconds_to_threshold"] is None
                    else f", 475 in {done['seconds_to_threshold']:.0f} s"
                ),
                flush=True,
            )
    print(format_table(results))


if __name__ == "__main__":
    main()

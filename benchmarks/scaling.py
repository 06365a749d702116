"""MuZero's speed against the number of self-play actors and Reanalyze workers (Ray), on CartPole-v1
or connect four.

    python -m benchmarks.scaling [--task cartpole|connect_four] [--actors 0 1 2] [--reanalyze-workers 0 1]
                                 [--steps 3000] [--to-threshold [--budget N] [--eval-every N]]

For each actor count and each Reanalyze worker count, in one process (0 actors: the in-process
loop; 0 workers: Reanalyze in the learner), it trains MuZero with the task's entry of
``benchmarks/muzero.yml`` (``CartPole-v1``, or ``BoardGame/ConnectFour-v0`` trained by self-play
as the ``boardgames`` suite trains it) and prints env steps/s and gradient steps/s, both
measured from the first env step to the last (actor start-up excluded, evaluations excluded),
and the start-up seconds. ``--envs`` sets the envs of each actor, ``--muzero-kwargs`` overrides
the entry's settings. ``--self-play-only`` takes no gradient steps, so it measures what the
actors alone play (with training, the replay ratio holds env steps/s to the learner's gradient
steps/s divided by ``replay_ratio``).

With ``--to-threshold`` each run instead goes on until the task's threshold or ``--budget`` env
steps, evaluated every ``--eval-every`` env steps, and the wall-clock seconds to the threshold
(from the start of ``learn``, start-up included, evaluations excluded) are printed beside the
speeds of the same run. CartPole's threshold: ``--eval-episodes`` (20) deterministic episodes
average 475 (``benchmarks.cartpole``'s protocol; budget 20,000, every 500 steps by default).
Connect four's: MuZero wins at least 90% of ``--eval-episodes`` (20) deterministic games as first
player and as many as second player against a uniformly random player (``benchmarks.boardgame_play``'s
games and seeds; budget 100,000, every 5,000 steps by default). Needs
``pip install 'muzero-agents[distributed]'`` for actor or worker counts above 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env

from benchmarks.boardgame_play import SIDES, Tally, board_task, eval_first_seed, play_games, versus_env
from benchmarks.cartpole import ENV_ID, THRESHOLD, muzero_settings
from benchmarks.harness.evaluation import EvalHistory, EvalRecord, PeriodicEval
from benchmarks.harness.tasks import EVAL_SEED_OFFSET, algo_config
from benchmarks.harness.zoo import convert_zoo_value, merge_settings
from muzero_agents import MuZero
from wrappers import make_board_game

CONNECT_FOUR_THRESHOLD = 0.9  # the lower of the win rates as first and as second player
BOTH_SIDES = "both sides"  # the label of connect four's evaluation records that the threshold reads


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


def win_rate(tally: Tally) -> float:
    """The fraction of the tally's games won (0 for no games)."""
    return tally.wins / tally.games if tally.games else 0.0


def lower_win_rate(tallies: Mapping[str, Tally]) -> float:
    """The lower of the sides' win rates (side -> tally): the score connect four's threshold reads."""
    return min(win_rate(tally) for tally in tallies.values())


def reaches_threshold(tallies: Mapping[str, Tally], threshold: float = CONNECT_FOUR_THRESHOLD) -> bool:
    """Whether every side (side -> tally) won at least ``threshold`` of its games."""
    return lower_win_rate(tallies) >= threshold


class VersusRandomEval(PeriodicEval):
    """Every ``every`` env steps, ``games`` deterministic connect-four games as first player and as
    many as second player against a uniformly random player; stops training once both win rates
    reach ``threshold``.

    Each side's win rate is recorded under its side's label, the lower one under ``BOTH_SIDES``;
    ``tallies`` holds the last evaluation's outcomes. Game ``i`` of a side resets with the seed
    ``benchmarks.boardgame_play`` gives it for the run's ``seed``, which also reseeds the opponent.
    Seconds spent here are excluded from training time (``eval_seconds``).
    """

    def __init__(
        self, every: int, games: int, seed: int = 0, threshold: float = CONNECT_FOUR_THRESHOLD
    ) -> None:
        envs = {side: versus_env("connect_four", "random", side) for side in SIDES}
        super().__init__(envs, every, n_episodes=games, history=EvalHistory())
        self.seed, self.threshold = seed, threshold
        self.tallies: dict[str, Tally] = {}
        self.reached = False

    def _evaluate_one(self, env: Any) -> tuple[float, float]:
        side = next(side for side, side_env in self.eval_envs.items() if side_env is env)
        first_seed = eval_first_seed(self.seed, SIDES.index(side))
        self.tallies[side] = play_games(self.model, env, self.n_episodes, first_seed)
        return win_rate(self.tallies[side]), 0.0

    def _evaluate(self) -> list[float]:
        super()._evaluate()
        last = self.history.records[-1]
        score = lower_win_rate(self.tallies)
        self.history.records.append(EvalRecord(last.env_steps, last.wall_s, score, 0.0, BOTH_SIDES))
        self.reached = reaches_threshold(self.tallies, self.threshold)
        return [score]

    def _on_step(self) -> bool:
        return super()._on_step() and not self.reached


@dataclass(frozen=True)
class ScalingTask:
    """What the table measures on one task: MuZero's settings, its training env, its threshold."""

    name: str
    # (overrides, envs or None) -> (envs, policy, constructor kwargs) from benchmarks/muzero.yml
    settings: Callable[[dict[str, Any], int | None], tuple[int, str, dict[str, Any]]]
    # (envs, seed) -> the env MuZero and its actors build: an env id or a zero-argument function
    env_source: Callable[[int, int], Any]
    # (every, episodes, seed) -> the periodic evaluation that stops training at the threshold
    evaluation: Callable[[int, int, int], PeriodicEval]
    threshold: float
    threshold_label: str  # in the table's headings ("s to 475")
    threshold_record: str  # the label of the evaluation records the threshold reads
    budget: int  # default env-step budget of --to-threshold
    eval_every: int  # default of --eval-every
    description: str  # the threshold, in words


def cartpole_settings(overrides: dict[str, Any], n_envs: int | None) -> tuple[int, str, dict[str, Any]]:
    """MuZero's CartPole-v1 settings (``benchmarks.cartpole.muzero_settings``) and its policy."""
    envs, kwargs = muzero_settings(overrides, n_envs)
    return envs, "MlpPolicy", kwargs


def cartpole_env(n_envs: int, seed: int) -> Any:
    """The training env as actors can rebuild it: the id for one env, else a function."""
    if n_envs == 1:
        return ENV_ID
    return functools.partial(make_vec_env, ENV_ID, n_envs=n_envs, seed=seed)


def cartpole_evaluation(every: int, episodes: int, seed: int) -> PeriodicEval:
    """``episodes`` deterministic episodes on their own envs (seeded apart), stopping at 475."""
    eval_env = make_vec_env(ENV_ID, n_envs=episodes, seed=EVAL_SEED_OFFSET + seed)
    return PeriodicEval(eval_env, every, episodes, stop_threshold=THRESHOLD, history=EvalHistory())


def connect_four_settings(overrides: dict[str, Any], n_envs: int | None) -> tuple[int, str, dict[str, Any]]:
    """MuZero's connect-four settings as the harness reads them (``muzero.yml``'s
    ``BoardGame/ConnectFour-v0`` with the ``boardgames`` suite's overrides), ``overrides`` merged
    over them (grouped settings key by key) and ``n_envs`` in place of the entry's when given."""
    config = algo_config("muzero", board_task("connect_four"))
    converted = {name: convert_zoo_value(name, value) for name, value in overrides.items()}
    return n_envs or config.n_envs, config.policy, merge_settings(config.kwargs, converted)


def connect_four_env(n_envs: int, seed: int) -> Any:
    """A function that builds ``n_envs`` self-play connect-four games (MuZero plays both sides)."""
    game = functools.partial(make_board_game, "connect_four", **board_task("connect_four").game_kwargs)
    return functools.partial(make_vec_env, game, n_envs=n_envs, seed=seed)


def connect_four_evaluation(every: int, games: int, seed: int) -> PeriodicEval:
    """``VersusRandomEval``: ``games`` per side against random play, stopping at 90% on both sides."""
    return VersusRandomEval(every, games, seed)


TASKS = {
    "cartpole": ScalingTask(
        name="cartpole",
        settings=cartpole_settings,
        env_source=cartpole_env,
        evaluation=cartpole_evaluation,
        threshold=THRESHOLD,
        threshold_label="475",
        threshold_record="",
        budget=20_000,
        eval_every=500,
        description="a mean return of 475 over the evaluation episodes",
    ),
    "connect_four": ScalingTask(
        name="connect_four",
        settings=connect_four_settings,
        env_source=connect_four_env,
        evaluation=connect_four_evaluation,
        threshold=CONNECT_FOUR_THRESHOLD,
        threshold_label="90%",
        threshold_record=BOTH_SIDES,
        budget=100_000,
        eval_every=5_000,
        description="90% of the games won against random play, as first and as second player",
    ),
}


def run(task: ScalingTask, actors: int, workers: int, args: argparse.Namespace) -> dict[str, Any]:
    """One training run on ``task`` with ``actors`` self-play actors and ``workers`` Reanalyze
    workers; its speeds (and threshold time)."""
    n_envs, policy, kwargs = task.settings(args.muzero_kwargs, args.envs)
    if args.self_play_only:  # no gradient step: what the actors alone can play
        kwargs["learning_starts"] = 10 * args.steps
    env = task.env_source(n_envs, args.seed)
    kwargs["reanalyze_kwargs"] = {**(kwargs.get("reanalyze_kwargs") or {}), "num_workers": workers}
    model = MuZero(policy, env, num_actors=actors, seed=args.seed, **kwargs)
    evaluation = None
    if args.to_threshold:
        evaluation = task.evaluation(args.eval_every, args.eval_episodes, args.seed)
    speed = Speed(evaluation)
    callbacks = [speed] if evaluation is None else [evaluation, speed]
    started = time.perf_counter()
    model.learn(args.budget if args.to_threshold else args.steps, callback=CallbackList(callbacks))
    env_rate, grad_rate = speed.rates()
    hit = None
    if evaluation is not None:
        hit = evaluation.history.first_reaching(task.threshold, task.threshold_record)
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


def format_table(results: list[dict[str, Any]], threshold_label: str = "475") -> str:
    """One row per run; "vs 1 actor" compares env steps/s with the run of 1 actor and as many
    Reanalyze workers; the last two columns are the seconds and env steps to ``threshold_label``."""
    base = {r["reanalyze_workers"]: r["env_steps_per_s"] for r in results if r["actors"] == 1}
    secs_head, steps_head = f"s to {threshold_label}", f"steps to {threshold_label}"
    secs_w, steps_w = max(9, len(secs_head)), max(12, len(steps_head))
    lines = [
        f"{'actors':>6} {'reanalyze':>9} {'env steps/s':>12} {'vs 1 actor':>10} {'grad steps/s':>12} "
        f"{'start-up s':>10} {'env steps':>9} {secs_head:>{secs_w}} {steps_head:>{steps_w}}"
    ]
    for r in results:
        one_actor = base.get(r["reanalyze_workers"])
        ratio = "-" if not one_actor else f"{r['env_steps_per_s'] / one_actor:.2f}x"
        secs = "-" if r["seconds_to_threshold"] is None else f"{r['seconds_to_threshold']:.0f}"
        steps = "-" if r["steps_to_threshold"] is None else str(r["steps_to_threshold"])
        lines.append(
            f"{r['actors']:>6} {r['reanalyze_workers']:>9} {r['env_steps_per_s']:>12.1f} {ratio:>10} "
            f"{r['grad_steps_per_s']:>12.1f} {r['startup_s']:>10.1f} {r['env_steps']:>9} "
            f"{secs:>{secs_w}} {steps:>{steps_w}}"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=sorted(TASKS), default="cartpole", help="what MuZero trains on")
    parser.add_argument("--actors", type=int, nargs="+", default=[0, 1, 2], help="actor counts to compare")
    parser.add_argument(
        "--reanalyze-workers", type=int, nargs="+", default=[0], help="Reanalyze worker counts to compare"
    )
    parser.add_argument("--steps", type=int, default=3000, help="env steps per run (speed only)")
    parser.add_argument(
        "--to-threshold", action="store_true", help="train each run to the task's threshold (or the budget)"
    )
    parser.add_argument(
        "--budget", type=int, default=None, help="env-step budget with --to-threshold (default: the task's)"
    )
    parser.add_argument(
        "--eval-every", type=int, default=None, help="env steps between evaluations (default: the task's)"
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=20,
        help="evaluation episodes (CartPole) or games per side (connect four)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--self-play-only",
        action="store_true",
        help="no gradient steps: the actors' own speed (no threshold)",
    )
    parser.add_argument("--envs", type=int, default=None, help="envs per actor (default: the yml entry's)")
    parser.add_argument("--muzero-kwargs", type=json.loads, default={}, help="JSON overrides of the settings")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked; ``--budget`` and ``--eval-every`` default to the task's."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_play_only and args.to_threshold:
        parser.error("--self-play-only takes no gradient steps, so it cannot reach a threshold")
    if not isinstance(args.muzero_kwargs, dict):
        parser.error(f"--muzero-kwargs must be a JSON object, got {args.muzero_kwargs!r}")
    if args.eval_episodes < 1:
        parser.error("--eval-episodes must be >= 1")
    task = TASKS[args.task]
    args.budget = task.budget if args.budget is None else args.budget
    args.eval_every = task.eval_every if args.eval_every is None else args.eval_every
    return args


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every (Reanalyze workers, actors) pair on the task and print the table; returns the rows."""
    args = parse_args(argv)
    if max([*args.actors, *args.reanalyze_workers]) > 0:  # before any run, so no row is lost
        from muzero_agents.distributed.cluster import import_ray

        import_ray()  # a missing Ray names the extra to install
    task = TASKS[args.task]
    torch.set_num_threads(1)
    results = []
    for workers in args.reanalyze_workers:
        for actors in args.actors:
            results.append(run(task, actors, workers, args))
            done, secs = results[-1], results[-1]["seconds_to_threshold"]
            reached = "" if secs is None else f", {task.threshold_label} in {secs:.0f} s"
            print(
                f"done: {actors} actors, {workers} Reanalyze workers: "
                f"{done['env_steps_per_s']:.1f} env steps/s{reached}",
                flush=True,
            )
    if args.to_threshold:
        print(f"{task.name}: threshold {task.description}, evaluated every {args.eval_every} env steps")
    print(format_table(results, task.threshold_label))
    return results


if __name__ == "__main__":
    main()

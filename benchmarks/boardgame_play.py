"""Board-game play: MuZero trained by self-play for a wall-clock budget, then played against real opponents.

    python -m benchmarks.boardgame_play --game tictactoe --minutes 15 [--seed 0] [--games 200]
        [--save PATH [--checkpoint-minutes M]] [--load PATH] [--ppo-minutes M | --no-ppo] [--depth 2]
        [--play-simulations N] [--play-search muzero|gumbel] [--play-weights average|newest]

MuZero trains by self-play (it decides both sides' moves) until ``--minutes`` of wall-clock
time are spent, then plays ``--games`` games as first player and ``--games`` as second against
each opponent: tic-tac-toe's perfect minimax player (uniformly random among optimal moves) and
a random player; connect four's depth-limited negamax (``wrappers.ConnectFourNegamaxOpponent``,
``--depth``, 2 by default) and a random player; Go 9x9's GNU Go at level 1 (over GTP; Debian package
``gnugo``) and a random player. MaskablePPO (sb3-contrib), trained on the versus env
against a random player (alternating sides) for the same wall-clock budget, is measured the
same way and printed in the same table. Both play deterministically, handed the legal-action
masks. Settings: MuZero's entry in ``benchmarks/muzero.yml`` and MaskablePPO's from the
``boardgames`` suite (both read through ``benchmarks.harness.tasks``), so this script and the harness
train the same models; ``--n-envs`` and ``--muzero-kwargs`` override MuZero's (grouped settings
merge key by key), and ``--play-simulations``, ``--play-search`` and ``--play-weights`` set MuZero's
simulations per move (``play_kwargs["num_simulations"]``), its root search, and whether a model
trained with a weight average (``play_kwargs["ema_decay"]``) plays with the average or its newest
weights, for the games only (after training).

Training schedules that run over training progress (MuZero's visit-count temperature and
replay-priority annealing) follow the wall clock here: ``WallClockBudget`` rescales the
algorithm's notion of its total budget so that progress is the elapsed fraction of the time.
With ``--checkpoint-minutes M`` the run also saves MuZero every M minutes of training to
``PATH-<minutes>min.zip``, so one long run shows how play improves with training time (evaluate
a checkpoint with ``--load``). ``--device cuda`` trains and plays on a GPU. Each process uses one
torch thread (the 2 cores are shared).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.harness.suites import Task, get_suite
from benchmarks.harness.tasks import ENGINE_SETTINGS, EVAL_SEED_OFFSET, build_run
from muzero_agents.settings import SETTINGS
from wrappers import (
    ConnectFourNegamaxOpponent,
    Opponent,
    RandomOpponent,
    TicTacToeMinimaxOpponent,
    make_board_game,
)
from wrappers.engines import make_engine

SEARCHES = SETTINGS["search"].choices  # MuZero's root searches, for --play-search
OPPONENTS = {
    "tictactoe": ("minimax", "random"),
    "connect_four": ("negamax", "random"),
    "go": ("gnugo", "random"),  # Go 9x9, the go9x9 suite's task
}
SIDES = ("first", "second")
UNBOUNDED_STEPS = 10**12  # learn()'s step budget: the wall clock stops training first


@dataclass
class Tally:
    """Game outcomes from the learner's side."""

    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    def add(self, learner_return: float) -> None:
        """Count one finished game by the learner's total reward (+1 win, 0 draw, -1 loss)."""
        if learner_return > 0:
            self.wins += 1
        elif learner_return < 0:
            self.losses += 1
        else:
            self.draws += 1

    def percent(self, count: int) -> float:
        return 100.0 * count / self.games if self.games else float("nan")


@dataclass
class Training:
    """How much an agent was trained: env steps, gradient steps, minutes (None: loaded from disk)."""

    agent: str
    env_steps: int
    gradient_steps: int
    minutes: float | None


@dataclass
class Row:
    agent: str
    opponent: str
    side: str
    tally: Tally
    training: Training


class WallClockBudget(BaseCallback):
    """Stop ``learn()`` once ``seconds`` of wall-clock time have passed since training started.

    On every step it also sets the model's total step budget to the steps it would reach at
    the current pace, so SB3's "progress remaining" (which drives schedules such as MuZero's
    temperature) is the fraction of the time left rather than of an arbitrary step count.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.started = 0.0

    def _on_training_start(self) -> None:
        self.started = time.perf_counter()

    def _on_step(self) -> bool:
        elapsed = time.perf_counter() - self.started
        if elapsed >= self.seconds:
            return False
        if elapsed > 0:
            pace_total = int(self.num_timesteps * self.seconds / elapsed)
            self.model._total_timesteps = max(self.num_timesteps + 1, pace_total)
        return True


class WallClockCheckpoints(BaseCallback):
    """Save the model every ``minutes`` of wall-clock training to ``<prefix>-<minutes>min.zip``.

    Only checkpoints before ``budget_minutes`` are written (the run's own save is the last one).
    A checkpoint is written at the first step past its time, so one step longer than ``minutes``
    skips the checkpoints it spans; each file is still named by the time it stands for.
    """

    def __init__(
        self,
        minutes: float,
        prefix: str,
        budget_minutes: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self.minutes, self.prefix, self.budget_minutes, self.clock = minutes, prefix, budget_minutes, clock
        self.started, self.saved = 0.0, 0

    def _on_training_start(self) -> None:
        self.started = self.clock()

    def _on_step(self) -> bool:
        due = int((self.clock() - self.started) / (60.0 * self.minutes))
        if due > self.saved and due * self.minutes < self.budget_minutes:
            self.saved = due
            path = f"{self.prefix}-{due * self.minutes:g}min.zip"
            self.model.save(path)
            print(f"saved the {due * self.minutes:g}-minute checkpoint to {path}", flush=True)
        return True


def board_task(game: str) -> Task:
    """The board-game suites' task for ``game`` (where both algorithms' settings come from)."""
    for suite in ("boardgames", "go9x9"):
        for task in get_suite(suite).tasks:
            if task.env_id == game:
                return task
    raise ValueError(f"No board-game task for {game!r}; this benchmark plays {', '.join(OPPONENTS)}.")


def make_opponent(game: str, name: str, depth: int = 2) -> Opponent:
    """A fresh opponent by name; the versus env reseeds it on every seeded reset."""
    if name == "random":
        return RandomOpponent()
    if name == "minimax" and game == "tictactoe":
        return TicTacToeMinimaxOpponent()
    if name == "negamax" and game == "connect_four":
        return ConnectFourNegamaxOpponent(depth=depth)
    if name in ENGINE_SETTINGS:
        return make_engine(name, **ENGINE_SETTINGS[name])
    raise ValueError(f"No opponent {name!r} for {game}; known: {', '.join(OPPONENTS.get(game, ()))}.")


def play_game(model: Any, env: Any, seed: int, on_move: Callable[[Any, int], None] | None = None) -> float:
    """One game on a versus env with ``model.predict`` (deterministic, masked); the learner's return.

    ``on_move(observation, action)`` sees each of the learner's moves (``benchmarks.diagnostics.connect_four_losses``).
    """
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
        action = int(np.asarray(action).reshape(-1)[0])
        if on_move is not None:
            on_move(obs, action)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        done = terminated or truncated
    return total


def play_games(model: Any, env: Any, n_games: int, first_seed: int) -> Tally:
    """Play ``n_games`` (``play_game``) and count outcomes.

    Game ``i`` resets with seed ``first_seed + i``, which also reseeds the opponent, so every
    agent faces the same sequence of seeded opponents and the results are reproducible.
    """
    tally = Tally()
    for game in range(n_games):
        tally.add(play_game(model, env, first_seed + game))
    return tally


def versus_env(game: str, opponent: str, side: str, depth: int = 2) -> Any:
    """The evaluation env: ``game`` against a fresh ``opponent`` (by name), the learner on ``side``."""
    opponent_player = make_opponent(game, opponent, depth)
    return make_board_game(game, opponent=opponent_player, agent_side=side, **board_task(game).game_kwargs)


def eval_first_seed(seed: int, side_index: int) -> int:
    """The reset seed of the first evaluation game of a side (``SIDES`` index) for a run's ``seed``."""
    return EVAL_SEED_OFFSET + seed * 1_000_000 + side_index * 100_000


def evaluate(model: Any, training: Training, game: str, n_games: int, seed: int, depth: int) -> list[Row]:
    """``n_games`` with each side against each of the game's opponents, one row per (opponent, side)."""
    rows = []
    for name in OPPONENTS[game]:
        for side_index, side in enumerate(SIDES):
            env = versus_env(game, name, side, depth)
            tally = play_games(model, env, n_games, eval_first_seed(seed, side_index))
            rows.append(Row(training.agent, name, side, tally, training))
            env.close()
    return rows


def train(
    algo: str,
    game: str,
    minutes: float,
    seed: int,
    muzero_overrides: dict | None = None,
    checkpoints: WallClockCheckpoints | None = None,
    device: str = "cpu",
) -> tuple[Any, Training]:
    """Build ``algo`` as the harness does (``benchmarks.harness.tasks.build_run``) and train it for ``minutes``."""
    task = board_task(game)
    if algo == "muzero" and muzero_overrides:
        task = replace(task, overrides={**task.overrides, "muzero": muzero_overrides})
    run = build_run(algo, replace(task, eval_episodes=1), seed, device=device)
    for eval_env in run.eval_envs.values():  # the harness's periodic evaluations are not used here
        eval_env.close()
    started = time.perf_counter()
    budget = WallClockBudget(seconds=60.0 * minutes)
    run.model.learn(UNBOUNDED_STEPS, callback=[budget, checkpoints] if checkpoints else budget)
    elapsed = (time.perf_counter() - started) / 60.0
    return run.model, Training(_label(algo), run.model.num_timesteps, gradient_steps(run.model), elapsed)


def gradient_steps(model: Any) -> int:
    """Optimizer steps taken (PPO counts epochs in ``_n_updates``, each of ceil(rollout / batch) steps)."""
    if hasattr(model, "n_epochs") and hasattr(model, "n_steps"):
        return model._n_updates * math.ceil(model.n_steps * model.n_envs / model.batch_size)
    return int(model._n_updates)


def load_muzero(path: str, game: str, device: str = "cpu") -> tuple[Any, Training]:
    """A saved MuZero, checked against the game's observation and action spaces."""
    from muzero_agents import MuZero

    model = MuZero.load(path, device=device)
    env = make_board_game(game, **board_task(game).game_kwargs)
    if model.observation_space.shape != env.observation_space.shape or model.action_space != env.action_space:
        raise ValueError(
            f"{path} was trained on observations {model.observation_space.shape} and actions "
            f"{model.action_space}, "
            f"not {game}'s ({env.observation_space.shape}, {env.action_space}); pass the matching --game."
        )
    if model._symmetries is None:  # a save from before the symmetries were kept: read the board's
        model.set_env(env)
    else:
        env.close()
    return model, Training("MuZero", model.num_timesteps, gradient_steps(model), None)


def _label(algo: str) -> str:
    return {"muzero": "MuZero", "maskable_ppo": "MaskablePPO"}[algo]


def format_table(rows: list[Row]) -> str:
    """One line per (agent, opponent, side), with the agent's training alongside."""
    header = (
        f"{'agent':<12} {'opponent':<9} {'side':<7} {'games':>5} {'wins':>5} {'draws':>5} "
        f"{'losses':>6} {'win %':>6} {'loss %':>6} {'train steps':>11} {'grad steps':>10} "
        f"{'minutes':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        t, tr = row.tally, row.training
        minutes = "loaded" if tr.minutes is None else f"{tr.minutes:.1f}"
        lines.append(
            f"{row.agent:<12} {row.opponent:<9} {row.side:<7} {t.games:>5} {t.wins:>5} {t.draws:>5} "
            f"{t.losses:>6} {t.percent(t.wins):>6.1f} {t.percent(t.losses):>6.1f} "
            f"{tr.env_steps:>11} {tr.gradient_steps:>10} {minutes:>7}"
        )
    return "\n".join(lines)


def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that set how a MuZero plays its games (``apply_play_options``)."""
    parser.add_argument(
        "--play-simulations",
        type=int,
        default=None,
        help="MuZero's simulations per move in the games (sets its play_kwargs['num_simulations']; "
        "default: the model's own, which a new run takes from muzero.yml)",
    )
    parser.add_argument(
        "--play-search",
        choices=SEARCHES,
        default=None,
        help="MuZero's root search in the games: muzero (pUCT) or gumbel (sequential halving over "
        "the model's search_kwargs['max_considered_actions']); default: as trained",
    )
    parser.add_argument(
        "--play-weights",
        choices=("average", "newest"),
        default=None,
        help="newest: a MuZero trained with play_kwargs['ema_decay'] plays with its newest weights "
        "instead of their moving average (average: insist on the average); default: as trained",
    )


def play_simulations(muzero: Any) -> int:
    """The simulations per move ``muzero.predict`` searches (``play_kwargs``, else ``num_simulations``)."""
    return muzero.play_kwargs.get("num_simulations") or muzero.num_simulations


def apply_play_options(muzero: Any, args: argparse.Namespace) -> None:
    """Set MuZero's simulations, root search and weights for the games, as ``args`` ask."""
    if args.play_simulations is not None:
        muzero.play_kwargs["num_simulations"] = args.play_simulations
        print(f"MuZero plays with {args.play_simulations} simulations per move", flush=True)
    if args.play_search is not None:
        muzero.search = args.play_search
        print(f"MuZero plays with the {args.play_search} search", flush=True)
    if args.play_weights == "average" and muzero.play_kwargs.get("ema_decay") is None:
        raise SystemExit(
            "--play-weights average: this MuZero keeps no weight average "
            "(train it with play_kwargs={'ema_decay': 0.995}, for example)"
        )
    if args.play_weights == "newest":
        muzero.play_kwargs["ema_decay"] = None
    if args.play_weights is not None:
        print(f"MuZero plays with its {args.play_weights} weights", flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--game", choices=sorted(OPPONENTS), default="tictactoe")
    parser.add_argument("--minutes", type=float, default=15.0, help="MuZero's wall-clock training budget")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--games", type=int, default=200, help="games per opponent and side")
    parser.add_argument("--save", help="save the trained MuZero here (SB3 zip)")
    parser.add_argument(
        "--checkpoint-minutes",
        type=float,
        default=None,
        help="with --save: also save MuZero every this many minutes of training, to SAVE-<minutes>min.zip",
    )
    parser.add_argument("--load", help="play a saved MuZero instead of training one")
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device for MuZero and MaskablePPO (cpu, cuda, auto); the table's budget is wall-clock, "
        "so results on a GPU are not comparable with this machine's",
    )
    parser.add_argument(
        "--ppo-minutes", type=float, default=None, help="MaskablePPO's budget (default: --minutes)"
    )
    parser.add_argument("--no-ppo", action="store_true", help="skip MaskablePPO")
    parser.add_argument(
        "--depth",
        type=int,
        default=2,
        help="connect four negamax depth (wrappers.ConnectFourNegamaxOpponent)",
    )
    parser.add_argument(
        "--n-envs", type=int, default=None, help="MuZero's self-play envs (default: muzero.yml)"
    )
    add_play_arguments(parser)
    parser.add_argument(
        "--muzero-kwargs",
        type=json.loads,
        default={},
        help="JSON overrides of MuZero's settings, e.g. '{\"num_simulations\": 50}' or "
        '\'{"self_play_kwargs": {"sampling_moves": 4}}\' (a group merges key by key); the Zoo\'s encodings '
        'apply: \'{"learning_rate": "lin_3e-3"}\' decays it linearly to 0 over the budget)',
    )
    return parser


def argument_problems(args: argparse.Namespace) -> list[str]:
    """What is wrong with the parsed command line (empty when nothing is)."""
    return [
        message
        for message, bad in (
            ("--minutes must be > 0", args.minutes <= 0 and not args.load),
            ("--ppo-minutes must be > 0 (or pass --no-ppo)", args.ppo_minutes <= 0 and not args.no_ppo),
            (
                "MaskablePPO needs sb3-contrib: pip install 'muzero-agents[bench]' (or pass --no-ppo)",
                not args.no_ppo and importlib.util.find_spec("sb3_contrib") is None,
            ),
            ("--games must be >= 1", args.games < 1),
            (
                "--checkpoint-minutes needs --save (not --load) and a value in (0, --minutes)",
                args.checkpoint_minutes is not None
                and (not args.save or bool(args.load) or not 0 < args.checkpoint_minutes < args.minutes),
            ),
            ("--depth must be >= 0", args.depth < 0),
            ("--n-envs must be >= 1", args.n_envs is not None and args.n_envs < 1),
            (
                "--play-simulations must be >= 1",
                args.play_simulations is not None and args.play_simulations < 1,
            ),
            ("--muzero-kwargs must be a JSON object", not isinstance(args.muzero_kwargs, dict)),
            (f"--load: no file {args.load}", bool(args.load) and not _save_exists(args.load)),
            (
                f"--device {args.device}: torch sees no CUDA device here (use cpu)",
                args.device.startswith("cuda") and not torch.cuda.is_available(),
            ),
        )
        if bad
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked; ``--ppo-minutes`` defaults to ``--minutes``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.ppo_minutes = args.minutes if args.ppo_minutes is None else args.ppo_minutes
    problems = argument_problems(args)
    if problems:
        parser.error("; ".join(problems))
    return args


def _save_exists(path: str) -> bool:
    return Path(path).is_file() or Path(f"{path}.zip").is_file()


def main(argv: list[str] | None = None) -> list[Row]:
    """Train (or load) MuZero and MaskablePPO, play each opponent with both sides, print the table."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.load:
        muzero, training = load_muzero(args.load, args.game, args.device)
    else:
        overrides = dict(args.muzero_kwargs)
        if args.n_envs is not None:
            overrides["n_envs"] = args.n_envs
        print(f"training MuZero by self-play on {args.game} for {args.minutes:g} min...", flush=True)
        checkpoints = (
            WallClockCheckpoints(args.checkpoint_minutes, args.save.removesuffix(".zip"), args.minutes)
            if args.checkpoint_minutes
            else None
        )
        muzero, training = train(
            "muzero", args.game, args.minutes, args.seed, overrides, checkpoints, args.device
        )
    if args.save:
        muzero.save(args.save)
        print(f"saved MuZero to {args.save}", flush=True)
    apply_play_options(muzero, args)
    rows = evaluate(muzero, training, args.game, args.games, args.seed, args.depth)
    if not args.no_ppo:
        print(
            f"training MaskablePPO against random on {args.game} for {args.ppo_minutes:g} min...", flush=True
        )
        ppo, ppo_training = train("maskable_ppo", args.game, args.ppo_minutes, args.seed, device=args.device)
        rows += evaluate(ppo, ppo_training, args.game, args.games, args.seed, args.depth)
    depth = f", negamax depth {args.depth}" if args.game == "connect_four" else ""
    print(f"\n{args.game}: {args.games} games per opponent and side, seed {args.seed}{depth}")
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()

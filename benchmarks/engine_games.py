"""Chess and shogi end to end: MuZero self-play speed, training, and games against real engines.

    python -m benchmarks.engine_games [--games chess shogi] [--minutes 5 | --train-moves N]
        [--simulations 50] [--eval-games 4] [--move-cap 256] [--n-envs 1 8] [--train-envs 1]
        [--seed 0] [--out FILE]

Per game, with MuZero's ``CnnPolicy`` (a small residual net by default: ``--channels``,
``--blocks``) searching ``--simulations`` per move:

1. acting speed: self-play moves per second with no gradient steps (``learning_starts`` above
   the moves played), for each ``--n-envs`` (a ``DummyVecEnv`` of self-play envs searched as
   one batch), after a short warm-up that compiles the Numba kernels;
2. training: ``learn()`` by self-play with gradient steps on, for ``--minutes`` of wall clock
   (default 5) or, with ``--train-moves N``, for N self-play moves (the same work on any machine;
   rounded up to whole steps of the envs), with ``--train-envs`` envs; self-play moves per second
   and gradient steps taken;
3. engine games: the trained model (deterministic, handed the legal-action masks) plays
   ``--eval-games`` complete games against Stockfish (Skill Level 0, depth 1) at chess or
   GNU Shogi (depth 1, its weakest and fastest) at shogi, alternating first and second.

Every move of every phase is checked legal: the self-play env ends a game with
``info["illegal_action"]`` when handed a move outside its mask, and the versus env does the
same for the model's moves; those are counted and must be 0. Games end by the rules or after
``--move-cap`` plies, which counts as a draw (shogi's own ``max_moves`` rule; chess, which has
no cap in PettingZoo, is truncated by ``TimeLimit`` in self-play and stopped by this script
against the engine before the model's move, so such a game can end one ply past the cap, on the
engine's reply). One table, printed and optionally written to ``--out``. One torch thread.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import DummyVecEnv

from benchmarks.boardgame_play import SIDES, UNBOUNDED_STEPS, Tally, WallClockBudget, gradient_steps
from benchmarks.harness.tasks import ENGINE_SETTINGS
from wrappers import make_board_game

ENGINES: dict[str, tuple[str, dict]] = {
    "chess": ("stockfish", ENGINE_SETTINGS["stockfish"]),
    "shogi": ("gnushogi", ENGINE_SETTINGS["gnushogi"]),
}
"""Game -> (engine name for ``make_board_game``, its weakest and fastest settings)."""

WARMUP_STEPS = 2  # vectorized steps before timing: Numba compilation and first inferences


@dataclass
class SelfPlayRun:
    """Self-play moves played in one ``learn()`` call, how long it took and what it produced."""

    n_envs: int
    moves: int
    seconds: float
    gradient_steps: int = 0
    games_finished: int = 0
    illegal: int = 0

    @property
    def moves_per_second(self) -> float:
        return self.moves / self.seconds if self.seconds > 0 else float("nan")


@dataclass
class EngineGames:
    """Complete games of the trained model against an engine, from the model's side."""

    engine: str
    tally: Tally = field(default_factory=Tally)
    plies: list[int] = field(default_factory=list)
    capped: int = 0
    illegal: int = 0
    engine_failures: int = 0  # games the engine ended by failing twice (not in the tally)

    @property
    def mean_plies(self) -> float:
        return float(np.mean(self.plies)) if self.plies else float("nan")


@dataclass
class GameReport:
    """Everything measured for one game."""

    game: str
    simulations: int
    acting: list[SelfPlayRun]
    training: SelfPlayRun
    engine: EngineGames | None


class SelfPlayCheck(BaseCallback):
    """Counts self-play moves, finished games and illegal moves (``info["illegal_action"]``)."""

    def __init__(self) -> None:
        super().__init__()
        self.games_finished = 0
        self.illegal = 0

    def _on_step(self) -> bool:
        infos, dones = self.locals["infos"], self.locals["dones"]
        self.illegal += sum(bool(info.get("illegal_action")) for info in infos)
        self.games_finished += int(np.sum(dones))
        return True


def game_kwargs(game: str, move_cap: int) -> dict:
    """The game's own settings: shogi ends a game at ``max_moves`` plies as a draw; chess has none."""
    return {"max_moves": move_cap} if game == "shogi" else {}


def make_selfplay_env(game: str, move_cap: int) -> gym.Env:
    """A self-play env whose games last at most ``move_cap`` plies (chess: truncated by TimeLimit)."""
    env = make_board_game(game, **game_kwargs(game, move_cap))
    if game == "chess":
        env = gym.wrappers.TimeLimit(env, max_episode_steps=move_cap)
    return env


def make_model(game: str, n_envs: int, args: argparse.Namespace, learning_starts: int, buffer_size: int):
    """MuZero's CnnPolicy on ``n_envs`` self-play envs, sized by the command line."""
    from muzero_agents import MuZero

    env = DummyVecEnv([partial(make_selfplay_env, game, args.move_cap)] * n_envs)
    network = dict(channels=args.channels, num_blocks=args.blocks, head_hidden=args.head_hidden)
    return MuZero(
        "CnnPolicy",
        env,
        num_simulations=args.simulations,
        batch_size=args.batch_size,
        buffer_size=buffer_size,
        learning_starts=learning_starts,
        replay_ratio=args.replay_ratio,
        discount=1.0,
        policy_kwargs=dict(network_kwargs=network),
        seed=args.seed,
        device="cpu",
    )


def measure_acting(game: str, n_envs: int, args: argparse.Namespace) -> SelfPlayRun:
    """Self-play moves per second with search only: the buffer never reaches ``learning_starts``."""
    warmup = WARMUP_STEPS * n_envs
    moves = n_envs * math.ceil(args.acting_moves / n_envs)
    capacity = warmup + moves + n_envs
    model = make_model(game, n_envs, args, learning_starts=capacity, buffer_size=capacity)
    model.learn(warmup)
    check = SelfPlayCheck()
    started = time.perf_counter()
    model.learn(moves, callback=check)
    seconds = time.perf_counter() - started
    model.env.close()
    return SelfPlayRun(
        n_envs, model.num_timesteps, seconds, gradient_steps(model), check.games_finished, check.illegal
    )


def train(game: str, args: argparse.Namespace) -> tuple[Any, SelfPlayRun]:
    """Self-play with gradient steps for ``args.minutes`` of wall clock, or ``args.train_moves``
    moves where given; the model and its run."""
    model = make_model(game, args.train_envs, args, args.learning_starts, args.buffer_size)
    check = SelfPlayCheck()
    started = time.perf_counter()
    if args.train_moves is not None:
        model.learn(args.train_moves, callback=check)
    else:
        model.learn(UNBOUNDED_STEPS, callback=CallbackList([check, WallClockBudget(60.0 * args.minutes)]))
    seconds = time.perf_counter() - started
    run = SelfPlayRun(
        args.train_envs,
        model.num_timesteps,
        seconds,
        gradient_steps(model),
        check.games_finished,
        check.illegal,
    )
    return model, run


def play_engine(model: Any, game: str, n_games: int, move_cap: int, seed: int) -> EngineGames:
    """``n_games`` complete games against the game's engine, sides alternating (first, second, ...).

    A game ends by the rules or after ``move_cap`` plies (a draw). Illegal model moves are
    counted (the env would end the game as a loss). A game the engine cut short by failing (see
    ``wrappers.VersusOpponentEnv``) is left out of the tally, counted and printed.
    """
    engine, engine_kwargs = ENGINES[game]
    env = make_board_game(game, opponent=engine, opponent_kwargs=engine_kwargs, **game_kwargs(game, move_cap))
    result = EngineGames(engine)
    try:
        for index in range(n_games):
            obs, _ = env.reset(seed=seed + index, options={"agent_side": SIDES[index % 2]})
            total, over, info = 0.0, False, {}
            while not over and len(env.history) < move_cap:
                action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
                obs, reward, terminated, truncated, info = env.step(int(np.asarray(action).reshape(-1)[0]))
                total += reward
                result.illegal += bool(info.get("illegal_action"))
                over = terminated or truncated
            if "engine_error" in info:  # not a result of play: left out of the tally, and said
                result.engine_failures += 1
                print(f"game {index}: the engine failed and the game was cut short: {info['engine_error']}")
                continue
            result.tally.add(total)
            result.plies.append(len(env.history))
            result.capped += int(total == 0 and len(env.history) >= move_cap)
    finally:
        env.close()
    return result


def check_engine(game: str) -> None:
    """Fail before training if the game's engine is not installed (the error names the package)."""
    from wrappers.engines import make_engine

    engine, engine_kwargs = ENGINES[game]
    make_engine(engine, **engine_kwargs).close()  # finds the binary; starts no process


def run_game(game: str, args: argparse.Namespace) -> GameReport:
    """Acting speed for each ``--n-envs``, then training, then the engine games."""
    acting = []
    for n_envs in args.n_envs:
        print(f"{game}: acting-only self-play, {n_envs} env(s), {args.acting_moves} moves...", flush=True)
        acting.append(measure_acting(game, n_envs, args))
    print(
        f"{game}: training by self-play for {training_budget(args)} ({args.train_envs} env(s))...", flush=True
    )
    model, training = train(game, args)
    engine = None
    if args.eval_games:
        print(f"{game}: {args.eval_games} game(s) against {ENGINES[game][0]}...", flush=True)
        engine = play_engine(model, game, args.eval_games, args.move_cap, args.seed * 1000)
    model.env.close()
    return GameReport(game, args.simulations, acting, training, engine)


COLUMNS = (
    ("game", 6),
    ("n_envs", 6),
    ("sims", 4),
    ("acting mv/s", 11),
    ("train mv/s", 10),
    ("train moves", 11),
    ("grad steps", 10),
    ("sp games", 8),
    ("engine", 9),
    ("games", 5),
    ("W/D/L", 8),
    ("capped", 6),
    ("mean plies", 10),
    ("illegal", 7),
)


def table_rows(report: GameReport, train_envs: int) -> list[list[str]]:
    """One row per env count: acting speed where measured; training and engine games on the
    training env count's row. ``illegal`` sums the illegal moves of that row's runs."""
    acting = {run.n_envs: run for run in report.acting}
    rows = []
    for n_envs in sorted(set(acting) | {train_envs}):
        run = acting.get(n_envs)
        row = [report.game, str(n_envs), str(report.simulations)]
        row.append(f"{run.moves_per_second:.1f}" if run else "-")
        illegal = run.illegal if run else 0
        if n_envs == train_envs:
            t, e = report.training, report.engine
            row += [f"{t.moves_per_second:.1f}", str(t.moves), str(t.gradient_steps), str(t.games_finished)]
            illegal += t.illegal
            if e is not None:
                tally = e.tally
                row += [e.engine, str(tally.games), f"{tally.wins}/{tally.draws}/{tally.losses}"]
                row += [str(e.capped), f"{e.mean_plies:.1f}"]
                illegal += e.illegal
            else:
                row += ["-"] * 5
        else:
            row += ["-"] * 9
        rows.append(row + [str(illegal)])
    return rows


def format_table(reports: list[GameReport], train_envs: int) -> str:
    """The benchmark's one table (columns: ``COLUMNS``)."""
    header = " ".join(f"{name:>{width}}" for name, width in COLUMNS)
    lines = [header, "-" * len(header)]
    for report in reports:
        for row in table_rows(report, train_envs):
            lines.append(" ".join(f"{cell:>{width}}" for cell, (_, width) in zip(row, COLUMNS)))
    return "\n".join(lines)


def training_budget(args: argparse.Namespace) -> str:
    """The training budget in words: minutes of wall clock, or self-play moves (rounded up to
    whole steps of the training envs, as learn() takes them)."""
    if args.train_moves is None:
        return f"{args.minutes:g} min"
    return f"{-(-args.train_moves // args.train_envs) * args.train_envs} moves"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--games", nargs="+", choices=sorted(ENGINES), default=["chess", "shogi"])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training wall clock per game (default 5)")
    budget.add_argument(
        "--train-moves", type=int, help="train for this many self-play moves per game instead of --minutes"
    )
    parser.add_argument("--simulations", type=int, default=50, help="search simulations per move")
    parser.add_argument("--eval-games", type=int, default=4, help="games vs the engine (sides alternate)")
    parser.add_argument("--move-cap", type=int, default=256, help="plies after which a game is a draw")
    parser.add_argument("--n-envs", type=int, nargs="+", default=[1, 8], help="env counts for acting speed")
    parser.add_argument("--acting-moves", type=int, default=200, help="timed self-play moves per env count")
    parser.add_argument("--train-envs", type=int, default=1, help="self-play envs while training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, default=32, help="residual tower width")
    parser.add_argument("--blocks", type=int, default=2, help="residual blocks per tower")
    parser.add_argument("--head-hidden", type=int, default=64, help="hidden units of each head")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--replay-ratio", type=float, default=0.25, help="gradient steps per self-play move")
    parser.add_argument("--learning-starts", type=int, default=256)
    parser.add_argument(
        "--buffer-size", type=int, default=5_000, help="replay capacity (shogi stores 11,259 floats a move)"
    )
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args(argv)
    args.games = list(dict.fromkeys(args.games))
    if args.minutes is None and args.train_moves is None:
        args.minutes = 5.0
    problems = [
        message
        for message, bad in (
            ("--minutes must be > 0", args.minutes is not None and not args.minutes > 0),
            ("--train-moves must be >= 1", args.train_moves is not None and args.train_moves < 1),
            ("--simulations must be >= 1", args.simulations < 1),
            ("--eval-games must be >= 0", args.eval_games < 0),
            ("--move-cap must be >= 2 plies", args.move_cap < 2),
            ("--n-envs values must be >= 1", any(n < 1 for n in args.n_envs)),
            ("--acting-moves must be >= 1", args.acting_moves < 1),
            ("--train-envs must be >= 1", args.train_envs < 1),
            ("--channels must be >= 1", args.channels < 1),
            ("--blocks must be >= 0", args.blocks < 0),
            ("--head-hidden must be >= 1", args.head_hidden < 1),
            ("--batch-size must be >= 1", args.batch_size < 1),
            ("--replay-ratio must be > 0", not args.replay_ratio > 0),
            ("--learning-starts must be >= 0", args.learning_starts < 0),
            (
                "--buffer-size must be >= --learning-starts and >= --train-envs",
                args.buffer_size < max(args.learning_starts, args.train_envs),
            ),
        )
        if bad
    ]
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv: list[str] | None = None) -> list[GameReport]:
    """Measure every game, print the table (and write it to ``--out``); returns the reports."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    if args.eval_games:
        for game in args.games:
            check_engine(game)
    reports = [run_game(game, args) for game in args.games]
    table = format_table(reports, args.train_envs)
    title = (
        f"engine games: {args.simulations} simulations, {training_budget(args)} of training per game, "
        f"move cap {args.move_cap} plies, seed {args.seed}; Stockfish skill 0 depth 1, GNU Shogi depth 1"
    )
    print(f"\n{title}\n{table}")
    if args.out:
        Path(args.out).write_text(f"{title}\n{table}\n")
        print(f"wrote {args.out}")
    return reports


if __name__ == "__main__":
    main()

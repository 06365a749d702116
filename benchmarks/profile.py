"""Where MuZero's training time goes: milliseconds per env step and per gradient step, by part.

    python -m benchmarks.profile                                   # every task, a few minutes on 2 cores
    python -m benchmarks.profile --tasks cartpole tictactoe --env-steps 2000 [--learning-starts N]

For each task one ``learn()`` runs for a short budget with timers wrapped around the parts'
methods for the duration of the run (the library is not changed): the env step, the observation
preparation, the search's initial inference, tree and recurrent inference, the replay's add and
sampling, the targets, Reanalyze, the loss's forward pass, backward and the optimizer, logging
and callbacks. A timed call counts its own time only: calls timed inside it (the network calls
inside a search, the search inside Reanalyze) count for their own part, so nothing counts twice.
The rest is the measured wall time less every part: the Python glue between them.

Time spent inside a gradient step (sampling, Reanalyze, targets, learner) is reported per
gradient step; everything else (self-play, replay add, logging) per env step (one env's
transition, as ``num_timesteps`` counts). The share column is each part's share of the whole
run, so the parts add up to 100%. The network share is initial and recurrent inference, forward,
backward and the optimizer: what a faster network or a GPU speeds up.

Tasks: CartPole-v1 (MlpPolicy), tic-tac-toe, connect four and MinAtar Breakout (CnnPolicy),
each with its ``benchmarks/muzero.yml`` entry (MinAtar's observations made uint8 channel-first
by ``wrappers.minatar``; needs ``minatar``), and Atari Pong (8 envs, 4 stacked frames,
CnnPolicy, default settings; needs ``ale-py`` and OpenCV). A task whose package is missing is skipped with the reason. Every run uses
the serial loop (``background_training=False``, also where the entry turns it on) so that each
part is timed alone, one torch thread, and a warm-up search before the timers start (Numba's
cached kernels, the traced network).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env, make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecFrameStack

import muzero_agents.learner as learner_module
from benchmarks.harness.zoo import zoo_config
from muzero_agents import MuZero
from muzero_agents.reanalyze import Reanalyzer

ACT, TRAIN = "env step", "gradient step"  # the two phases a part's time is counted in
PARTS = {  # part -> label, in the tables' order
    "env": "env step",
    "obs": "observation preparation",
    "initial": "initial inference",
    "tree": "search tree (plan less network)",
    "recurrent": "recurrent inference",
    "replay_add": "replay add",
    "replay_sample": "replay sample, priorities",
    "targets": "targets (make_batch)",
    "reanalyze": "Reanalyze (less network, search)",
    "forward": "forward (muzero_loss)",
    "backward": "backward",
    "optimizer": "optimizer (clip, step, average)",
    "logging": "logging and callbacks",
    "rest": "rest (Python glue)",
}
NETWORK_PARTS = ("initial", "recurrent", "forward", "backward", "optimizer")
CALLBACK_METHODS = ("on_step", "on_rollout_start", "on_rollout_end", "update_locals", "on_training_end")


class TaskSkipped(Exception):
    """A task that cannot run here (a package is missing); the message says why."""


class Profiler:
    """Seconds per (phase, part): each timed call's own time, less that of the timed calls inside it.

    A call inherits the phase of the timed call around it unless it names one (the gradient step).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.exclusive: dict[tuple[str, str], float] = defaultdict(float)
        self.inclusive: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: Counter[tuple[str, str]] = Counter()
        self._stack: list[list] = []  # [phase, seconds of the timed calls inside]

    @contextlib.contextmanager
    def timing(self, part: str, phase: str | None = None) -> Iterator[None]:
        phase = phase or (self._stack[-1][0] if self._stack else ACT)
        frame = [phase, 0.0]
        self._stack.append(frame)
        started = self.clock()
        try:
            yield
        finally:
            elapsed = self.clock() - started
            self._stack.pop()
            self.exclusive[phase, part] += elapsed - frame[1]
            self.inclusive[phase, part] += elapsed
            self.calls[phase, part] += 1
            if self._stack:
                self._stack[-1][1] += elapsed

    def wrap(self, part: str, function: Callable, phase: str | None = None) -> Callable:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.timing(part, phase):
                return function(*args, **kwargs)

        return timed


@contextlib.contextmanager
def timed_attribute(profiler: Profiler, owner: Any, name: str, part: str, phase: str | None = None):
    """``owner.name`` (a method of an object or class, or a module's function) timed as ``part``
    while the context lasts, then put back as it was."""
    own = vars(owner)
    had, old = name in own, own.get(name)
    setattr(owner, name, profiler.wrap(part, getattr(owner, name), phase))
    try:
        yield
    finally:
        if had:
            setattr(owner, name, old)
        else:
            delattr(owner, name)


def timed_parts(model: MuZero, callback: BaseCallback) -> list[tuple[Any, str, str]]:
    """(owner, attribute, part) of every method timed during a run."""
    policy, replay, logger = model.policy, model.replay_buffer, model.logger
    return [
        *((model.env, name, "env") for name in ("step", "reset", "env_method")),
        (policy, "prepare_obs", "obs"),
        (policy, "initial_inference_numpy", "initial"),
        (policy, "recurrent_numpy", "recurrent"),
        (model.planner, "plan", "tree"),
        (replay, "add", "replay_add"),
        (replay, "sample", "replay_sample"),
        (replay, "update_priorities", "replay_sample"),
        (learner_module, "make_batch", "targets"),
        (Reanalyzer, "refresh", "reanalyze"),
        (learner_module, "muzero_loss", "forward"),
        (torch.Tensor, "backward", "backward"),
        (torch.nn.utils, "clip_grad_norm_", "optimizer"),
        (policy.optimizer, "step", "optimizer"),
        (learner_module, "update_average", "optimizer"),
        *((logger, name, "logging") for name in ("record", "record_mean", "dump")),
        *((model, name, "logging") for name in ("dump_logs", "_record_training", "_update_info_buffer")),
        (model.actor, "statistics", "logging"),
        *((callback, name, "logging") for name in CALLBACK_METHODS),
    ]


@contextlib.contextmanager
def instrumented(profiler: Profiler, model: MuZero, callback: BaseCallback) -> Iterator[None]:
    """Every part of ``model`` timed, and its gradient steps counted in the gradient-step phase."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(timed_attribute(profiler, model, "_gradient_step", "rest", TRAIN))
        for owner, name, part in timed_parts(model, callback):
            stack.enter_context(timed_attribute(profiler, owner, name, part))
        yield


class _NoCallback(BaseCallback):
    """What ``learn(callback=None)`` amounts to: SB3's callback calls, doing nothing."""

    def _on_step(self) -> bool:
        return True


# ---------------------------------------------------------------------------------- the tasks


@dataclass
class Task:
    """A task: how to build its model, its default budget and ``learning_starts`` (None: its settings')."""

    label: str
    build: Callable[[int, int | None], tuple[MuZero, list[str]]]
    env_steps: int
    learning_starts: int | None = None


def _serial(kwargs: dict[str, Any], learning_starts: int | None, notes: list[str]) -> dict[str, Any]:
    """Settings with the serial loop and ``learning_starts`` (when given) in place."""
    kwargs = dict(kwargs)
    if kwargs.pop("background_training", False):
        notes.append("its entry trains in the background; here the serial loop times each part alone")
    if learning_starts is not None:
        kwargs["learning_starts"] = learning_starts
        notes.append(f"learning_starts={learning_starts}")
    return kwargs


def _from_yml(env_id: str, make_env: Any, seed: int, learning_starts: int | None) -> tuple[MuZero, list[str]]:
    config = zoo_config("muzero", env_id)
    notes = [f"settings: benchmarks/muzero.yml [{env_id}]"]
    kwargs = _serial(config.kwargs, learning_starts, notes)
    env = make_vec_env(make_env, n_envs=config.n_envs, seed=seed)
    return MuZero(config.policy, env, seed=seed, verbose=0, **kwargs), notes


def build_cartpole(seed: int, learning_starts: int | None) -> tuple[MuZero, list[str]]:
    return _from_yml("CartPole-v1", "CartPole-v1", seed, learning_starts)


def _board_game(game: str, env_id: str) -> Callable[[int, int | None], tuple[MuZero, list[str]]]:
    def build(seed: int, learning_starts: int | None) -> tuple[MuZero, list[str]]:
        from wrappers import make_board_game

        try:  # the game's module is imported when the env is built
            return _from_yml(env_id, functools.partial(make_board_game, game), seed, learning_starts)
        except ImportError as error:
            raise TaskSkipped(f"the board games need the 'games' extra ({error})") from error

    return build


def build_breakout(seed: int, learning_starts: int | None) -> tuple[MuZero, list[str]]:
    try:
        from wrappers.minatar import make_minatar
    except ImportError as error:
        raise TaskSkipped(f"MinAtar is not installed ({error}): pip install minatar") from error
    env_id = "MinAtar/Breakout-v1"
    try:
        make_minatar(env_id).close()
    except ImportError as error:
        raise TaskSkipped(str(error)) from error
    return _from_yml(env_id, functools.partial(make_minatar, env_id), seed, learning_starts)


def build_pong(seed: int, learning_starts: int | None) -> tuple[MuZero, list[str]]:
    try:
        import ale_py
        import cv2  # noqa: F401  (SB3's AtariWrapper resizes frames with it)
        import gymnasium
    except ImportError as error:
        raise TaskSkipped(
            f"Atari needs ale-py and OpenCV ({error}): pip install 'muzero-agents[atari]'"
        ) from error
    gymnasium.register_envs(ale_py)
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=8, seed=seed), 4)
    notes = ["settings: MuZero's defaults (batch 128, K=5, 25 simulations), 8 envs, 4 stacked frames"]
    kwargs = _serial({}, learning_starts, notes)
    return MuZero("CnnPolicy", env, seed=seed, verbose=0, **kwargs), notes


TASKS = {
    "cartpole": Task("CartPole-v1", build_cartpole, 2000),
    "tictactoe": Task("tic-tac-toe", _board_game("tictactoe", "BoardGame/TicTacToe-v0"), 800),
    "connect_four": Task("connect four", _board_game("connect_four", "BoardGame/ConnectFour-v0"), 1536),
    "breakout": Task("MinAtar Breakout", build_breakout, 600),
    "pong": Task("Atari Pong", build_pong, 64, learning_starts=56),
}


# ---------------------------------------------------------------------------------- measuring


@dataclass
class TaskProfile:
    """One task's run: its counts and the seconds per (phase, part)."""

    name: str
    label: str
    n_envs: int
    env_steps: int
    gradient_steps: int
    seconds: dict[tuple[str, str], float]
    inclusive: dict[tuple[str, str], float]
    notes: list[str] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return sum(self.seconds.values())

    def part_s(self, part: str, phase: str | None = None) -> float:
        phases = (ACT, TRAIN) if phase is None else (phase,)
        return sum(self.seconds.get((each, part), 0.0) for each in phases)

    def per_step_ms(self, part: str | None, phase: str) -> float | None:
        """ms of ``part`` (None: all parts) per env step (ACT) or per gradient step (TRAIN)."""
        count = self.env_steps if phase == ACT else self.gradient_steps
        if count == 0:
            return None
        parts = PARTS if part is None else (part,)
        return 1000.0 * sum(self.part_s(each, phase) for each in parts) / count

    def share(self, part: str) -> float:
        return 100.0 * self.part_s(part) / self.wall_s

    @property
    def network_share(self) -> float:
        return sum(self.share(part) for part in NETWORK_PARTS)


def profile_task(name: str, env_steps: int | None, seed: int, learning_starts: int | None) -> TaskProfile:
    """Build ``name``'s model and time one ``learn()`` of ``env_steps`` (None: the task's default)."""
    torch.set_num_threads(1)
    task = TASKS[name]
    starts = task.learning_starts if learning_starts is None else learning_starts
    model, notes = task.build(seed, starts)
    model.predict(model.env.reset(), deterministic=True)  # warm-up: Numba's kernels, the traced network
    model.set_logger(Logger(folder=None, output_formats=[]))  # as verbose=0, and kept by learn
    profiler, callback = Profiler(), _NoCallback()
    with instrumented(profiler, model, callback), profiler.timing("rest", ACT):
        model.learn(env_steps or task.env_steps, callback=callback)
    return TaskProfile(
        name=name,
        label=task.label,
        n_envs=model.n_envs,
        env_steps=model.num_timesteps,
        gradient_steps=profiler.calls[TRAIN, "rest"],
        seconds=dict(profiler.exclusive),
        inclusive=dict(profiler.inclusive),
        notes=notes,
    )


# ---------------------------------------------------------------------------------- tables


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_task(profile: TaskProfile) -> str:
    """One task's table: part | ms per env step | ms per gradient step | share %."""
    p = profile
    lines = [
        f"{p.label}: {p.env_steps} env steps ({p.n_envs} envs), {p.gradient_steps} gradient steps, "
        f"{p.wall_s:.1f} s, serial loop",
        *(f"  {note}" for note in p.notes),
        f"{'part':<34} {'ms/env step':>12} {'ms/grad step':>13} {'share %':>8}",
    ]
    for part, label in PARTS.items():
        act, train = p.per_step_ms(part, ACT), p.per_step_ms(part, TRAIN)
        lines.append(f"{label:<34} {_ms(act):>12} {_ms(train):>13} {p.share(part):>8.1f}")
    act, train = p.per_step_ms(None, ACT), p.per_step_ms(None, TRAIN)
    lines.append(f"{'total':<34} {_ms(act):>12} {_ms(train):>13} {100.0:>8.1f}")
    search = p.inclusive.get((ACT, "tree"), 0.0) * 1000.0 / max(p.env_steps, 1)
    lines.append(
        f"network share: {p.network_share:.1f}% (initial and recurrent inference, forward, backward, optimizer)"
    )
    lines.append(f"self-play search incl. its network calls: {search:.3f} ms per env step")
    if p.gradient_steps:
        reanalyze = p.inclusive.get((TRAIN, "reanalyze"), 0.0) * 1000.0 / p.gradient_steps
        lines.append(f"Reanalyze incl. its network calls and search: {reanalyze:.3f} ms per gradient step")
    return "\n".join(lines)


def _biggest(profile: TaskProfile) -> str:
    part = max(PARTS, key=profile.share)
    return f"{PARTS[part]} ({profile.share(part):.0f}%)"


def format_summary(profiles: list[TaskProfile]) -> str:
    """task | env steps/s | gradient steps/s | network share % | biggest part, over the whole run."""
    lines = [f"{'task':<18} {'env steps/s':>11} {'grad steps/s':>12} {'network %':>9}  biggest part"]
    for p in profiles:
        lines.append(
            f"{p.label:<18} {p.env_steps / p.wall_s:>11.1f} {p.gradient_steps / p.wall_s:>12.2f} "
            f"{p.network_share:>9.1f}  {_biggest(p)}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[TaskProfile]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--env-steps", type=int, default=None, help="env steps per task (default: each task's)"
    )
    parser.add_argument(
        "--learning-starts", type=int, default=None, help="in place of each task's (small budgets need few)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profiles = []
    for name in args.tasks:
        try:
            profile = profile_task(name, args.env_steps, args.seed, args.learning_starts)
        except TaskSkipped as reason:
            print(f"{TASKS[name].label}: skipped: {reason}\n", flush=True)
            continue
        profiles.append(profile)
        print(format_task(profile) + "\n", flush=True)
    if profiles:
        print("summary (over each whole run)")
        print(format_summary(profiles))
    return profiles


if __name__ == "__main__":
    main()

"""MuZero's speed on pixels: a gradient step, self-play, learning and replay memory per step.

    python -m benchmarks.pixels                       # Atari Pong and MinAtar Breakout, a few minutes
    python -m benchmarks.pixels --tasks pong --threads 2 --grad-steps 10

For each task one model is built as a user would build it and measured in four ways:

- **gradient step**: seconds per ``model.train(1)`` (batch 128, K=5 by default; the sampling,
  Reanalyze and targets included), the median of ``--grad-steps`` steps after one warm-up step;
- **self-play**: env steps per second of ``learn()`` before ``learning_starts`` (search and env
  only, no training);
- **learning**: env steps per second of ``learn()`` once training runs at the model's
  ``replay_ratio``;
- **replay memory**: bytes the replay keeps per stored step (its ring arrays per slot, plus what
  it keeps beside the ring, per stored step).

Tasks: ``pong`` is ``VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=8), 4)`` with
``CnnPolicy`` and MuZero's defaults (needs ``ale-py`` and OpenCV); ``breakout`` is MinAtar
Breakout with its ``benchmarks/muzero.yml`` entry (needs ``minatar``). To compare two versions of
the library, run this file against each on the same machine at the same time of day, or better,
alternately (``PYTHONPATH`` picks the library).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from muzero_agents import MuZero


def make_pong(seed: int) -> tuple[MuZero, str]:
    import ale_py
    import gymnasium
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    gymnasium.register_envs(ale_py)
    env = VecFrameStack(make_atari_env("PongNoFrameskip-v4", n_envs=8, seed=seed), 4)
    return MuZero("CnnPolicy", env, seed=seed), "8 envs, 4 stacked frames, MuZero's defaults"


def make_breakout(seed: int) -> tuple[MuZero, str]:
    from stable_baselines3.common.env_util import make_vec_env

    from benchmarks.harness.zoo import zoo_config
    from wrappers.minatar import make_minatar

    config = zoo_config("muzero", "MinAtar/Breakout-v1")
    env = make_vec_env(
        make_minatar, n_envs=config.n_envs, seed=seed, env_kwargs={"env_id": "MinAtar/Breakout-v1"}
    )
    model = MuZero(config.policy, env, seed=seed, **config.kwargs)
    return model, f"{config.n_envs} envs, benchmarks/muzero.yml [MinAtar/Breakout-v1]"


TASKS: dict[str, tuple[str, Callable[[int], tuple[MuZero, str]]]] = {
    "pong": ("Atari Pong", make_pong),
    "breakout": ("MinAtar Breakout", make_breakout),
}


def replay_bytes_per_step(replay: Any) -> float:
    """Bytes per stored step: each ring array's bytes per slot, plus the arrays kept beside the
    ring (per stored step). Counts the arrays' full size, committed or not."""
    ring_shape = (replay.rows, replay.n_envs)
    per_slot, beside = 0.0, 0
    for value in vars(replay).values():
        arrays = value.values() if isinstance(value, dict) else [value]
        for array in arrays:
            if not isinstance(array, np.ndarray):
                continue
            if array.shape[:2] == ring_shape:
                per_slot += array.nbytes / replay.capacity
            else:
                beside += array.nbytes
    return per_slot + beside / max(1, len(replay))


def measure(model: MuZero, self_play_steps: int, learn_steps: int, grad_steps: int) -> dict[str, float]:
    """The four figures of the module docstring for one model."""
    model.predict(model.env.reset(), deterministic=True)  # warm-up: compiled kernels, traces
    model.learning_starts = self_play_steps + model.n_envs  # no gradient step in this phase
    start = time.perf_counter()
    model.learn(self_play_steps)
    self_play_rate = model.num_timesteps / (time.perf_counter() - start)
    assert model._n_updates == 0, "the self-play phase took gradient steps"
    model.train(1, batch_size=model.batch_size)  # warm-up
    seconds = []
    for _ in range(grad_steps):
        start = time.perf_counter()
        model.train(1, batch_size=model.batch_size)
        seconds.append(time.perf_counter() - start)
    done = model.num_timesteps
    start = time.perf_counter()
    model.learn(learn_steps, reset_num_timesteps=False)
    learn_rate = (model.num_timesteps - done) / (time.perf_counter() - start)
    return {
        "grad_step_s": statistics.median(seconds),
        "self_play": self_play_rate,
        "learning": learn_rate,
        "replay_bytes": replay_bytes_per_step(model.replay_buffer),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["pong", "breakout"])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--self-play-steps", type=int, default=800)
    parser.add_argument("--learn-steps", type=int, default=400)
    parser.add_argument("--grad-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"python -m benchmarks.pixels  (torch {torch.__version__}, {args.threads} torch threads)")
    header = f"{'task':18s} {'grad step s':>11s} {'self-play steps/s':>17s} {'learning steps/s':>16s}"
    rows = []
    for name in args.tasks:
        label, make = TASKS[name]
        try:
            model, notes = make(args.seed)
        except ImportError as error:
            print(f"{label}: skipped ({error})")
            continue
        figures = measure(model, args.self_play_steps, args.learn_steps, args.grad_steps)
        print(
            f"{label}: {notes}; batch {model.batch_size}, K={model.unroll_steps}, replay_ratio {model.replay_ratio}"
        )
        rows.append(
            f"{label:18s} {figures['grad_step_s']:11.3f} {figures['self_play']:17.1f} "
            f"{figures['learning']:16.1f} {figures['replay_bytes'] / 1024:10.1f}"
        )
    print(header + f" {'replay KB/step':>10s}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

"""Random legal moves per second: our shogi env vs raw cshogi vs OpenSpiel's shogi via Shimmy.

    python -m benchmarks.shogi_speed [--seconds 3] [--rounds 5] [--max-moves 512]

Every route plays uniformly random legal moves for a fixed wall-clock time, starting a new game
when one ends (checkmate, repetition, or ``--max-moves`` plies; OpenSpiel's own cap is far
longer, so its games are also cut at ``--max-moves``), and counts the moves played. The PettingZoo
routes go through the AEC loop a user writes: ``last()`` for the observation and mask, a random
index among the mask's ones, ``step()``. One process, one core, one run for all routes; the
routes take turns in short rounds and the median round counts, so load from other processes on
the shared machine hits them alike.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

import numpy as np


def cshogi_raw(seconds: float, max_moves: int, seed: int = 0) -> tuple[int, float]:
    """cshogi alone: generate the legal list, push a random one (the floor of any wrapper)."""
    import cshogi

    rng = random.Random(seed)
    board = cshogi.Board()
    moves_played, plies = 0, 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        if moves_played % 256 == 0 and time.perf_counter() > deadline:
            break
        moves = list(board.legal_moves)
        if not moves or plies >= max_moves or board.is_draw() == cshogi.REPETITION_DRAW:
            board.reset()
            plies = 0
            continue
        board.push(moves[rng.randrange(len(moves))])
        moves_played += 1
        plies += 1
    return moves_played, time.perf_counter() - start


def aec_loop(
    make_env: Callable[[], object], seconds: float, max_moves: int, seed: int = 0
) -> tuple[int, float]:
    """A PettingZoo AEC env through ``last()`` / mask / ``step()``; mask in obs or in info."""
    rng = random.Random(seed)
    env = make_env()
    env.reset(seed=seed)
    moves_played, plies = 0, 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        if moves_played % 256 == 0 and time.perf_counter() > deadline:
            break
        obs, _, termination, truncation, info = env.last()
        if termination or truncation or plies >= max_moves:
            env.reset(seed=seed)
            plies = 0
            continue
        mask = obs["action_mask"] if isinstance(obs, dict) else info["action_mask"]
        legal = np.flatnonzero(mask.astype(bool))  # nonzero on int8 is ~10x slower than on bool
        env.step(int(legal[rng.randrange(len(legal))]))
        moves_played += 1
        plies += 1
    return moves_played, time.perf_counter() - start


def ours_raw_fast(seconds: float, max_moves: int, seed: int = 0) -> tuple[int, float]:
    """Our raw env driven through ``legal_actions()`` (no observation built, no mask scan)."""
    from wrappers.envs import shogi_v0

    rng = random.Random(seed)
    env = shogi_v0.raw_env(max_moves=max_moves)
    moves_played = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        if moves_played % 256 == 0 and time.perf_counter() > deadline:
            break
        legal = env.legal_actions()
        if len(legal) == 0:
            env.reset()
            continue
        env.step(int(legal[rng.randrange(len(legal))]))
        moves_played += 1
    return moves_played, time.perf_counter() - start


def _shimmy_factory() -> tuple[Callable[[], object] | None, str]:
    try:
        import pyspiel  # noqa: F401
        from shimmy import OpenSpielCompatibilityV0
    except ImportError as error:
        return None, f"not installed ({error}); pip install 'shimmy[openspiel]'"
    return (lambda: OpenSpielCompatibilityV0(game_name="shogi")), ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per route, all rounds")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="routes take turns this many times; the median round is reported "
        "(the machine is shared, so interleaving keeps the ratios fair)",
    )
    parser.add_argument("--max-moves", type=int, default=512, help="plies per game")
    args = parser.parse_args(argv)
    slice_s = args.seconds / args.rounds

    from wrappers.envs import shogi_v0

    routes: dict[str, Callable[[], tuple[int, float]] | None] = {
        "cshogi raw (legal list + push)": lambda: cshogi_raw(slice_s, args.max_moves),
        "ours: shogi_v0.env() AEC loop": lambda: aec_loop(
            lambda: shogi_v0.env(max_moves=args.max_moves), slice_s, args.max_moves
        ),
        "ours: raw_env + legal_actions()": lambda: ours_raw_fast(slice_s, args.max_moves),
    }
    shimmy_name = "OpenSpiel shogi via Shimmy AEC loop"
    shimmy_env, why = _shimmy_factory()
    routes[shimmy_name] = (
        None if shimmy_env is None else (lambda: aec_loop(shimmy_env, slice_s, args.max_moves))
    )

    rates: dict[str, list[float]] = {name: [] for name, run in routes.items() if run}
    for _ in range(args.rounds):
        for name, run in routes.items():
            if run is not None:
                moves, elapsed = run()
                rates[name].append(moves / elapsed)
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    shimmy_rate = medians.get(shimmy_name)
    header = f"{'route':<38} {'moves/s':>12} {'x Shimmy':>9}"
    print(f"{header}   (median of {args.rounds} rounds)")
    for name, rate in medians.items():
        ratio = f"{rate / shimmy_rate:9.1f}" if shimmy_rate else f"{'n/a':>9}"
        print(f"{name:<38} {rate:12,.0f} {ratio}")
    if shimmy_env is None:
        print(f"{shimmy_name:<38} skipped: {why}")


if __name__ == "__main__":
    main()

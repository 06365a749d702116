"""Where a connect-four MuZero's losses to negamax come from: the losing move and its refutation's length.

    python -m benchmarks.connect_four_losses MODEL.zip [--games 100] [--seed 0] [--depth 2]
        [--probe-depth 6] [--play-simulations N] [--play-weights newest]

Plays the games ``benchmarks.boardgame_play`` evaluates (same seeds, same opponent) against
depth-``--depth`` negamax, and in every lost game looks for the learner's losing move: walking
back from the end, its last move after which the opponent wins by force within the probe's
horizon although another move was not yet proven lost (negamax at ``--probe-depth``, which sees
wins up to ``probe-depth + 1`` plies after the move). The table counts those moves by how many
plies after them the opponent completes four (1: a threat left unblocked), and the losses in
which no move was proven wrong at that depth (the mistake, if any, lies deeper). Short
refutations point at search and tactics; deep or unproven ones at the value of positions.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.negamax import WIN, ROWS, COLS, from_observation, move_values, winning_columns

#: Negamax scores a win found at ``moves`` stones as ``WIN - moves``; anything above this is a proven win.
PROVEN = WIN - ROWS * COLS - 1


@dataclass(frozen=True)
class Decision:
    """One of the learner's moves: the observation it saw (its own stones in plane 0) and what it played."""

    observation: np.ndarray
    action: int


@dataclass(frozen=True)
class Mistake:
    """A move proven to lose while another move was not: where it was played and how it is refuted."""

    stones_before: int
    plies_to_loss: int
    missed_win: bool


def losing_move(decisions: list[Decision], probe_depth: int) -> Mistake | None:
    """The learner's last move that turned a position not proven lost into one proven lost.

    Walks back from the final move: while every legal move of a position is proven lost, the game
    was decided earlier, so the search goes on to the previous move. None when no move of the game
    is proven wrong at ``probe_depth``.
    """
    for decision in reversed(decisions):
        stones, mask, moves = from_observation(decision.observation)
        values = move_values(stones, mask, moves, probe_depth)
        if max(values.values()) <= -PROVEN:
            continue  # already lost whatever it played: the mistake came earlier
        chosen = values[decision.action]
        if chosen > -PROVEN:
            return None  # its move was not proven lost, and positions before it were not lost either
        losing_stones = WIN + chosen  # the opponent completes four with the (losing_stones + 1)-th stone
        return Mistake(
            stones_before=moves,
            plies_to_loss=int(losing_stones) - moves,
            missed_win=bool(winning_columns(stones, mask)),
        )
    return None


def play_recorded(model, env, seed: int) -> tuple[float, list[Decision]]:
    """One game as ``benchmarks.boardgame_play.play_games`` plays it, keeping the learner's decisions."""
    obs, _ = env.reset(seed=seed)
    total, done, decisions = 0.0, False, []
    while not done:
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=True)
        action = int(np.asarray(action).reshape(-1)[0])
        decisions.append(Decision(np.array(obs, copy=True), action))
        obs, reward, terminated, truncated, _ = env.step(action)
        total += reward
        done = terminated or truncated
    return total, decisions


def tabulate(side: str, games: int, losses: int, mistakes: list[Mistake | None], probe_depth: int) -> str:
    """One line per side: losses, then their losing moves by refutation length."""
    found = [m for m in mistakes if m is not None]
    lengths = Counter(m.plies_to_loss for m in found)
    spread = "  ".join(f"{plies} ply: {lengths[plies]}" for plies in sorted(lengths)) or "-"
    mean_stones = np.mean([m.stones_before for m in found]) if found else float("nan")
    return (
        f"{side:<7} {games:>5} {losses:>6}   proven at depth {probe_depth}: {len(found):>3} "
        f"({spread}; missed an own win: {sum(m.missed_win for m in found)}; "
        f"at {mean_stones:.1f} stones on average)   not proven: {losses - len(found)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a saved connect-four MuZero (SB3 zip)")
    parser.add_argument("--games", type=int, default=100, help="games per side")
    parser.add_argument("--seed", type=int, default=0, help="the evaluation seed boardgame_play used")
    parser.add_argument("--depth", type=int, default=2, help="the opponent's negamax depth")
    parser.add_argument("--probe-depth", type=int, default=6, help="negamax depth that proves a move lost")
    parser.add_argument("--play-simulations", type=int, default=None)
    parser.add_argument(
        "--play-weights", choices=("newest",), default=None, help="newest: play without the weight average"
    )
    args = parser.parse_args(argv)
    if args.games < 1 or args.probe_depth < 1:
        parser.error("--games and --probe-depth must be >= 1")
    torch.set_num_threads(1)
    from benchmarks.boardgame_play import SIDES, board_task, load_muzero, make_opponent
    from benchmarks.tasks import EVAL_SEED_OFFSET
    from wrappers import make_board_game

    model, _ = load_muzero(args.model, "connect_four")
    if args.play_simulations is not None:
        model.play_simulations = args.play_simulations
    if args.play_weights == "newest":
        model.ema_decay = None
    print(f"connect_four: {args.games} games a side against negamax depth {args.depth}, seed {args.seed}")
    print("side    games losses")
    for side_index, side in enumerate(SIDES):
        opponent = make_opponent("connect_four", "negamax", args.depth)
        kwargs = board_task("connect_four").game_kwargs
        env = make_board_game("connect_four", opponent=opponent, agent_side=side, **kwargs)
        first_seed = EVAL_SEED_OFFSET + args.seed * 1_000_000 + side_index * 100_000
        mistakes, losses = [], 0
        for game in range(args.games):
            outcome, decisions = play_recorded(model, env, first_seed + game)
            if outcome < 0:
                losses += 1
                mistakes.append(losing_move(decisions, args.probe_depth))
        env.close()
        print(tabulate(side, args.games, losses, mistakes, args.probe_depth), flush=True)


if __name__ == "__main__":
    main()

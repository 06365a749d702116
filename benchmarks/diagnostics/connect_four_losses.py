"""Where a connect-four MuZero's losses to negamax come from: the losing move and its refutation's length.

    python -m benchmarks.diagnostics.connect_four_losses MODEL.zip [--games 200] [--seed 0] [--depth 2]
        [--probe-depth 7] [--play-simulations N] [--play-search ...] [--play-weights average|newest]

Replays the games ``benchmarks.boardgame_play`` evaluates against depth-``--depth`` negamax (same
seeds, same opponent, same play options; ``--games`` as there, so the counts match its table) and
in every lost game looks for the learner's losing move: in the last position where some move was
not yet proven lost, the move it chose, if negamax at ``--probe-depth`` proves that one lost. The
probe proves refutations of up to ``probe-depth`` plies, the opponent's reply being ply 1 (an
odd count: an even depth proves no more than the odd one below it). The table counts those moves
by their refutation's length against the longest defence (1: a threat left unblocked), and the
losses in which no move was proven wrong at that depth (the mistake, if any, lies deeper).
Short refutations point at search and tactics; deep or unproven ones at the value of positions.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch

from benchmarks.boardgame_play import (
    SIDES,
    add_play_arguments,
    apply_play_options,
    eval_first_seed,
    load_muzero,
    play_game,
    versus_env,
)
from wrappers.opponents.negamax import COLS, ROWS, WIN, from_observation, move_values, winning_columns

#: Negamax scores a win found at ``moves`` stones as ``WIN - moves``; anything above this is a proven win.
PROVEN = WIN - ROWS * COLS - 1


@dataclass(frozen=True)
class Decision:
    """One of the learner's moves: the observation it saw (its own stones in plane 0) and what it played."""

    observation: np.ndarray
    action: int


@dataclass(frozen=True)
class Mistake:
    """A move proven to lose while another move was not.

    ``stones_before``: stones on the board before the move; ``plies_to_loss``: the length of the
    opponent's forced win against the longest defence (1: it wins with its reply), not how long the
    game went on; ``missed_win``: the learner had a winning move instead.
    """

    stones_before: int
    plies_to_loss: int
    missed_win: bool


def losing_move(decisions: list[Decision], probe_depth: int) -> Mistake | None:
    """In the last position where some move is not proven lost, the chosen move if it is proven lost.

    Walks back from the final move: while every legal move of a position is proven lost, the game
    was decided earlier, so the walk goes on to the previous move. None when the chosen move of
    that position is not proven lost at ``probe_depth`` (the loss came from something deeper).
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
    """One game as ``benchmarks.boardgame_play.play_games`` plays it, keeping the learner's moves."""
    decisions = []
    outcome = play_game(
        model, env, seed, lambda obs, action: decisions.append(Decision(np.array(obs), action))
    )
    return outcome, decisions


def tabulate(side: str, games: int, losses: int, mistakes: list[Mistake | None], probe_depth: int) -> str:
    """One line per side: losses, then their losing moves by refutation length."""
    found = [m for m in mistakes if m is not None]
    lengths = Counter(m.plies_to_loss for m in found)
    spread = "  ".join(f"{plies} ply: {lengths[plies]}" for plies in sorted(lengths)) or "-"
    where = f"at {np.mean([m.stones_before for m in found]):.1f} stones on average" if found else "none"
    return (
        f"{side:<7} {games:>5} {losses:>6}   proven at depth {probe_depth}: {len(found):>3} "
        f"({spread}; missed an own win: {sum(m.missed_win for m in found)}; {where})   "
        f"not proven: {losses - len(found)}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a saved connect-four MuZero (SB3 zip)")
    parser.add_argument("--games", type=int, default=200, help="games per side (boardgame_play's --games)")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (boardgame_play's --seed)")
    parser.add_argument("--depth", type=int, default=2, help="the opponent's negamax depth")
    parser.add_argument("--probe-depth", type=int, default=7, help="refutations proven, in plies")
    add_play_arguments(parser)
    args = parser.parse_args(argv)
    if (
        args.games < 1
        or args.probe_depth < 1
        or (args.play_simulations is not None and args.play_simulations < 1)
    ):
        parser.error("--games, --probe-depth and --play-simulations must be >= 1")
    torch.set_num_threads(1)
    model, _ = load_muzero(args.model, "connect_four")
    apply_play_options(model, args)
    print(f"connect_four: {args.games} games a side against negamax depth {args.depth}, seed {args.seed}")
    print("side    games losses")
    for side_index, side in enumerate(SIDES):
        env = versus_env("connect_four", "negamax", side, args.depth)
        mistakes, losses = [], 0
        for game in range(args.games):
            outcome, decisions = play_recorded(model, env, eval_first_seed(args.seed, side_index) + game)
            if outcome < 0:
                losses += 1
                mistakes.append(losing_move(decisions, args.probe_depth))
        env.close()
        print(tabulate(side, args.games, losses, mistakes, args.probe_depth), flush=True)


if __name__ == "__main__":
    main()

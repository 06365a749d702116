"""Whether a connect-four MuZero sees one-move tactics: the learned reward, taking wins, blocking.

    python -m benchmarks.diagnostics.connect_four_diagnostics MODEL.zip [--games 300] [--seed 0]
        [--play-simulations N] [--play-search muzero|gumbel]

On the positions of ``--games`` games of uniformly random play (seeded), for a saved MuZero
(``benchmarks.boardgame_play --save``):

1. the learned model's reward one dynamics step from the real observation, for every legal move,
   winning moves apart (``benchmarks.diagnostics.model_rewards``);
2. how often its search (``predict``, deterministic, masked) plays a winning move where one
   exists, and blocks where it has no win and the opponent threatens to win in exactly one column.

Depth-2 negamax (the benchmark's opponent) never misses either, so a model that does loses to it.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.diagnostics.model_rewards import one_step_rewards, reward_table
from muzero_agents.settings import SETTINGS
from wrappers import make_board_game
from wrappers.opponents.negamax import COLS, from_observation, winning_columns

SEARCHES = SETTINGS["search"].choices  # MuZero's root searches, for --play-search
POSITIONS_PER_CHECK = 300


def random_play_positions(games: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(observations, legal masks) of every position of ``games`` uniformly random games."""
    env = make_board_game("connect_four")
    rng = np.random.default_rng(seed)
    observations, masks = [], []
    for game in range(games):
        obs, _ = env.reset(seed=seed + game)
        done = False
        while not done:
            mask = env.action_masks()
            observations.append(obs.copy())
            masks.append(mask.copy())
            obs, _, terminated, truncated, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
            done = terminated or truncated
    return np.array(observations), np.array(masks, dtype=bool)


def tactics(observations: np.ndarray) -> tuple[list[list[int]], list[list[int]]]:
    """Per position: the mover's winning columns, and the opponent's (its threats)."""
    own, threats = [], []
    for obs in observations:
        mine, mask, _ = from_observation(obs)
        own.append(winning_columns(mine, mask))
        threats.append(winning_columns(mine ^ mask, mask))
    return own, threats


def hit_rate(model, observations: np.ndarray, masks: np.ndarray, targets: list[list[int]]) -> float:
    """Share of positions where the search's move is one of that position's target columns."""
    actions, _ = model.predict(observations, action_masks=masks, deterministic=True)
    return float(np.mean([int(a) in t for a, t in zip(np.asarray(actions).reshape(-1), targets)]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a saved connect-four MuZero (SB3 zip)")
    parser.add_argument("--games", type=int, default=300, help="random games the positions come from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--play-simulations",
        type=int,
        default=None,
        help="search simulations per move (sets play_kwargs['num_simulations']; default: the model's own)",
    )
    parser.add_argument(
        "--play-search", choices=SEARCHES, default=None, help="root search (default: as trained)"
    )
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error("--games must be >= 1")
    torch.set_num_threads(1)
    from benchmarks.boardgame_play import load_muzero, play_simulations

    model, _ = load_muzero(args.model, "connect_four")
    if args.play_simulations is not None:
        model.play_kwargs["num_simulations"] = args.play_simulations
    if args.play_search is not None:
        model.search = args.play_search
    observations, masks = random_play_positions(args.games, args.seed)
    own, threats = tactics(observations)
    winning = np.zeros((len(observations), COLS), dtype=bool)
    for row, columns in enumerate(own):
        winning[row, columns] = True
    print(f"the model's reward one step from each of {len(observations)} positions, every legal move")
    print(reward_table(*one_step_rewards(model, observations, masks, winning)))
    can_win = [i for i, cols in enumerate(own) if cols]
    must_block = [i for i, (o, t) in enumerate(zip(own, threats)) if not o and len(t) == 1]
    print(f"\n{model.search} search at {play_simulations(model)} simulations, deterministic")
    for label, rows, targets in (
        ("takes an immediate win:", can_win[:POSITIONS_PER_CHECK], own),
        ("blocks a single threat:", must_block[:POSITIONS_PER_CHECK], threats),
    ):
        if not rows:
            print(f"{label:<31} no such position; play more --games")
            continue
        rate = hit_rate(model, observations[rows], masks[rows], [targets[i] for i in rows])
        print(f"{label:<31} {rate:.2f} of {len(rows)}")


if __name__ == "__main__":
    main()

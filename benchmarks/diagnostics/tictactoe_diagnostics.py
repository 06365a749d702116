"""Where a tic-tac-toe MuZero is wrong: its values against exact minimax, and its first mistakes.

    python -m benchmarks.diagnostics.tictactoe_diagnostics MODEL.zip [--games 200] [--seed 0]

Three tables for a saved MuZero (``benchmarks.boardgame_play --save``):

1. the network's value of every reachable non-terminal position against the exact minimax
   value (+1 win, 0 draw, -1 loss for the player to move), by ply: mean absolute error, the
   share of positions off by more than 1 (the wrong outcome), mean predicted and true value;
2. the learned model's reward for every legal move of those positions, one dynamics step from
   the real observation: winning moves (true reward +1) against the others (true reward 0);
3. playing second against the perfect player (uniform among optimal moves), the first
   non-optimal move of each game, counted by position (moves so far, move played, optimal moves).

Values it cannot get right on positions self-play never visits show up in (1). The search finds
a one-move win or a missing block only if the model predicts the winning move's reward (2).
The losses of the benchmark's "second against minimax" row show up in (3).
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
import torch

from benchmarks.diagnostics.model_rewards import one_step_rewards
from benchmarks.diagnostics.model_rewards import reward_table as format_reward_table
from wrappers import make_board_game
from wrappers.opponents import TICTACTOE_LINES, TicTacToeMinimaxOpponent, tictactoe_value

Cells = tuple[int, ...]  # mover's marks +1, opponent's -1, empty 0, in action order


def reachable_positions() -> dict[Cells, int]:
    """Every non-terminal position reachable from the empty board, with its ply."""
    found: dict[Cells, int] = {}

    def visit(cells: Cells, ply: int) -> None:
        if (
            cells in found
            or 0 not in cells
            or any(all(cells[i] == -1 for i in line) for line in TICTACTOE_LINES)
        ):
            return
        found[cells] = ply
        for action in (a for a in range(9) if cells[a] == 0):
            board = list(cells)
            board[action] = 1
            visit(tuple(-c for c in board), ply + 1)

    visit((0,) * 9, 0)
    return found


def observations(positions: list[Cells]) -> np.ndarray:
    """PettingZoo's tic-tac-toe observations (3, 3, 2): mover's plane, then the opponent's."""
    cells = np.array(positions).reshape(-1, 3, 3)
    return np.stack([cells == 1, cells == -1], axis=-1).astype(np.int8)


def value_table(model) -> str:
    """The network's value against the minimax value of every reachable position, by ply."""
    positions = reachable_positions()
    cells = list(positions)
    model.policy.set_training_mode(False)  # as the search runs it (a loaded model is in training mode)
    _, predicted, _ = model.policy.initial_inference_numpy(observations(cells))
    true = np.array([tictactoe_value(c) for c in cells])
    plies = np.array([positions[c] for c in cells])
    lines = [f"{'ply':>3} {'positions':>9} {'MAE':>5} {'off by >1':>9} {'mean v':>7} {'true v':>7}"]
    for ply in range(9):
        at = plies == ply
        error = np.abs(predicted[at] - true[at])
        lines.append(
            f"{ply:>3} {at.sum():>9} {error.mean():>5.2f} {np.mean(error > 1):>9.2f} "
            f"{predicted[at].mean():>+7.2f} {true[at].mean():>+7.2f}"
        )
    return "\n".join(lines)


def completes_a_line(cells: Cells, action: int) -> bool:
    """Whether the mover (+1) playing the empty cell ``action`` makes three in a row."""
    return any(action in line and all(cells[i] == 1 or i == action for i in line) for line in TICTACTOE_LINES)


def model_reward_table(model) -> str:
    """The model's reward for each legal move of every reachable position, winning moves apart."""
    cells = list(reachable_positions())
    legal = np.array([[c[a] == 0 for a in range(9)] for c in cells])
    winning = np.array([[c[a] == 0 and completes_a_line(c, a) for a in range(9)] for c in cells])
    return format_reward_table(*one_step_rewards(model, observations(cells), legal, winning))


def first_mistakes(model, games: int, seed: int) -> Counter:
    """(moves so far, move played, optimal moves) of the model's first non-optimal move as second."""
    env = make_board_game("tictactoe")
    rng = np.random.default_rng(seed)
    mistakes: Counter = Counter()
    for game in range(games):
        obs, _ = env.reset(seed=game)
        history: list[int] = []
        done = False
        while not done:
            optimal = TicTacToeMinimaxOpponent.best_actions(obs)
            if len(history) % 2 == 0:
                action = int(rng.choice(optimal))
            else:
                action = int(model.predict(obs, action_masks=env.action_masks(), deterministic=True)[0])
                if action not in optimal:
                    mistakes[(tuple(history), action, tuple(sorted(optimal)))] += 1
                    break
            history.append(action)
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    return mistakes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="a saved tic-tac-toe MuZero (SB3 zip)")
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.games < 1:
        parser.error("--games must be >= 1")
    torch.set_num_threads(1)
    from benchmarks.boardgame_play import load_muzero

    model, _ = load_muzero(args.model, "tictactoe")
    print("network value against exact minimax, all reachable non-terminal positions")
    print(value_table(model))
    print("\nthe model's reward one step from each real position, every legal move")
    print(model_reward_table(model))
    mistakes = first_mistakes(model, args.games, args.seed)
    print(
        f"\nfirst non-optimal move as second against minimax: {sum(mistakes.values())} of {args.games} games"
    )
    for (history, played, optimal), count in mistakes.most_common(10):
        print(f"{count:>4}  after {list(history)} played {played}, optimal {list(optimal)}")


if __name__ == "__main__":
    main()

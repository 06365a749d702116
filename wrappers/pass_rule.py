"""A self-imposed Go rule for the learner: pass only when the board is settled.

Self-play on a small board with komi collapses without it: white wins if both players pass at
once, so white learns to answer a pass with a pass; black, whose every line looks lost to an
untrained network, finds passing no worse than playing, and from then on every game is two
moves long and teaches nothing (MuZero learned exactly this on 9x9 in an hour here). Forbidding
the pass for a fixed number of opening moves only moves the collapse there: in an hour of
9x9 self-play with passing allowed from move 40, both sides passed at move 40, and against a
random player that plays on, the learner passed every move and lost 38 of 40 games.

So the learner may pass only when every other legal move would fill one of its own eyes (an
empty point whose on-board neighbours are all its stones), the rule Monte-Carlo Go playouts
use to end games, or to answer the other side's pass (so an opponent that passes can end the
game; the first pass of self-play still needs a settled board). Self-play games then run until
the board is settled, and what the stones do decides the outcome. The rule restricts only the
actions this env reports to the learner (``action_masks()``): an opponent behind a versus env
may pass at any time, and a pass the learner plays anyway is still legal.

Games that do not settle (random-ish players fill their own eyes, and captures reopen the board
for hundreds of moves) end after ``max_moves`` moves and are scored as they stand, by the same
area scoring as a finished game (an even score goes to white, as in PettingZoo's Go), as
AlphaGo Zero ended over-long games; this does change the game for both sides. A truncation
would leave early self-play, whose games almost all run that long, without an outcome to learn.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wrappers.selfplay import SelfPlayEnv
from wrappers.versus import VersusOpponentEnv


def own_eyes(board: np.ndarray, player: int) -> np.ndarray:
    """Empty points of ``board`` (1 black, -1 white, 0 empty) whose on-board neighbours are all
    ``player``'s stones (the board's edge counts as the player's)."""
    own = np.pad(board == player, 1, constant_values=True)
    neighbours_own = own[:-2, 1:-1] & own[2:, 1:-1] & own[1:-1, :-2] & own[1:-1, 2:]
    return (board == 0) & neighbours_own


class PassWhenSettled(gym.Wrapper):
    """Masks Go's pass out of ``action_masks()`` while a legal move that fills no own eye exists.

    :param env: a Go ``SelfPlayEnv`` or ``VersusOpponentEnv`` (``wrappers.make_board_game``).
    :param max_moves: moves (both sides') after which an unfinished game ends and is scored.
    """

    def __init__(self, env: gym.Env, max_moves: int) -> None:
        is_go = isinstance(env, (SelfPlayEnv, VersusOpponentEnv)) and hasattr(_pettingzoo_env(env), "_go")
        if not is_go:
            raise TypeError(
                "PassWhenSettled wraps a Go env straight from wrappers.make_board_game('go', ...); "
                f"got {env!r}. Pass pass_when_settled=True to make_board_game instead."
            )
        super().__init__(env)
        if isinstance(max_moves, bool) or not isinstance(max_moves, (int, np.integer)) or max_moves < 1:
            raise ValueError(f"max_moves must be an integer >= 1, got {max_moves!r}.")
        self.pass_action = int(env.action_space.n) - 1
        self.max_moves = int(max_moves)
        self._ended = False

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        self._ended = False
        obs, info = self.env.reset(**kwargs)
        return obs, self._with_mask(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """The wrapped step; at ``max_moves`` the game ends with the board's result as reward."""
        if self._ended:
            raise RuntimeError("The game ended at the move limit: call reset() before step().")
        obs, reward, terminated, truncated, info = self.env.step(action)
        if not (terminated or truncated) and len(self.env.history) >= self.max_moves:
            position = _go_position(self.env)
            black_result = 1.0 if position.result() == 1 else -1.0  # an even score: white's
            # the reward is the learner's: the mover's in self-play, the agent's against an opponent
            if isinstance(self.env, VersusOpponentEnv):
                learner = 1 if self.env.agent_player == 0 else -1
            else:
                learner = -int(position.to_play)
            reward, terminated = black_result * learner, True
            info = {**info, "move_limit": True}
            self._ended = True
        return obs, reward, terminated, truncated, self._with_mask(info)

    def _with_mask(self, info: dict) -> dict:
        """``info["action_mask"]`` is the learner's mask, as ``action_masks()`` gives it."""
        return {**info, "action_mask": self.action_masks()} if "action_mask" in info else info

    def action_masks(self) -> np.ndarray:
        mask = self.env.action_masks()
        history = self.env.history
        if history and history[-1] == self.pass_action:
            return mask  # answering a pass
        position = _go_position(self.env)
        eyes = own_eyes(np.asarray(position.board), int(position.to_play)).reshape(-1)
        if (mask[: self.pass_action] & ~eyes).any():
            mask = mask.copy()
            mask[self.pass_action] = False
        return mask


def _pettingzoo_env(env: SelfPlayEnv | VersusOpponentEnv) -> Any:
    """The raw PettingZoo env behind a self-play or versus env."""
    return getattr(env, "game_env", env).aec_env.unwrapped


def _go_position(env: SelfPlayEnv | VersusOpponentEnv) -> Any:
    """PettingZoo Go's current position (board and player to move)."""
    return _pettingzoo_env(env)._go

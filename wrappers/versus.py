"""Versus-opponent adapter: a two-player game as a single-agent env against a fixed opponent.

The learner plays one side; the opponent (random, any SB3 model, an engine) answers inside
``step``. From the learner's view this is an ordinary single-agent env, so any SB3 algorithm
(MaskablePPO through ``action_masks()``) trains on it and ``evaluate_policy`` measures win
rates. The moves played so far are kept for the opponent (engines replay them).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wrappers.checks import action_index
from wrappers.engines.base import EngineError
from wrappers.opponents import RESIGN, GameState, Opponent
from wrappers.selfplay import SelfPlayEnv

AGENT_SIDES = ("first", "second", "alternate")


class VersusOpponentEnv(gym.Env):
    """The learner plays ``agent_side`` of a two-player PettingZoo game against ``opponent``.

    The reward is the learner's: its own move's reward plus what the opponent's reply brings
    it (a loss when the opponent wins). With ``agent_side="alternate"`` the learner moves first
    in even-numbered episodes and second in odd ones, and ``reset(seed=s)`` sets the episode
    number to ``s`` (so seeded resets are reproducible and ``seed=0, 1, 2...`` alternate);
    ``reset(options={"agent_side": "second"})`` picks a side for one episode; other options go
    to the game's own ``reset``. Every observation, the last one included, is the board as the
    learner sees it.
    If the opponent plays an illegal move or resigns it loses, and ``info`` says so.

    Engine failures: an engine opponent that dies, hangs past its ``time_limit``, answers
    something that is not a move or plays a move the mask forbids is restarted once and asked
    the same position again (``EngineOpponent.act``). If it fails again, ``step`` ends the
    episode as truncated with reward 0 for the reply and ``info["engine_error"]`` holding the
    error message; the failed reply is never played, nor is the learner's next move played for
    the opponent. A failure on the opponent's opening move (learner second) makes ``reset``
    raise the ``EngineError``. Any other error inside ``step`` or ``reset`` propagates and leaves
    the episode over: the next ``step`` asks for ``reset()``. A non-integer action raises
    TypeError before anything is played (see ``SelfPlayEnv``).

    :param aec_env: a two-player PettingZoo AEC env, or a ``SelfPlayEnv`` over one.
    :param opponent: an object with ``act(observation, action_mask, game_state) -> int``.
    :param agent_side: ``"first"``, ``"second"`` or ``"alternate"``.
    :param game: the game's registry name, handed to the opponent (engines check it).
    :param game_config: the game's settings (e.g. ``board_size``, ``komi``) for the opponent.
    """

    is_two_player_zero_sum = False  # single-agent from the learner's view
    num_players = 1

    def __init__(
        self,
        aec_env: Any,
        opponent: Opponent,
        agent_side: str = "first",
        game: str | None = None,
        game_config: dict | None = None,
    ):
        super().__init__()
        if agent_side not in AGENT_SIDES:
            raise ValueError(f"agent_side must be one of {AGENT_SIDES}; got {agent_side!r}.")
        if not callable(getattr(opponent, "act", None)):
            raise TypeError(
                f"opponent must have act(observation, action_mask, game_state); got {type(opponent).__name__}. "
                "Wrap an SB3 model with wrappers.PolicyOpponent(model)."
            )
        self.game_env = aec_env if isinstance(aec_env, SelfPlayEnv) else SelfPlayEnv(aec_env)
        if self.game_env.num_players != 2:
            raise ValueError(
                f"VersusOpponentEnv needs a two-player game; this one has {self.game_env.num_players}."
            )
        self.opponent = opponent
        self.agent_side = agent_side
        self.game = game
        self.game_config = dict(game_config or {})
        self.observation_space = self.game_env.observation_space
        self.action_space = self.game_env.action_space
        self.render_mode = self.game_env.render_mode
        self.metadata = self.game_env.metadata
        self.agent_player = 0
        self._episode = 0
        self._obs: np.ndarray | None = None
        self._over = False

    @property
    def history(self) -> list[int]:
        """Actions played this game by both sides, in order."""
        return self.game_env.history

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._episode = seed  # "alternate" then starts on side seed % 2, reproducibly
            self.action_space.seed(seed)
            if callable(getattr(self.opponent, "seed", None)):
                self.opponent.seed(seed + 1)
        options = dict(options or {})
        self.agent_player = self._side_index(options.pop("agent_side", self.agent_side))
        self._episode += 1
        self._over = True  # until the learner's turn is reached: a failure leaves no game to step
        self._obs, _ = self.game_env.reset(seed=seed, options=options or None)  # the rest is the game's
        info: dict = {}
        self._opponent_turns(info)
        if "engine_error" in info:
            raise EngineError(f"The opponent failed on its opening move: {info['engine_error']}")
        if self.game_env.game_over or info.get("opponent_resigned"):
            raise RuntimeError("The game ended before the learner's first move; nothing to learn.")
        self._over = False
        return self._obs, self._info(info)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._over:
            raise RuntimeError("The game is over: call reset() before step().")
        action = action_index(action, int(self.action_space.n))
        self._over = True  # until this step completes: an error leaves no half-played turn
        self._obs, reward, terminated, truncated, info = self.game_env.step(action)
        info = {k: v for k, v in info.items() if k not in ("to_play", "action_mask")}
        if not (terminated or truncated):
            reply_reward, terminated, truncated = self._opponent_turns(info)
            reward += reply_reward
        self._over = terminated or truncated
        if self._over and self.game_env.to_play != self.agent_player:  # ended before the opponent's turn
            self._obs = self.game_env.observation_of(self.agent_player)  # the learner's view, as always
        return self._obs, float(reward), terminated, truncated, self._info(info)

    def action_masks(self) -> np.ndarray:
        """Legal actions of the learner (sb3-contrib's convention)."""
        return self.game_env.action_masks()

    def game_state(self) -> GameState:
        """What the opponent is shown besides the board."""
        return GameState(
            game=self.game,
            history=list(self.history),
            to_play=self.game_env.to_play,
            config=self.game_config,
            env=self.game_env.aec_env,
        )

    def render(self) -> Any:
        return self.game_env.render()

    def close(self) -> None:
        self.game_env.close()
        if callable(getattr(self.opponent, "close", None)):
            self.opponent.close()

    def _side_index(self, side: str) -> int:
        if side == "alternate":
            return self._episode % 2
        if side not in AGENT_SIDES:
            raise ValueError(f"agent_side must be one of {AGENT_SIDES}; got {side!r}.")
        return 0 if side == "first" else 1

    def _opponent_turns(self, info: dict) -> tuple[float, bool, bool]:
        """Let the opponent move until the learner's turn: (learner's reward, terminated, truncated)."""
        reward, terminated, truncated = 0.0, False, False
        while not (terminated or truncated) and self.game_env.to_play != self.agent_player:
            try:
                action = self.opponent.act(self._obs, self.game_env.action_masks(), self.game_state())
            except EngineError as err:  # already restarted and retried once by the engine
                info["engine_error"] = str(err)
                return reward, False, True
            if action == RESIGN:
                info["opponent_resigned"] = True
                return reward + 1.0, True, False
            self._obs, _, terminated, truncated, step_info = self.game_env.step(action)
            if step_info.get("illegal_action"):
                info["opponent_illegal_action"] = True
            reward += self.game_env.reward_of(self.agent_player)
        return reward, terminated, truncated

    def _info(self, info: dict) -> dict:
        info.update(agent_player=self.agent_player, action_mask=self.action_masks())
        return info

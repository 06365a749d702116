"""Self-play adapter: a turn-based PettingZoo AEC game as one Gymnasium env.

Every step is one move by whichever player is to move, so a single policy plays both sides.
The observation is the board as the player to move sees it, ``action_masks()`` gives that
player's legal moves (sb3-contrib's convention), and the reward is the reward of the player
who just moved (the mover). ``info["to_play"]`` names the player to move. Two-player zero-sum
search (MuZero) reads ``is_two_player_zero_sum`` from the env and negates values at every ply,
so the players must strictly alternate (as in every game ``wrappers`` registers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from wrappers.checks import action_index, boolean, finite_number
from wrappers.symmetries import Symmetry

ILLEGAL_ACTION_REWARD = -1.0


class SelfPlayEnv(gym.Env):
    """A turn-based PettingZoo AEC env seen as a single-agent Gymnasium env of alternating moves.

    The legal-action mask is read from the observation dict's ``"action_mask"`` (PettingZoo
    classic) or from ``infos[agent]["action_mask"]`` (Shimmy's OpenSpiel envs). An illegal
    action never reaches the game: the episode ends, the mover gets ``illegal_reward`` and
    ``info["illegal_action"]`` is True (PettingZoo's convention). An action that is not an
    integer (``1.7``, ``"4"``, ``True``) raises TypeError and changes nothing; numpy integers
    and one-element integer arrays (what SB3 passes) are fine.

    Rewards: the mover's reward for its move. Where the game pays only one player at the end
    (say the winner) and the game is zero-sum, the mover's reward is the negated reward of
    the other player, so every terminal step carries the outcome from the mover's view.

    :param aec_env: a PettingZoo AEC env (e.g. ``tictactoe_v3.env()``); reset here once, and
        from then on stepped only through this env (it caches the current position).
    :param zero_sum: whether the game is two-player zero-sum; sets ``is_two_player_zero_sum``.
    :param illegal_reward: the mover's reward for an illegal action.
    :param symmetries: the board's symmetries (``wrappers.symmetries``), exposed as
        ``board_symmetries`` for MuZero's training-data augmentation; empty where the rules have none.
        They index this env's observations (a wrapper that reshapes them makes MuZero refuse them).
    """

    def __init__(
        self,
        aec_env: Any,
        zero_sum: bool = True,
        illegal_reward: float = ILLEGAL_ACTION_REWARD,
        symmetries: Sequence[Symmetry] = (),
    ):
        super().__init__()
        _check_is_aec(aec_env)
        self.aec_env = aec_env
        self.agent_names: list[str] = list(aec_env.possible_agents)
        self.num_players: int = len(self.agent_names)
        zero_sum = boolean("zero_sum", zero_sum)  # "no" would be true
        self.is_two_player_zero_sum: bool = zero_sum and self.num_players == 2
        # a NaN would reach the learner as the env's reward
        self.illegal_reward = finite_number("illegal_reward", illegal_reward, "-1.0")
        self.board_symmetries: list[Symmetry] = list(symmetries)
        self.render_mode = getattr(aec_env, "render_mode", None)
        self.metadata = dict(getattr(aec_env, "metadata", {}))
        self.observation_space, self.action_space = _board_spaces(aec_env, self.agent_names[0])
        aec_env.reset()
        self._mask_source = _find_mask_source(aec_env)
        self._board, self._mask = self._read_position()
        self.history: list[int] = []
        self._step_rewards = np.zeros(self.num_players)
        self._over = False

    # ---- Gymnasium API -------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start a new game; the first observation is for the first player to move."""
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        self.aec_env.reset(seed=seed, options=options)
        self._board, self._mask = self._read_position()
        self.history = []
        self._step_rewards = np.zeros(self.num_players)
        self._over = False
        return self._observation(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Play ``action`` for the player to move; the reward is that player's."""
        if self._over:
            raise RuntimeError("The game is over: call reset() before step().")
        action = action_index(action, int(self.action_space.n))
        mover = self.to_play
        if not self._is_legal(action):
            return self._illegal_step(mover, action)
        self.aec_env.step(action)
        self._board, self._mask = self._read_position()
        self.history.append(action)
        self._step_rewards = self._read_step_rewards()
        terminated, truncated = self._game_over()
        self._over = terminated or truncated
        return self._observation(), self.reward_of(mover), terminated, truncated, self._info()

    def action_masks(self) -> np.ndarray:
        """Legal actions of the player to move, as a bool array (sb3-contrib's convention)."""
        return self._mask.copy()

    def render(self) -> Any:
        """Delegate to the PettingZoo env's ``render()`` (its ``render_mode`` applies)."""
        return self.aec_env.render()

    def close(self) -> None:
        self.aec_env.close()

    # ---- game facts other adapters read --------------------------------------------------
    @property
    def to_play(self) -> int:
        """Index (into ``possible_agents``) of the player to move."""
        return self.agent_names.index(self.aec_env.agent_selection)

    @property
    def game_over(self) -> bool:
        return self._over

    def reward_of(self, player: int) -> float:
        """Reward of ``player`` from the last step (zero-sum fallback explained in the class)."""
        own = float(self._step_rewards[player])
        other = float(self._step_rewards[1 - player]) if self.is_two_player_zero_sum else 0.0
        return own if own != 0.0 or other == 0.0 else -other

    # ---- internals -----------------------------------------------------------------------
    def _read_position(self) -> tuple[np.ndarray, np.ndarray]:
        """Board and legal mask of the player to move, read once per position (observing
        can be costly: PettingZoo's chess generates its legal moves on each call)."""
        agent = self.aec_env.agent_selection
        obs = self.aec_env.observe(agent)
        board = obs["observation"] if isinstance(obs, dict) else obs
        if self._mask_source == "observation":
            mask = obs["action_mask"]
        else:
            mask = self.aec_env.infos[agent]["action_mask"]
        return np.asarray(board), np.asarray(mask).astype(bool)

    def observation_of(self, player: int) -> np.ndarray:
        """The board as ``player`` (an index into ``possible_agents``) sees it now."""
        obs = self.aec_env.observe(self.agent_names[player])
        return self._observation(obs["observation"] if isinstance(obs, dict) else obs)

    def _observation(self, board: np.ndarray | None = None) -> np.ndarray:
        # a fresh contiguous copy: some envs reuse one buffer, and users keep what they get
        board = self._board if board is None else board
        return np.array(board, dtype=self.observation_space.dtype, order="C", copy=True)

    def _info(self) -> dict:
        return {"to_play": self.to_play, "action_mask": self.action_masks()}

    def _is_legal(self, action: int) -> bool:
        return 0 <= action < self.action_space.n and bool(self._mask[action])

    def _illegal_step(self, mover: int, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        rewards = np.zeros(self.num_players)
        rewards[mover] = self.illegal_reward
        if self.is_two_player_zero_sum:
            rewards[1 - mover] = -self.illegal_reward
        self._step_rewards = rewards
        self._over = True
        info = self._info()
        info.update(illegal_action=True, illegal_action_value=action)
        return self._observation(), self.reward_of(mover), True, False, info

    def _read_step_rewards(self) -> np.ndarray:
        rewards = self.aec_env.rewards
        return np.array([float(rewards.get(name, 0.0)) for name in self.agent_names])

    def _game_over(self) -> tuple[bool, bool]:
        env = self.aec_env
        if not env.agents:
            return True, False
        agent = env.agent_selection
        terminated = bool(env.terminations.get(agent, False))
        truncated = bool(env.truncations.get(agent, False)) and not terminated
        return terminated, truncated


def _check_is_aec(env: Any) -> None:
    needed = ("possible_agents", "observe", "step", "reset", "observation_space")
    missing = [name for name in needed if not hasattr(env, name)]
    if missing:
        raise TypeError(
            f"SelfPlayEnv needs a PettingZoo AEC env (e.g. tictactoe_v3.env()); got {type(env).__name__} "
            f"without {missing}. Wrap parallel envs with pettingzoo.utils.parallel_to_aec first."
        )


def _board_spaces(env: Any, agent: str) -> tuple[spaces.Box, spaces.Discrete]:
    obs_space = env.observation_space(agent)
    if isinstance(obs_space, spaces.Dict):
        if "observation" not in obs_space.spaces:
            raise ValueError(
                f"The observation dict has keys {list(obs_space.spaces)}, but SelfPlayEnv needs an "
                "'observation' entry holding the board (PettingZoo classic's layout)."
            )
        obs_space = obs_space["observation"]
    if not isinstance(obs_space, spaces.Box):
        raise TypeError(f"SelfPlayEnv needs a Box board observation; got {obs_space}.")
    action_space = env.action_space(agent)
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(f"SelfPlayEnv needs a Discrete action space; got {action_space}.")
    return obs_space, spaces.Discrete(int(action_space.n))


def _find_mask_source(env: Any) -> str:
    """Where the legal-action mask lives: the observation dict or ``infos`` (Shimmy style)."""
    agent = env.agent_selection
    obs = env.observe(agent)
    if isinstance(obs, dict) and "action_mask" in obs:
        return "observation"
    info = env.infos.get(agent, {}) if hasattr(env, "infos") else {}
    if "action_mask" in info:
        return "info"
    raise ValueError(
        "SelfPlayEnv needs the legal actions, but this env gives no 'action_mask' in its "
        "observation dict nor in infos[agent]. Fix: use an env that returns "
        "{'observation', 'action_mask'} from observe() (PettingZoo classic) or puts "
        "'action_mask' in infos (Shimmy's OpenSpiel envs), or wrap it so that it does."
    )

"""Shogi as a PettingZoo AEC environment, on cshogi for the rules.

Use it like PettingZoo's classic games::

    from wrappers.envs import shogi_v0
    env = shogi_v0.env()
    env.reset(seed=0)
    for agent in env.agent_iter():
        obs, reward, termination, truncation, info = env.last()
        action = None if termination or truncation else my_policy(obs)  # obs["action_mask"]
        env.step(action)

Agents: ``player_0`` is sente (black, moves first), ``player_1`` gote. Actions: the AlphaZero /
MuZero encoding, 9 x 9 x 139 = 11,259 indices from the mover's perspective (layout in
``wrappers/envs/shogi/encoding.py``). Observations: ``{"observation": float32 [9, 9, 47],
"action_mask": int8 [11259]}`` from the observing player's perspective (channels in
``wrappers/envs/shogi/observation.py``); the mask is all zeros for the player not to move.

Game end, rewards +1 / -1 / 0 (``info["reason"]`` says why): the side to move has no legal move
(``"checkmate"``, or ``"stalemate"``, also a loss in shogi); the same position for the fourth time
(``"sennichite"``, a draw, or ``"perpetual_check"``: the side that checked with every move since
the first occurrence loses); ``max_moves`` plies played (``"move_cap"``, a draw, as in AlphaZero,
reported as termination). An illegal action (in range, not in the mask) follows PettingZoo's
``TerminateIllegalWrapper`` convention: the game ends, the mover gets -1, the opponent 0,
``info["illegal_move"]`` is True; an index outside the action space raises ``ValueError``.
Entering-king declarations (nyugyoku) are not implemented: such games run on to the move cap.
"""

from __future__ import annotations

import operator
from typing import Any, ClassVar

import cshogi
import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.utils import EzPickle
from pettingzoo import AECEnv
from pettingzoo.utils import wrappers
from pettingzoo.utils.env_logger import EnvLogger

from wrappers.envs.shogi import encoding
from wrappers.envs.shogi.encoding import NUM_ACTIONS
from wrappers.envs.shogi.observation import NUM_CHANNELS, PlaneBuilder
from wrappers.envs.shogi.render import board_text
from wrappers.envs.shogi.repetition import SENNICHITE_OCCURRENCES, RepetitionTracker
from wrappers.envs.shogi.sfen import check_sfen

AGENTS = ("player_0", "player_1")
DEFAULT_MAX_MOVES = 512
_LEGAL_CACHE_SIZE = 4096


def env(**kwargs: Any) -> AECEnv:
    """The shogi env wrapped as PettingZoo's classic games are (order enforcing).

    Illegal actions are handled by the raw env itself, so ``TerminateIllegalWrapper`` is not
    needed; out-of-range indices raise ``ValueError`` there.
    """
    return _OrderEnforcing(raw_env(**kwargs))


class _OrderEnforcing(wrappers.OrderEnforcingWrapper):
    """PettingZoo's ``OrderEnforcingWrapper`` with a direct ``last()``.

    The inherited ``last`` reaches five attributes through two ``__getattr__`` layers, which
    cost about a quarter of a whole shogi step; the checks are the same.
    """

    def last(self, observe: bool = True) -> tuple:
        if not self._has_reset:
            EnvLogger.error_observe_before_reset()
        return self.env.last(observe)

    def __str__(self) -> str:
        return str(self.env)


class raw_env(AECEnv, EzPickle):
    """Two-player shogi; see the module docstring for encoding, observation and rules.

    Args:
        max_moves: plies after which the game is a draw (AlphaZero and MuZero used 512).
        initial_sfen: starting position (SFEN); None for the standard start. ``reset`` also
            accepts ``options={"sfen": ...}`` for one game.
        render_mode: None, "ansi" (``render()`` returns the text) or "human" (prints it).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["human", "ansi"],
        "name": "shogi_v0",
        "is_parallelizable": False,
        "render_fps": 1,
    }

    def __init__(
        self,
        max_moves: int = DEFAULT_MAX_MOVES,
        initial_sfen: str | None = None,
        render_mode: str | None = None,
    ) -> None:
        EzPickle.__init__(self, max_moves, initial_sfen, render_mode)
        super().__init__()
        if isinstance(max_moves, bool) or not isinstance(max_moves, (int, np.integer)) or max_moves < 1:
            raise ValueError(f"max_moves must be a positive int of plies (e.g. 512), got {max_moves!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'human' or 'ansi', got {render_mode!r}")
        self.max_moves = int(max_moves)
        self.initial_sfen = check_sfen(initial_sfen) if initial_sfen else cshogi.STARTING_SFEN
        self.render_mode = render_mode

        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.action_spaces = {a: spaces.Discrete(NUM_ACTIONS) for a in AGENTS}
        self.observation_spaces = {
            a: spaces.Dict(
                {
                    "observation": spaces.Box(0.0, 1.0, (9, 9, NUM_CHANNELS), dtype=np.float32),
                    "action_mask": spaces.Box(0, 1, (NUM_ACTIONS,), dtype=np.int8),
                }
            )
            for a in AGENTS
        }
        self._board = cshogi.Board()
        self._planes = PlaneBuilder()
        self._repetitions = RepetitionTracker()
        self._legal_cache: dict[int, np.ndarray] = {}
        self._reset_state(self.initial_sfen)

    # ----------------------------------------------------------------- PettingZoo API
    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        """Start a new game (the game has no randomness, so ``seed`` changes nothing)."""
        sfen = (options or {}).get("sfen")
        self._reset_state(check_sfen(sfen) if sfen else self.initial_sfen)
        if self.render_mode == "human":
            self.render()

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        """Planes from ``agent``'s perspective and its action mask (zeros when not to move)."""
        cached = self._observations.get(agent)
        if cached is None:
            color = AGENTS.index(agent)
            planes = self._planes.planes(
                self._board,
                color,
                self._repetitions.prior_occurrences(),
                self._plies / self.max_moves,
            )
            if color == self._board.turn and not self.terminations[agent]:
                mask = self._action_mask()
            else:
                mask = np.zeros(NUM_ACTIONS, dtype=np.int8)
            cached = self._observations[agent] = {"observation": planes, "action_mask": mask}
        return cached

    def step(self, action: int | None) -> None:
        """Play ``action`` for the agent to move (None for an agent whose game is over)."""
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        index = _checked_index(action)
        self._cumulative_rewards[agent] = 0
        mover = self._board.turn
        if not self._is_legal(index):
            self._end_illegal(agent)
            return
        self._board.push_move16(encoding.action_to_move16(index, mover))
        self._after_move(mover)
        self.agent_selection = AGENTS[self._board.turn]
        self._accumulate_rewards()
        if self.render_mode == "human":
            self.render()

    def render(self) -> str | None:
        """Text board: returned for "ansi", printed for "human"."""
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='ansi'.")
            return None
        text = board_text(self._board)
        if self.render_mode == "ansi":
            return text
        print(text)
        return None

    def close(self) -> None:
        pass

    # ----------------------------------------------------------------- shogi helpers
    @property
    def sfen(self) -> str:
        """The current position as SFEN (board, side to move, hands, move number)."""
        return self._board.sfen()

    @property
    def usi_moves(self) -> list[str]:
        """Moves played since reset, as USI strings (with ``start_sfen``: a USI ``position``)."""
        return [cshogi.move_to_usi(move) for move in self._board.history]

    @property
    def start_sfen(self) -> str:
        """SFEN of the position this game started from."""
        return self._start_sfen

    def legal_actions(self) -> np.ndarray:
        """Sorted action indices legal for the side to move (empty once the game is over)."""
        if any(self.terminations.values()):
            return np.zeros(0, dtype=np.int32)
        return np.sort(self._legal_actions)

    def action_to_usi(self, action: int) -> str:
        """USI string of ``action`` for the side to move now (legality not checked)."""
        return encoding.action_to_usi(_checked_index(action), self._board.turn)

    def usi_to_action(self, move: str) -> int:
        """Action index of a USI move for the side to move now (legality: see the mask)."""
        return encoding.usi_to_action(move, self._board.turn)

    # ----------------------------------------------------------------- internals
    def _reset_state(self, sfen: str) -> None:
        self._board.set_sfen(sfen)
        self._start_sfen = sfen
        self._plies = 0
        self.agents = list(AGENTS)
        self.rewards = dict.fromkeys(AGENTS, 0)
        self._cumulative_rewards = dict.fromkeys(AGENTS, 0)
        self.terminations = dict.fromkeys(AGENTS, False)
        self.truncations = dict.fromkeys(AGENTS, False)
        self.infos = {a: {} for a in AGENTS}
        self.agent_selection = AGENTS[self._board.turn]
        board = self._board
        self._repetitions.reset(board.zobrist_hash(), board.turn, board.is_check())
        self._refresh_legal()
        if len(self._legal_actions) == 0:
            raise ValueError(
                f"no legal move in the start position {sfen!r}: the game is already "
                "over; start from a position where the side to move can move"
            )

    def _refresh_legal(self) -> None:
        """Legal action indices of the new position, from a per-position cache when seen before."""
        self._observations: dict[str, dict[str, np.ndarray]] = {}
        self._mask: np.ndarray | None = None
        key = self._board.zobrist_hash()
        actions = self._legal_cache.get(key)
        if actions is None:
            actions = encoding.moves_to_actions(list(self._board.legal_moves), self._board.turn)
            if len(self._legal_cache) >= _LEGAL_CACHE_SIZE:
                self._legal_cache.clear()
            self._legal_cache[key] = actions
        self._legal_actions = actions

    def _action_mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = np.zeros(NUM_ACTIONS, dtype=np.int8)
            self._mask[self._legal_actions] = 1
        return self._mask.copy()

    def _is_legal(self, index: int) -> bool:
        if self._mask is None:
            self._action_mask()
        return bool(self._mask[index])

    def _after_move(self, mover: int) -> None:
        """Update bookkeeping after ``mover`` moved and end the game if a rule says so."""
        board = self._board
        self._plies += 1
        self._refresh_legal()
        in_check = board.is_check()
        occurrences = self._repetitions.push(board.zobrist_hash(), in_check)
        if len(self._legal_actions) == 0:
            self._end_game(mover, "checkmate" if in_check else "stalemate")
        elif occurrences >= SENNICHITE_OCCURRENCES:
            checker = self._repetitions.perpetual_checker()
            if checker is None:
                self._end_game(None, "sennichite")
            else:
                self._end_game(1 - checker, "perpetual_check")
        elif self._plies >= self.max_moves:
            self._end_game(None, "move_cap")

    def _end_game(self, winner: int | None, reason: str) -> None:
        for color, agent in enumerate(AGENTS):
            self.rewards[agent] = 0 if winner is None else (1 if color == winner else -1)
            self.terminations[agent] = True
            self.infos[agent] = {"reason": reason}

    def _end_illegal(self, agent: str) -> None:
        """PettingZoo's convention: the game ends, the mover gets -1 and the opponent 0."""
        gymnasium.logger.warn(f"{agent} played an illegal move; the game ends and it loses.")
        for other in AGENTS:
            self.rewards[other] = -1 if other == agent else 0
            self.terminations[other] = True
            self.infos[other] = {"reason": "illegal_move", "illegal_move": other == agent}
        self._observations = {}
        self.agent_selection = AGENTS[1 - AGENTS.index(agent)]
        self._accumulate_rewards()


def _checked_index(action: Any) -> int:
    """``action`` as an int in the action space, or a ValueError that says what is expected."""
    try:
        index = operator.index(action)
    except TypeError:
        raise ValueError(f"shogi actions are integer indices in [0, {NUM_ACTIONS}), got {action!r}") from None
    if not 0 <= index < NUM_ACTIONS:
        raise ValueError(f"action {index} is outside the action space [0, {NUM_ACTIONS})")
    return index

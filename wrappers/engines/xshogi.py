"""GNU Shogi over its old xshogi line protocol as an opponent for ``wrappers.envs.shogi_v0``.

GNU Shogi 1.4 speaks neither USI nor xboard: it reads moves like ``7g7f``, ``8h2b+`` or
``P*5e`` (the same strings as USI) and answers ``1. ... 3c3d 300000`` with its own move, or
``Resigns``. It keeps the game itself, so the adapter sends only the move played since the
engine's last answer; when the game it knows is not a prefix of the env's (a new game, a
restart) it starts over with ``new`` and replays the moves in ``force`` mode, then ``go``.
``depth N`` caps its search so that answers come quickly.
"""

from __future__ import annotations

import re

import numpy as np

from wrappers.checks import integer_in_range
from wrappers.engines.base import EngineError, EngineOpponent
from wrappers.opponents import RESIGN, GameState

STANDARD_START = "lnsgkgsnl/1r5b1/ppppppppp/9/9/9/PPPPPPPPP/1B5R1/LNSGKGSNL b - 1"
_MOVE = re.compile(r"\.\.\.\s+(\S+)")
_GAME_OVER = ("Resigns", "mates!", "Drawn game!", "Illegal move", "Illegal position")


class GnuShogiOpponent(EngineOpponent):
    """GNU Shogi playing the shogi env (``wrappers.envs.shogi_v0``) from the standard start.

    Its protocol has no random seed to set, and its choices can vary between runs: games
    against it do not always repeat for a seed.

    :param depth: search depth in plies (1 = weakest and fastest; GNU Shogi's maximum is 29).
    :param time_limit: seconds allowed for each engine answer before it is stopped.
    :param binary: the executable (found on PATH or in /usr/games).
    """

    name = "GNU Shogi"
    package = "gnushogi"
    game = "shogi"
    quit_command = "quit"

    def __init__(self, depth: int = 1, time_limit: float = 10.0, binary: str = "gnushogi"):
        self.depth = integer_in_range("depth", depth, 1, 29)
        super().__init__(binary, [], time_limit)
        self._synced: list[int] | None = None  # actions GNU Shogi has seen, both sides

    def _handshake(self) -> None:
        self._synced = None

    def _choose(self, mask: np.ndarray, state: GameState) -> int:
        from wrappers.envs.shogi import encoding

        _check_standard_start(state)
        history = list(state.history)
        self.process.drain()
        synced = self._synced
        if synced is not None and len(history) == len(synced) + 1 and history[:-1] == synced:
            self.process.send(encoding.action_to_usi(history[-1], len(synced) % 2))
            done = _is_answer
        else:
            self._replay(history, encoding)
            # the last game's verdict ("White mates!") may still be on its way: skip verdicts
            done = _is_move_or_refusal
        answer = self.process.read_until(done, self.time_limit)[-1]
        action = _answer_to_action(answer, len(history), encoding)
        self._synced = None if action == RESIGN else history + [action]
        return action

    def _replay(self, history: list[int], encoding) -> None:
        """Start a new game and enter ``history`` without replies, then ask for a move."""
        for line in ("new", "depth", str(self.depth), "force"):
            self.process.send(line)
        for ply, action in enumerate(history):
            self.process.send(encoding.action_to_usi(action, ply % 2))
        self.process.send("go")


def _answer_to_action(answer: str, plies: int, encoding) -> int:
    """The action of GNU Shogi's answer line (``RESIGN`` for a resignation), or EngineError quoting it."""
    found = _MOVE.search(answer)
    if found is None:
        if "Resigns" in answer:
            return RESIGN
        raise EngineError(f"GNU Shogi answered {answer!r} instead of a move (after {plies} plies).")
    try:
        return encoding.usi_to_action(found.group(1), plies % 2)
    except ValueError:
        raise EngineError(
            f"GNU Shogi answered {answer!r}, whose move {found.group(1)!r} is not a shogi move "
            "(expected e.g. '7g7f', '8h2b+' or 'P*5e'). Check that binary= is GNU Shogi."
        ) from None


def _is_answer(line: str) -> bool:
    return bool(_MOVE.search(line)) or any(token in line for token in _GAME_OVER)


def _is_move_or_refusal(line: str) -> bool:
    return bool(_MOVE.search(line)) or "Resigns" in line or "Illegal" in line


def _check_standard_start(state: GameState) -> None:
    env = getattr(state.env, "unwrapped", None)
    start = getattr(env, "start_sfen", STANDARD_START)
    if start.split()[:3] != STANDARD_START.split()[:3]:
        raise ValueError(
            f"The GNU Shogi adapter plays only from the standard start position; this game began at {start!r}."
        )

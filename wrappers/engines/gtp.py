"""GNU Go over the Go Text Protocol (GTP) as an opponent for PettingZoo's Go.

PettingZoo's Go numbers points row by row from the top-left (action = row * N + col) and
passes with action N * N; GTP names points by column letter (no "I") and row counted from the
bottom. GNU Go runs with Chinese (area) rules and ``--capture-all-dead`` because PettingZoo
scores every stone left on the board: without it GNU Go passes with dead stones standing.
"""

from __future__ import annotations

import math
import re

import numpy as np

from wrappers.checks import integer_in_range
from wrappers.engines.base import EngineError, EngineOpponent
from wrappers.opponents import RESIGN, GameState

GTP_COLUMNS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"
_VERTEX = re.compile(r"([A-Z])([0-9]{1,2})")
COLORS = ("black", "white")  # PettingZoo's player_0 plays black


def action_to_vertex(action: int, size: int) -> str:
    """PettingZoo Go action -> GTP vertex (``"pass"`` for N * N)."""
    if action == size * size:
        return "pass"
    row, col = divmod(action, size)
    return f"{GTP_COLUMNS[col]}{size - row}"


def vertex_to_action(vertex: str, size: int) -> int:
    """GTP vertex -> PettingZoo Go action; ``RESIGN`` for ``"resign"``.

    Anything else than a point of the board (``I5``: GTP has no column I; ``K1`` on 9x9; ``xyz``;
    an empty answer) raises ``EngineError`` quoting the answer.
    """
    word = vertex.strip().upper()
    if word == "PASS":
        return size * size
    if word == "RESIGN":
        return RESIGN
    found = _VERTEX.fullmatch(word)
    col = GTP_COLUMNS.find(found.group(1)) if found else -1
    row = size - int(found.group(2)) if found else -1
    if not (0 <= col < size and 0 <= row < size):
        last = GTP_COLUMNS[size - 1]
        raise EngineError(
            f"The engine answered {vertex!r}, which is off a {size}x{size} board: a GTP move is "
            f"'pass', 'resign' or a column A-{last} (no I) and a row 1-{size}, e.g. 'C3'. "
            "Check that the engine speaks GTP and plays this board size."
        )
    return row * size + col


class GnuGoOpponent(EngineOpponent):
    """GNU Go (``gnugo --mode gtp``) playing PettingZoo Go.

    GNU Go picks among moves it rates equal at random: ``seed(n)`` (which ``reset(seed=...)``
    of a versus env calls) sets its random seed for the next game, so a seeded game repeats.

    :param level: GNU Go's strength, 0 (weakest, fastest) to 10.
    :param time_limit: seconds allowed for each engine answer before it is stopped.
    :param binary: the executable (found on PATH or in /usr/games).
    """

    name = "GNU Go"
    package = "gnugo"
    game = "go"

    def __init__(self, level: int = 1, time_limit: float = 10.0, binary: str = "gnugo"):
        self.level = integer_in_range("level", level, 0, 10)
        args = [
            "--mode",
            "gtp",
            "--chinese-rules",
            "--capture-all-dead",
            "--level",
            str(self.level),
        ]
        super().__init__(binary, args, time_limit)
        self._synced: tuple[int, float, list[int]] | None = None
        self._next_seed: int | None = None

    def seed(self, seed: int) -> None:
        """Set GNU Go's random seed when the next game starts (its board is cleared)."""
        self._next_seed = int(seed) % 2**31
        self._synced = None  # the next move starts from a cleared board, where the seed is set

    def command(self, line: str) -> str:
        """Send one GTP command and return its answer (an error answer raises)."""
        self.process.send(line)
        lines = self.process.read_until(lambda s: s == "", self.time_limit)
        answer = " ".join(s for s in lines if s).strip()
        if not answer.startswith("="):
            raise EngineError(f"GNU Go refused {line!r}: {answer!r}")
        return answer[1:].strip()

    def _handshake(self) -> None:
        self._synced = None
        self.command("protocol_version")

    def _choose(self, mask: np.ndarray, state: GameState) -> int:
        size = math.isqrt(len(mask) - 1)
        if size * size + 1 != len(mask):
            raise ValueError(f"A Go mask has N*N+1 entries; got {len(mask)}.")
        self._sync(size, _komi(state), state.history)
        color = COLORS[len(state.history) % 2]
        action = vertex_to_action(self.command(f"genmove {color}"), size)
        if action != RESIGN:
            self._synced[2].append(action)
        return action

    def _sync(self, size: int, komi: float, history: list[int]) -> None:
        """Bring GNU Go's board to ``history``: new moves only, or a fresh replay."""
        if (
            self._synced is None
            or self._synced[:2] != (size, komi)
            or history[: len(self._synced[2])] != self._synced[2]
        ):
            self.command(f"boardsize {size}")
            self.command(f"komi {komi}")
            self.command("clear_board")
            if self._next_seed is not None:
                self.command(f"set_random_seed {self._next_seed}")
                self._next_seed = None
            self._synced = (size, komi, [])
        played = self._synced[2]
        for i in range(len(played), len(history)):
            self.command(f"play {COLORS[i % 2]} {action_to_vertex(history[i], size)}")
            played.append(history[i])


def _komi(state: GameState) -> float:
    if "komi" in state.config:
        return float(state.config["komi"])
    env = getattr(state.env, "unwrapped", None)
    return float(getattr(env, "_komi", 7.5))

"""Stockfish over the Universal Chess Interface (UCI) as an opponent for PettingZoo chess.

Each move sends the whole game (``position startpos moves ...``), so the engine never holds
state that could drift from the env's; strength is set by ``Skill Level`` (0-20) and by the
search limit (``depth`` plies or ``movetime`` milliseconds).
"""

from __future__ import annotations

import chess
import numpy as np

from wrappers.checks import integer_in_range
from wrappers.engines.base import EngineError, EngineOpponent
from wrappers.engines.chess_actions import action_to_move, move_to_action
from wrappers.opponents import GameState


class StockfishOpponent(EngineOpponent):
    """Stockfish playing PettingZoo chess.

    Below ``skill_level`` 20 Stockfish weakens its play with random choices from a seed it takes
    from the clock, and UCI has no command to set it: such games do not repeat for a seed.

    :param skill_level: UCI ``Skill Level``, 0 (weakest) to 20.
    :param depth: search depth in plies (used when ``movetime_ms`` is None).
    :param movetime_ms: search time per move in milliseconds, instead of a depth.
    :param time_limit: seconds allowed for each engine answer before it is stopped.
    :param threads: engine threads (1 keeps it polite on shared machines).
    :param hash_mb: transposition table size.
    """

    name = "Stockfish"
    package = "stockfish"
    game = "chess"

    def __init__(
        self,
        skill_level: int = 0,
        depth: int | None = 1,
        movetime_ms: int | None = None,
        time_limit: float = 10.0,
        binary: str = "stockfish",
        threads: int = 1,
        hash_mb: int = 16,
    ):
        self.skill_level = integer_in_range("skill_level", skill_level, 0, 20)
        if depth is None and movetime_ms is None:
            raise ValueError("Give Stockfish a search limit: depth=<plies> or movetime_ms=<ms>.")
        if movetime_ms is not None:
            self.go_command = f"go movetime {integer_in_range('movetime_ms', movetime_ms, 1)}"
        else:
            self.go_command = f"go depth {integer_in_range('depth', depth, 1)}"
        self.options = {
            "Threads": integer_in_range("threads", threads, 1),
            "Hash": integer_in_range("hash_mb", hash_mb, 1),
            "Skill Level": self.skill_level,
        }
        super().__init__(binary, [], time_limit)
        self._board = chess.Board()
        self._actions: list[int] = []

    def _handshake(self) -> None:
        self._board, self._actions = chess.Board(), []  # a fresh process: a new game
        self.process.send("uci")
        self.process.read_until(lambda s: s == "uciok", self.time_limit)
        for name, value in self.options.items():
            self.process.send(f"setoption name {name} value {value}")
        self._ready()

    def _ready(self) -> None:
        self.process.send("isready")
        self.process.read_until(lambda s: s == "readyok", self.time_limit)

    def _choose(self, mask: np.ndarray, state: GameState) -> int:
        board = self._replay(state.history)
        moves = " ".join(move.uci() for move in board.move_stack)
        self.process.send(f"position startpos moves {moves}" if moves else "position startpos")
        self.process.send(self.go_command)
        answer = self.process.read_until(lambda s: s.split()[:1] == ["bestmove"], self.time_limit)[-1]
        return move_to_action(_best_move(answer, board), board.turn == chess.WHITE)

    def _replay(self, history: list[int]) -> chess.Board:
        """The position after ``history``, extending the cached board when possible."""
        if not history or history[: len(self._actions)] != self._actions:
            self._board, self._actions = chess.Board(), []
            self.process.send("ucinewgame")  # a new game: drop the engine's stale hash
            self._ready()
        for action in history[len(self._actions) :]:
            self._board.push(action_to_move(self._board, action))
            self._actions.append(action)
        return self._board


def _best_move(answer: str, board: chess.Board) -> chess.Move:
    """The legal move of ``board`` named by a UCI ``bestmove`` line, or EngineError quoting it."""
    words = answer.split()
    try:
        move = chess.Move.from_uci(words[1])
    except (IndexError, ValueError):
        raise EngineError(
            f"The engine answered {answer!r}, which names no move: UCI expects 'bestmove <move>' "
            "with a move like 'e2e4' or 'e7e8q'. Check that the engine speaks UCI."
        ) from None
    if move not in board.legal_moves:
        raise EngineError(f"The engine answered {answer!r}: {words[1]} is illegal in {board.fen()}.")
    return move

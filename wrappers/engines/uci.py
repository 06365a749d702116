"""Stockfish over the Universal Chess Interface (UCI) as an opponent for PettingZoo chess.

Each move sends the whole game (``position startpos moves ...``), so the engine never holds
state that could drift from the env's; strength is set by ``Skill Level`` (0-20) and by the
search limit (``depth`` plies or ``movetime`` milliseconds).
"""

from __future__ import annotations

import chess
import numpy as np

from wrappers.engines.base import EngineError, EngineOpponent
from wrappers.engines.chess_actions import action_to_move, move_to_action
from wrappers.opponents import GameState


class StockfishOpponent(EngineOpponent):
    """Stockfish playing PettingZoo chess.

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
        if not 0 <= int(skill_level) <= 20:
            raise ValueError(f"Stockfish skill_level must be in 0..20; got {skill_level}.")
        if depth is None and movetime_ms is None:
            raise ValueError("Give Stockfish a search limit: depth=<plies> or movetime_ms=<ms>.")
        super().__init__(binary, [], time_limit)
        self.skill_level = int(skill_level)
        self.go_command = (
            f"go movetime {int(movetime_ms)}" if movetime_ms is not None else f"go depth {int(depth)}"
        )
        self.options = {
            "Threads": int(threads),
            "Hash": int(hash_mb),
            "Skill Level": self.skill_level,
        }
        self._board = chess.Board()
        self._actions: list[int] = []

    def _handshake(self) -> None:
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
        lines = self.process.read_until(lambda s: s.startswith("bestmove"), self.time_limit)
        best = lines[-1].split()[1]
        try:
            move = chess.Move.from_uci(best)
        except ValueError as err:
            raise EngineError(f"Stockfish answered an unreadable move {best!r}.") from err
        if move not in board.legal_moves:
            raise EngineError(f"Stockfish played {best}, illegal in {board.fen()}.")
        return move_to_action(move, board.turn == chess.WHITE)

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

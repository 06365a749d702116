"""Sennichite (fourfold repetition) bookkeeping for a shogi game.

cshogi's ``is_draw`` reports a repetition as soon as a position occurs twice (what a search
engine wants), so the game rule is kept here: a position (board, hands and side to move, i.e.
cshogi's Zobrist key) occurring for the fourth time ends the game as a draw, unless one side gave
check with every one of its moves since the first occurrence, in which case that side loses
(perpetual check).
"""

from __future__ import annotations

SENNICHITE_OCCURRENCES = 4


class RepetitionTracker:
    """Counts position keys along one game and judges the fourth occurrence."""

    def __init__(self) -> None:
        self.reset(0, 0, False)

    def reset(self, key: int, turn: int, in_check: bool) -> None:
        """Start a game at a position with Zobrist ``key``, side ``turn`` to move."""
        self._start_turn = turn
        self._keys: list[int] = []
        self._checks: list[bool] = []
        self._count: dict[int, int] = {}
        self._first: dict[int, int] = {}
        self.push(key, in_check)

    def push(self, key: int, in_check: bool) -> int:
        """Record the position after a move; returns how often it has now occurred (1 = new)."""
        count = self._count.get(key, 0) + 1
        self._count[key] = count
        if count == 1:
            self._first[key] = len(self._keys)
        self._keys.append(key)
        self._checks.append(in_check)
        return count

    def prior_occurrences(self) -> int:
        """How often the current position occurred before now (0 for a new position)."""
        return self._count[self._keys[-1]] - 1

    def perpetual_checker(self) -> int | None:
        """Colour that checked with every move since the current position first occurred, or None.

        A position where colour ``c`` is to move and in check means the other side's last move
        gave check, so the checker is whoever's opponent was in check at all of its turns.
        """
        first = self._first[self._keys[-1]]
        checked = {0: True, 1: True}  # side to move -> was in check every time it was to move
        for ply in range(first + 1, len(self._keys)):
            to_move = (self._start_turn + ply) % 2
            checked[to_move] = checked[to_move] and self._checks[ply]
        checkers = [1 - side for side, always in checked.items() if always]
        return checkers[0] if len(checkers) == 1 else None

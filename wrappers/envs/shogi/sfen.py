"""Strict SFEN check before a position reaches cshogi.

cshogi aborts the whole Python process (an uncaught C++ exception) on some malformed SFEN text,
so positions given by users are checked here first: nine ranks of nine cells, known piece
letters, side 'b' or 'w', hands '-' or counted pieces, an optional move number, and no more of a
piece kind than a shogi set has (one king per side; a missing king is allowed, as in tsume).
"""

from __future__ import annotations

import re

import cshogi

_SET_COUNTS = {"P": 18, "L": 4, "N": 4, "S": 4, "G": 4, "B": 2, "R": 2}
_RANK = re.compile(r"(?:\+[PLNSBRplnsbr]|[PLNSGBRKplnsgbrk]|[1-9])+")
_CELL = re.compile(r"\+?[A-Za-z]|[1-9]")
_HANDS = re.compile(r"-|(?:[0-9]*[PLNSGBRplnsgbr])+")
_HAND_ITEM = re.compile(r"([0-9]*)([PLNSGBRplnsgbr])")


def check_sfen(sfen: str) -> str:
    """Return ``sfen`` if it is a well-formed shogi position, else raise ValueError saying why."""
    if not isinstance(sfen, str):
        raise TypeError(f"an SFEN must be a string, got {type(sfen).__name__}")
    fields = sfen.split()
    if len(fields) not in (3, 4):
        _fail(sfen, "expected 'board side hands [move]'")
    board, side, hands = fields[:3]
    counts: dict[str, int] = {}
    ranks = board.split("/")
    if len(ranks) != 9:
        _fail(sfen, "the board needs 9 ranks separated by '/'")
    for rank in ranks:
        if not _RANK.fullmatch(rank):
            _fail(sfen, f"bad rank {rank!r}")
        width = 0
        for cell in _CELL.findall(rank):
            if cell.isdigit():
                width += int(cell)
            else:
                width += 1
                letter = cell[-1]
                counts[letter] = counts.get(letter, 0) + 1
        if width != 9:
            _fail(sfen, f"rank {rank!r} does not have 9 cells")
    if side not in ("b", "w"):
        _fail(sfen, "side to move must be 'b' or 'w'")
    if not _HANDS.fullmatch(hands):
        _fail(sfen, f"bad hands {hands!r}")
    for number, letter in _HAND_ITEM.findall("" if hands == "-" else hands):
        counts[letter] = counts.get(letter, 0) + (int(number) if number else 1)
    if len(fields) == 4 and not fields[3].isdigit():
        _fail(sfen, "the move number must be a positive integer")
    _check_counts(sfen, counts)
    position = cshogi.Board()
    position.set_sfen(sfen)
    if not position.is_ok():
        _fail(sfen, "cshogi rejects the position")
    return sfen


def _check_counts(sfen: str, counts: dict[str, int]) -> None:
    for kind, most in _SET_COUNTS.items():
        if counts.get(kind, 0) + counts.get(kind.lower(), 0) > most:
            _fail(sfen, f"more than {most} pieces of kind {kind}")
    if counts.get("K", 0) > 1 or counts.get("k", 0) > 1:
        _fail(sfen, "more than one king per side")


def _fail(sfen: str, why: str) -> None:
    raise ValueError(f"not a valid SFEN ({why}): {sfen!r}; expected e.g. {cshogi.STARTING_SFEN!r}")

"""Plain-text shogi board: SFEN letters (upper case sente, lower case gote, '+' promoted)."""

from __future__ import annotations

import cshogi

_LETTERS = "PLNSBRGK"
_HAND_LETTERS = "PLNSGBR"


def _piece_text(piece: int) -> str:
    if piece == 0:
        return "  ."
    color, piece_type = (0, piece) if piece < 16 else (1, piece - 16)
    promoted = piece_type > 8
    letter = _LETTERS[(piece_type - 9 if promoted else piece_type - 1)]
    if promoted:
        letter = "+" + letter
    letter = letter.upper() if color == 0 else letter.lower()
    return f"{letter:>3}"


def _hand_text(counts: list[int], color: int) -> str:
    letters = _HAND_LETTERS if color == 0 else _HAND_LETTERS.lower()
    parts = [f"{'' if n == 1 else n}{letters[i]}" for i, n in enumerate(counts) if n]
    return " ".join(parts) if parts else "-"


def board_text(board: cshogi.Board) -> str:
    """The board from sente's side (file 9 on the left, rank a on top), hands and side to move."""
    pieces = board.pieces
    black_hand, white_hand = board.pieces_in_hand
    files = "   " + "".join(f"{file:>3}" for file in range(9, 0, -1))
    lines = [f"gote hand: {_hand_text(white_hand, 1)}", files]
    for rank in range(9):
        cells = "".join(_piece_text(pieces[file * 9 + rank]) for file in range(8, -1, -1))
        lines.append(f" {'abcdefghi'[rank]} {cells}")
    lines.append(f"sente hand: {_hand_text(black_hand, 0)}")
    side = "sente" if board.turn == cshogi.BLACK else "gote"
    lines.append(f"{side} to move, move {board.move_number}")
    return "\n".join(lines)

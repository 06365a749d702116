"""Small fake game engines for fault tests: Python scripts that speak just enough GTP, UCI or
GNU Shogi's xshogi protocol, and misbehave on request when asked for a move.

``fake_engine(tmp_path, "gtp", fault="hang")`` writes an executable script and returns its path,
to pass as an engine's ``binary``. Faults: None (plays ``move``), ``"hang"`` (never answers),
``"exit"`` (exits while thinking), or any other string (answered in place of the move). With
``first_run_only=True`` the fault happens in the first process only and a restarted engine
plays normally; ``asked_for_a_move(path)`` then says whether the first process has been asked
(and so is playing its fault).
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

GOOD_MOVES = {"gtp": "C3", "uci": "e7e5", "xshogi": "3c3d"}
"""What each fake plays when it behaves: legal replies to the learner's first move in the
tests (any 9x9 Go point but C3; 1. e4 in chess; 7g7f in shogi)."""

_SCRIPT = """#!{python}
import os
import sys
import time

PROTOCOL, FAULT, MARKER, MOVE = {protocol!r}, {fault!r}, {marker!r}, {move!r}


def say(*lines):
    for line in lines:
        print(line)
    sys.stdout.flush()


def think():
    fault = FAULT
    if MARKER is not None:
        if os.path.exists(MARKER):
            fault = None
        else:
            open(MARKER, "w").close()
    if fault == "hang":
        time.sleep(60)
    if fault == "exit":
        sys.exit(3)
    return MOVE if fault is None else fault


forced = False
for line in sys.stdin:
    words = line.split()
    command = words[0] if words else ""
    if command == "quit":
        break
    if PROTOCOL == "gtp":
        say("= " + think() if command == "genmove" else "=", "")
    elif PROTOCOL == "uci":
        if command == "uci":
            say("id name fake", "uciok")
        elif command == "isready":
            say("readyok")
        elif command == "go":
            say(("bestmove " + think()).strip())
    elif command == "force":
        forced = True
    elif command == "go" or (len(command) == 4 and not forced):
        forced = False
        say("1. ... " + think() + " 300000")
"""


def fake_engine(
    directory: Path, protocol: str, fault: str | None = None, first_run_only: bool = False
) -> str:
    """Write a fake ``protocol`` engine (``"gtp"``, ``"uci"``, ``"xshogi"``) into ``directory``."""
    name = f"fake-{protocol}-{fault or 'good'}-{'once' if first_run_only else 'always'}"
    path = Path(directory) / f"{name}-{abs(hash(fault))}"
    marker = _marker(path) if first_run_only else None
    path.write_text(
        _SCRIPT.format(
            python=sys.executable, protocol=protocol, fault=fault, marker=marker, move=GOOD_MOVES[protocol]
        )
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def asked_for_a_move(binary: str) -> bool:
    """Whether a ``first_run_only`` fake's first process has been asked for a move: from then on
    it plays its fault (a hanging one never answers)."""
    return Path(_marker(binary)).exists()


def _marker(path: str | Path) -> str:
    """The file a ``first_run_only`` fake leaves when first asked for a move."""
    return str(path) + ".ran"

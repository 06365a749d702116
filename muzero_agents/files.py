"""Atomic file writes: a temporary file beside the target, renamed over it when complete.

``tempfile.mkstemp`` would create the temporary file readable by its owner only (0600), so a
saved model or a benchmark result would end up private. Here the temporary file is created
with the mode a plain ``open(path, "w")`` gives a new file (0666 less the umask), and an
existing target's mode is kept, as ``open`` keeps it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def temporary_file(path: str | os.PathLike) -> tuple[int, str]:
    """(open descriptor, name) of a new, empty temporary file in ``path``'s folder."""
    target = Path(path)
    while True:
        name = str(target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp"))
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue


def replace_atomically(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished ``tmp`` over ``path`` in one step, keeping ``path``'s mode if it exists."""
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    except FileNotFoundError:
        pass
    os.replace(tmp, path)

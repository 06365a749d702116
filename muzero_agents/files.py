"""Atomic file replacement with the permissions a plain ``open(path, "w")`` would give."""

from __future__ import annotations

import os


def replace_atomically(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished temporary file ``tmp`` over ``path`` in one step.

    ``tempfile.mkstemp`` creates files readable by their owner only (0600); a saved model or
    a benchmark result should be as readable as any other file the user writes, so ``tmp``
    first gets the mode the process's umask allows (usually 0644).
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)

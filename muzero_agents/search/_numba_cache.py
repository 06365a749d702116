"""Keep Numba's on-disk cache of the search kernels in step with their sources.

Numba keys a cached kernel on its own file's timestamp only, so a kernel that inlines a rule
from another file (``_engine`` calls ``_puct`` and ``_gumbel_rules``) would keep running the
old rule after that file changes. On import we hash all kernel sources and, if they differ
from the hash stored beside the cache, drop this package's cache files so that they are
compiled afresh (once) and cached again.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_STAMP_NAME = "numba_sources.sha1"


def sources_digest(package: Path = _PACKAGE) -> str:
    """SHA-1 over the package's private modules (where every kernel and rule lives)."""
    digest = hashlib.sha1()
    for path in sorted(package.glob("_*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale_cache(package: Path = _PACKAGE) -> bool:
    """Delete the package's Numba cache files if the sources changed; True if it did.

    Does nothing where ``__pycache__`` cannot be written (Numba then caches elsewhere).
    """
    cache = package / "__pycache__"
    stamp = cache / _STAMP_NAME
    digest = sources_digest(package)
    try:
        if stamp.exists() and stamp.read_text() == digest:
            return False
        cache.mkdir(exist_ok=True)
        for path in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            path.unlink(missing_ok=True)
        stamp.write_text(digest)
    except OSError:
        return False
    return True


def _refcount_free_flag() -> dict:
    """``{"_nrt": False}`` where this Numba takes it (compile without reference counting), else {}."""
    try:
        from numba.core.cpu import CPUTargetOptions
    except ImportError:
        return {}
    return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


# for kernels that allocate nothing: Numba's reference counting is an internal option, so a Numba
# without it compiles them with counting (slower, same results)
NO_REFCOUNTING = _refcount_free_flag()

"""Files that survive a crash: atomic saves, removal of killed saves' leftovers, checked loads.

A save writes a temporary file beside its target, flushes it to disk and renames it over the
target in one step (``os.replace``), so a kill at any moment leaves either the previous file or
the new one, never a torn one. The temporary file's name is derived from the target's,
``.<name>.<pid>-<12 hex>.tmp``, so the next save to the same target recognises (and removes)
what a killed save left behind, and never touches another target's temporary files.

``tempfile.mkstemp`` would create the temporary file readable by its owner only (0600), so a
saved model or a benchmark result would end up private. Here the temporary file is created
with the mode a plain ``open(path, "w")`` gives a new file (0666 less the umask), and an
existing target's mode is kept, as ``open`` keeps it.

Loading a pickle runs whatever functions it names, so ``load_pickle_checked`` unpickles with an
allow-list: numpy arrays, dtypes, scalars and random generators, builtin containers, and classes
defined in ``muzero_agents``; anything else is refused before it runs.
"""

from __future__ import annotations

import base64
import importlib
import json
import io
import os
import pickle
import pickletools
import re
import secrets
import stat
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# A temporary file not written to for this long, whatever its writer's pid says, is a leftover.
STALE_AFTER_SECONDS = 10.0

TRUSTED_SOURCES = "load only files from trusted sources"

__all__ = [
    "STALE_AFTER_SECONDS",
    "UntrustedPickleError",
    "check_model_zip",
    "clean_stale_temporaries",
    "load_pickle_checked",
    "replace_atomically",
    "save_atomically",
    "save_pickle_atomically",
    "saved_policy_class",
    "temporary_file",
]


class UntrustedPickleError(ValueError):
    """A pickle names a function or class outside the allow-list; nothing it names was run."""


class _MissingClassError(ValueError):
    """A pickle names a muzero_agents class this version does not define."""


# ------------------------------------------------------------------ temporary files
def _temporary_pattern(target: Path) -> re.Pattern:
    """Names of ``target``'s temporary files: this version's (with the writer's pid) and older
    versions' (``.<name>.<12 hex>.tmp``, no pid). No other target's temporary file matches."""
    return re.compile(rf"\.{re.escape(target.name)}\.(?:(\d+)-)?[0-9a-f]{{12}}\.tmp")


def temporary_file(path: str | os.PathLike) -> tuple[int, str]:
    """(open descriptor, name) of a new, empty temporary file in ``path``'s folder."""
    target = Path(path)
    while True:
        name = str(target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"))
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True where it cannot be told safely)."""
    if os.name == "nt" or pid == os.getpid():
        return True  # on Windows os.kill(pid, 0) would terminate the process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by another user
        return True
    return True


def clean_stale_temporaries(path: str | os.PathLike, older_than: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Remove the temporary files that killed saves to ``path`` left beside it; return them.

    A temporary file of ``path`` (and only of ``path``) is removed when its writer process no
    longer runs, or when nothing has written to it for ``older_than`` seconds (a writer's pid
    may have been reused, and older versions' names carry no pid). Another process's save to
    the same path that is still writing keeps its file.
    """
    target = Path(path)
    pattern = _temporary_pattern(target)
    folder = target.parent
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    now = time.time()
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            idle = now - entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # its writer renamed or removed it meanwhile
        writer_gone = match.group(1) is not None and not _process_alive(int(match.group(1)))
        if writer_gone or idle > older_than:
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _fsync_file(name: str | os.PathLike) -> None:
    """Flush ``name``'s written bytes to the disk."""
    fd = os.open(name, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(folder: Path) -> None:
    """Flush a rename in ``folder`` to the disk, where the system allows opening folders."""
    if os.name == "nt":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: the rename still happened
        pass
    finally:
        os.close(fd)


def replace_atomically(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Rename the finished ``tmp`` over ``path`` in one step, keeping ``path``'s mode if it exists."""
    try:
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
    except FileNotFoundError:
        pass
    os.replace(tmp, path)


# ------------------------------------------------------------------ atomic saves
def _with_default_suffix(path: str | os.PathLike, suffix: str) -> Path:
    """``path`` as a Path, with ``suffix`` appended when it has none (SB3's naming)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str, a pathlib.Path or an open binary file, got {type(path).__name__} "
            f"{path!r}; pass where to save the file."
        )
    target = Path(path)
    return target if target.suffix else target.with_name(target.name + suffix)


def _write_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary path)``, then flush it and rename it over ``target``."""
    if target.is_dir():
        raise IsADirectoryError(
            f"{target} is a folder; pass a file path inside it, such as {target / target.name}."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target)
    fd, tmp = temporary_file(target)
    os.close(fd)
    try:
        write(Path(tmp))
        _fsync_file(tmp)
        replace_atomically(tmp, target)
    finally:
        if os.path.lexists(tmp):  # the write failed or was interrupted: leave nothing behind
            os.remove(tmp)
    _fsync_directory(target.parent)
    return target


def save_atomically(path: Any, write: Callable[[Any], None]) -> Path | None:
    """Save a file with ``write`` so that a crash leaves either the old file or the new one.

    path: the final file; ``.zip`` is appended when it has no suffix (SB3's model naming) and
    missing parent folders are created. write: called with a temporary path in the same folder,
    it must write the whole file there (and may close it). The temporary file is then flushed to
    disk and renamed over the final path; on any failure it is removed. Temporary files left by
    earlier killed saves to the same path are removed first. Returns the final path. An open
    binary file as ``path`` is given to ``write`` directly (no atomicity: the caller owns it),
    and None is returned.
    """
    if isinstance(path, io.BufferedIOBase):
        write(path)
        return None
    return _write_atomically(_with_default_suffix(path, ".zip"), write)


def save_pickle_atomically(path: Any, obj: Any) -> Path | None:
    """Pickle ``obj`` (highest protocol) so that a crash leaves the old file or the new one.

    path: the final file (``.pkl`` is appended when it has no suffix, as SB3's ``save_to_pkl``
    does), or an open binary file, which is written directly (no atomicity: the caller owns it).
    Returns the final path, or None for an open file.
    """
    if hasattr(path, "write"):
        pickle.dump(obj, path, protocol=pickle.HIGHEST_PROTOCOL)
        return None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as file:
            pickle.dump(obj, file, protocol=pickle.HIGHEST_PROTOCOL)

    return _write_atomically(_with_default_suffix(path, ".pkl"), write)


# ------------------------------------------------------------------ checked loads
def _existing_file(path: str | os.PathLike, suffix: str, what: str) -> Path:
    """``path``, or ``path`` + ``suffix`` where only that exists (SB3's loading rule)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str, a pathlib.Path or an open binary file, got {type(path).__name__} "
            f"{path!r}; pass the path of the file to load as {what}."
        )
    candidates = [Path(path), Path(f"{os.fspath(path)}{suffix}")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Nothing to load as {what}: no file at {candidates[0]} nor at {candidates[1]}; check the "
        "path (and that the save finished)."
    )


def _numpy_scalar_type(name: str) -> bool:
    """Whether ``numpy.<name>`` is a numpy scalar type (float32, int64, bool_, ...)."""
    import numpy

    value = getattr(numpy, name, None)
    return isinstance(value, type) and issubclass(value, numpy.generic)


# What numpy arrays, dtypes, scalars and random generators pickle into (numpy 1.x and 2.x names).
_ALLOWED_GLOBALS = {
    "builtins": {
        "dict", "list", "tuple", "set", "frozenset", "slice", "complex", "bytearray", "bytes",
        "int", "float", "bool", "str", "range",
    },
    "collections": {"OrderedDict", "deque"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.random._pickle": {"__generator_ctor", "__bit_generator_ctor", "__randomstate_ctor"},
    "numpy.random.bit_generator": {"SeedSequence", "__pyx_unpickle_SeedSequence"},
    "numpy.random._pcg64": {"PCG64", "PCG64DXSM"},
    "numpy.random._mt19937": {"MT19937"},
    "numpy.random._philox": {"Philox"},
    "numpy.random._sfc64": {"SFC64"},
    "numpy.random._generator": {"Generator"},
    "numpy.random.mtrand": {"RandomState"},
}  # fmt: skip


def _in_package(module: str) -> bool:
    """Whether ``module`` is part of muzero_agents (a ``__main__`` never: importing it runs it)."""
    inside = module == "muzero_agents" or module.startswith("muzero_agents.")
    return inside and not module.endswith("__main__")


def _package_class(module: str, name: str, source: str) -> type | None:
    """The class ``module.name`` if ``muzero_agents`` defines it (an algorithm excepted: building
    one creates environments), else None."""
    try:
        value: Any = importlib.import_module(module)
        for part in name.split("."):
            value = getattr(value, part)
    except (ImportError, AttributeError) as error:
        raise _MissingClassError(
            f"{source} names {module}.{name}, which this version of muzero-agents does not define: "
            "it was saved by another version; load it with that version."
        ) from error
    if not isinstance(value, type) or not _in_package(getattr(value, "__module__", "")):
        return None  # a function, or a class another package defines and this one imports
    if any(base.__name__ == "BaseAlgorithm" for base in value.__mro__):
        return None
    return value


class _AllowListUnpickler(pickle.Unpickler):
    """Unpickles only what the allow-list names; refuses any other global before it is run."""

    def __init__(self, file, source: str, what: str) -> None:
        super().__init__(file)
        self.source, self.what = source, what

    def find_class(self, module: str, name: str) -> Any:
        allowed = name in _ALLOWED_GLOBALS.get(module, ()) or (module == "numpy" and _numpy_scalar_type(name))
        if allowed:
            return super().find_class(module, name)
        found = _package_class(module, name, self.source) if _in_package(module) else None
        if found is not None:
            return found
        raise UntrustedPickleError(
            f"{self.source} was not loaded: it asks to run {module}.{name}, which {self.what} "
            "never holds (allowed: numpy arrays, dtypes and random generators, builtin containers, "
            "classes defined in muzero_agents). A pickle can run any code when loaded: "
            f"{TRUSTED_SOURCES}."
        )


def _unpickle(file, source: str, what: str) -> Any:
    try:
        return _AllowListUnpickler(file, source, what).load()
    except (UntrustedPickleError, _MissingClassError):
        raise
    except MemoryError as error:  # a damaged length field asks for more memory than there is
        raise ValueError(
            f"{source} is truncated or corrupt, or larger than this machine's memory (MemoryError "
            "while unpickling); load an earlier copy or save it again, or load it where more "
            "memory is free."
        ) from error
    except Exception as error:  # pickle raises assorted errors for damaged data
        raise ValueError(
            f"{source} is truncated or corrupt, or not a pickle of {what} "
            f"({type(error).__name__}: {error}); load an earlier copy or save it again."
        ) from error


def load_pickle_checked(path: Any, expected_type: type | tuple[type, ...], what: str) -> Any:
    """Unpickle a file with the allow-list and check that it holds an ``expected_type``.

    path: a file (tried with ``.pkl`` appended when it does not exist, as SB3's
    ``load_from_pkl`` does) or an open binary file. what: the expected content in words with
    its article, used in errors (for example "a MuZero replay buffer"). Raises FileNotFoundError naming both
    candidate paths; ValueError saying "truncated or corrupt" for damaged data;
    UntrustedPickleError (a ValueError) for a global outside the allow-list; ValueError naming
    what the file holds when it is not an ``expected_type``.
    """
    if hasattr(path, "read"):
        source = str(getattr(path, "name", path))
        obj = _unpickle(path, source, what)
    else:
        file_path = _existing_file(path, ".pkl", what)
        source = str(file_path)
        with open(file_path, "rb") as file:
            obj = _unpickle(file, source, what)
    if not isinstance(obj, expected_type):
        held = f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise ValueError(f"{source} holds a {held}, not {what}; pass a file that holds {what}.")
    return obj


# ------------------------------------------------------------------ model zips
def _read_zip_data(source: Any, name: str) -> dict:
    """The JSON "data" entry of an SB3 zip, after checking every member's checksum."""
    try:
        with zipfile.ZipFile(source) as archive:
            damaged = archive.testzip()
            names = archive.namelist()
            raw = archive.read("data") if "data" in names and damaged is None else None
    except Exception as error:  # zipfile raises assorted errors for damaged archives
        raise ValueError(
            f"{name} is truncated or corrupt: it is not a readable zip archive "
            f"({type(error).__name__}: {error}); load an earlier copy or save the model again."
        ) from error
    if damaged is not None:
        raise ValueError(f"{name} is truncated or corrupt: its member {damaged!r} fails its checksum.")
    if raw is None:
        raise ValueError(
            f'{name} is truncated or corrupt, or not an SB3 model save: its zip has no "data" '
            f"entry (it holds {names})."
        )
    try:
        data = json.loads(raw.decode())
    except ValueError as error:
        raise ValueError(
            f'{name} is truncated or corrupt: its "data" entry is not JSON ({error}).'
        ) from error
    if not isinstance(data, dict):
        raise ValueError(f'{name} is truncated or corrupt: its "data" entry is not a JSON object.')
    return data


def _model_data(path: Any) -> tuple[Any, dict]:
    """(checked path or rewound open file, the zip's "data" entry)."""
    if hasattr(path, "read"):
        start = path.tell()
        data = _read_zip_data(path, str(getattr(path, "name", path)))
        path.seek(start)
        return path, data
    file_path = _existing_file(path, ".zip", "a model save (.zip)")
    return file_path, _read_zip_data(file_path, str(file_path))


def check_model_zip(path: Any) -> Any:
    """Check that ``path`` is a complete SB3 model zip without running anything in it.

    path: the save (``.zip`` is tried too, as SB3's load does) or an open binary file (rewound
    afterwards). Returns the existing path (or the file). Raises FileNotFoundError naming both
    candidates, or ValueError naming the path and saying "truncated or corrupt" when it is not
    a zip, a member fails its checksum, or the "data" entry is missing or not JSON.
    """
    return _model_data(path)[0]


def _pickled_reference(raw: bytes) -> tuple[str, str] | None:
    """(module, qualified name) when ``raw`` pickles a bare reference to a global, else None."""
    skipped = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"}
    try:
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw) if op.name not in skipped]
    except Exception:  # not a pickle at all
        return None
    if len(ops) == 1 and ops[0][0] == "GLOBAL":
        module, _, name = ops[0][1].partition(" ")
        return module, name
    strings = {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"}
    if len(ops) == 3 and ops[0][0] in strings and ops[1][0] in strings and ops[2][0] == "STACK_GLOBAL":
        return ops[0][1], ops[1][1]
    return None


def saved_policy_class(path: Any) -> type | str:
    """The policy class a model zip names, found without unpickling anything.

    Returns the class when the save references it by name and it is defined in
    ``muzero_agents`` or in a module already imported; otherwise a description in words (its
    qualified name, or how it was stored), for an error message. Nothing named by the file is
    imported except ``muzero_agents`` modules.
    """
    _, data = _model_data(path)
    entry = data.get("policy_class")
    if not isinstance(entry, dict) or ":serialized:" not in entry:
        return f"no policy class (data['policy_class'] is {entry!r})"
    try:
        reference = _pickled_reference(base64.b64decode(entry[":serialized:"]))
    except ValueError:
        reference = None
    if reference is None:
        return f"a class stored by value ({entry.get(':type:', 'unknown type')})"
    module, name = reference
    try:
        value: Any = importlib.import_module(module) if _in_package(module) else sys.modules.get(module)
    except ImportError:
        value = None
    for part in name.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, type) else f"{module}.{name}"

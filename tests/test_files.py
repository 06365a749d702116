"""Atomic saves: permissions of a plain open(), temporary files beside the target, and the
removal of what killed saves left behind (only theirs, never another save's)."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import time

import pytest

from muzero_agents.files import (
    STALE_AFTER_SECONDS,
    clean_stale_temporaries,
    replace_atomically,
    save_atomically,
    save_pickle_atomically,
    temporary_file,
)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write(path, text: str) -> None:
    fd, tmp = temporary_file(path)
    os.write(fd, text.encode())
    os.close(fd)
    assert os.path.dirname(tmp) == os.path.dirname(str(path))
    replace_atomically(tmp, path)
    assert not os.path.exists(tmp)


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _leftover(folder, target_name: str, pid: int, age: float = 0.0, token: str = "0123456789ab"):
    """A temporary file as a save of ``target_name`` by ``pid`` killed ``age`` seconds ago leaves."""
    path = folder / f".{target_name}.{pid}-{token}.tmp"
    path.write_bytes(b"half a save")
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def test_new_files_get_the_umask_mode_and_existing_ones_keep_theirs(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    _write(target, "first")
    assert target.read_text() == "first" and _mode(target) == umask_022
    os.chmod(target, 0o600)  # the user made it private: a rewrite keeps that, as open() would
    _write(target, "second")
    assert target.read_text() == "second" and _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_temporary_names_carry_the_target_and_the_writer_pid(tmp_path):
    fd, tmp = temporary_file(tmp_path / "model.zip")
    os.close(fd)
    name = os.path.basename(tmp)
    assert name.startswith(f".model.zip.{os.getpid()}-") and name.endswith(".tmp")


def test_muzero_save_and_benchmark_results_are_readable_by_others(tmp_path, umask_022):
    from benchmarks.harness import runner
    from muzero_agents import MuZero

    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=2, learning_starts=10)
    model.save(tmp_path / "model")
    assert _mode(tmp_path / "model.zip") == umask_022
    assert MuZero.load(tmp_path / "model").num_simulations == 2
    record = {"algo": "muzero", "task": "CartPole-v1", "seed": 0, "protocol": {}, "rows": []}
    runner.save_run(tmp_path, record)
    for path in (tmp_path / "runs").iterdir():
        assert _mode(path) == umask_022, path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.zip", "runs"]


def test_leftovers_of_dead_writers_go_and_live_writers_keep_theirs(tmp_path):
    dead = _leftover(tmp_path, "model.zip", _dead_pid())
    parent = _leftover(tmp_path, "model.zip", os.getppid(), token="aaaaaaaaaaaa")  # alive, writing
    mine = _leftover(tmp_path, "model.zip", os.getpid(), token="bbbbbbbbbbbb")  # a concurrent thread's
    assert clean_stale_temporaries(tmp_path / "model.zip") == [dead]
    assert not dead.exists() and parent.exists() and mine.exists()


def test_leftovers_idle_longer_than_the_limit_go_whoever_wrote_them(tmp_path):
    old = _leftover(tmp_path, "model.zip", os.getppid(), age=STALE_AFTER_SECONDS + 5)
    legacy = tmp_path / ".model.zip.0123456789ab.tmp"  # an older version's name: no pid
    legacy.write_bytes(b"x")
    young_legacy = tmp_path / ".model.zip.ba9876543210.tmp"
    young_legacy.write_bytes(b"x")
    past = time.time() - STALE_AFTER_SECONDS - 5
    os.utime(legacy, (past, past))
    assert sorted(clean_stale_temporaries(tmp_path / "model.zip")) == sorted([old, legacy])
    assert young_legacy.exists()


def test_cleaning_one_target_never_touches_another_targets_temporaries(tmp_path):
    dead = _dead_pid()
    others = [
        _leftover(tmp_path, name, dead, age=3600)
        for name in ("model.zip.zip", "model", "model.zip.1", "amodel.zip", "model_zip", "other.zip")
    ]
    for name in (".model.zip.tmp", "model.zip.123-0123456789ab.tmp", ".model.zip.12-0123.tmp"):
        others.append(tmp_path / name)
        others[-1].write_bytes(b"not a temporary of model.zip")
    (tmp_path / f".model.zip.{dead}-cccccccccccc.tmp").mkdir()  # a folder is never removed
    assert clean_stale_temporaries(tmp_path / "model.zip") == []
    assert all(path.exists() for path in others)
    assert clean_stale_temporaries(tmp_path / "missing-folder" / "model.zip") == []


def test_save_atomically_names_creates_folders_and_cleans_leftovers(tmp_path, umask_022):
    folder = tmp_path / "a" / "b"
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_bytes(b"model")

    assert save_atomically(folder / "model", write) == folder / "model.zip"
    assert seen[0].parent == folder and seen[0].name.startswith(".model.zip.")
    assert (folder / "model.zip").read_bytes() == b"model" and _mode(folder / "model.zip") == umask_022
    leftover = _leftover(folder, "model.zip", _dead_pid())
    assert save_atomically(str(folder / "model.zip"), write) == folder / "model.zip"
    assert not leftover.exists()
    assert save_atomically(folder / "model.v2", write) == folder / "model.v2"  # a suffix is kept
    assert sorted(p.name for p in folder.iterdir()) == ["model.v2", "model.zip"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "model.zip"
    target.write_bytes(b"good")

    def fail_half_way(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomically(target, fail_half_way)
    assert target.read_bytes() == b"good" and os.listdir(tmp_path) == ["model.zip"]
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        save_atomically(tmp_path / "folder.zip", fail_half_way)
    with pytest.raises(TypeError, match="path must be"):
        save_atomically(3, fail_half_way)


def test_save_pickle_atomically_adds_pkl_and_keeps_the_old_copy_on_failure(tmp_path):
    assert save_pickle_atomically(tmp_path / "buffer", {"steps": 3}) == tmp_path / "buffer.pkl"
    assert pickle.loads((tmp_path / "buffer.pkl").read_bytes()) == {"steps": 3}
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_pickle_atomically(tmp_path / "buffer.pkl", {"steps": lambda: 4})  # not picklable
    assert pickle.loads((tmp_path / "buffer.pkl").read_bytes()) == {"steps": 3}
    assert os.listdir(tmp_path) == ["buffer.pkl"]
    leftover = _leftover(tmp_path, "buffer.pkl", _dead_pid())
    save_pickle_atomically(str(tmp_path / "buffer.pkl"), [1])
    assert not leftover.exists() and os.listdir(tmp_path) == ["buffer.pkl"]


def test_save_pickle_atomically_writes_into_an_open_file(tmp_path):
    with open(tmp_path / "stream", "wb") as file:
        assert save_pickle_atomically(file, (1, 2)) is None
    assert pickle.loads((tmp_path / "stream").read_bytes()) == (1, 2)


def test_save_atomically_writes_into_an_open_file(tmp_path):
    with open(tmp_path / "stream", "wb") as file:
        assert save_atomically(file, lambda target: target.write(b"zip")) is None
    assert (tmp_path / "stream").read_bytes() == b"zip" and os.listdir(tmp_path) == ["stream"]

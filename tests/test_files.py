"""Atomically written files get the permissions of a plain open(): saves and benchmark results."""

from __future__ import annotations

import os
import stat

import pytest

from muzero_agents.files import replace_atomically, temporary_file


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


def test_new_files_get_the_umask_mode_and_existing_ones_keep_theirs(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    _write(target, "first")
    assert target.read_text() == "first" and _mode(target) == umask_022
    os.chmod(target, 0o600)  # the user made it private: a rewrite keeps that, as open() would
    _write(target, "second")
    assert target.read_text() == "second" and _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_muzero_save_and_benchmark_results_are_readable_by_others(tmp_path, umask_022):
    from benchmarks import runner
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

"""Atomically written files get the permissions of a plain open(): saves and benchmark results."""

from __future__ import annotations

import os
import stat
import tempfile

import pytest

from muzero_agents.files import replace_atomically


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield 0o644
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_replace_atomically_gives_the_umask_mode_not_mkstemps_0600(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    target.write_text("old")
    fd, tmp = tempfile.mkstemp(dir=tmp_path)
    os.write(fd, b"new")
    os.close(fd)
    assert _mode(tmp) == 0o600
    replace_atomically(tmp, target)
    assert target.read_text() == "new" and not os.path.exists(tmp)
    assert _mode(target) == umask_022


def test_muzero_save_and_benchmark_results_are_readable_by_others(tmp_path, umask_022):
    from benchmarks import runner
    from muzero_agents import MuZero

    model = MuZero("MlpPolicy", "CartPole-v1", num_simulations=2, learning_starts=10)
    model.save(tmp_path / "model")
    assert _mode(tmp_path / "model.zip") == umask_022
    record = {"algo": "muzero", "task": "CartPole-v1", "seed": 0, "protocol": {}, "rows": []}
    runner.save_run(tmp_path, record)
    for path in (tmp_path / "runs").iterdir():
        assert _mode(path) == umask_022, path

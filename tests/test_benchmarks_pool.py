"""The harness's worker processes end with it: SIGTERM, Ctrl-C (SIGINT) or SIGKILL of the parent."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 120.0  # spawned workers import torch and the harness: slow on a loaded machine
EXIT_S = 30.0  # the harness gives terminated workers 5 s before it kills them


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie has ended


def _workers(parent: int) -> list[int]:
    """The spawned multiprocessing workers whose parent is ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[1] != parent:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"spawn_main" in cmdline and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _wait_for_workers(process: subprocess.Popen, count: int) -> list[int]:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the parent ended early:\n{process.communicate()[0]}"
        workers = _workers(process.pid)
        if len(workers) >= count:
            return workers
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"{count} workers did not start within {STARTUP_S} s")


def _assert_all_end(process: subprocess.Popen, workers: list[int]) -> None:
    try:
        process.wait(timeout=EXIT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"the parent did not exit within {EXIT_S} s of the signal")
    deadline = time.monotonic() + EXIT_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"worker processes {survivors} outlived the harness"


def _start(args: list[str]) -> subprocess.Popen:
    """The harness as a user's shell starts it: Ctrl-C (SIGINT) at its default, even where the tests
    themselves run with SIGINT ignored (a job a non-interactive shell put in the background)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_the_harness_ends_its_workers(tmp_path, signum):
    harness = ["-m", "benchmarks", "run", "--suite", "smoke", "--jobs", "2", "--no-progress"]
    process = _start([*harness, "--out", str(tmp_path / "out")])
    workers = _wait_for_workers(process, 2)
    time.sleep(3.0)  # into the runs
    process.send_signal(signum)
    _assert_all_end(process, workers)
    assert process.returncode == (143 if signum == signal.SIGTERM else 130)


POOL_SCRIPT = textwrap.dedent(
    """
    import time
    from benchmarks.harness.pool import worker_pool

    with worker_pool(2) as pool:
        futures = [pool.submit(time.sleep, 600) for _ in range(3)]
        time.sleep(600)
    """
)


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["SIGTERM", "SIGINT", "SIGKILL"]
)
def test_worker_pool_workers_end_with_their_parent(signum):
    process = _start(["-c", POOL_SCRIPT])
    workers = _wait_for_workers(process, 2)
    process.send_signal(signum)
    _assert_all_end(process, workers)


def test_worker_pool_runs_jobs_and_checks_its_size():
    from benchmarks.harness.pool import worker_pool

    with worker_pool(2) as pool:
        assert sorted(pool.map(abs, [-1, -2, 3])) == [1, 2, 3]
    with pytest.raises(ValueError, match="n_workers must be >= 1, got 0"):
        with worker_pool(0):
            pass

"""`kill -9` during saves: the final files are always whole (the previous copy or the new one),
the next save removes what the killed one left, and training resumes from the last checkpoint.

Each kill lands at a random moment inside a save: the process under test prints "saving" when a
save starts and "saved <seconds>" when it ends, and the test sleeps a random fraction (0 to 1.3)
of the last save's duration after "saving" before sending SIGKILL.
"""

from __future__ import annotations

import functools
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from muzero_agents.files import load_pickle_checked, save_pickle_atomically

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and fork are POSIX")

FILES_MODULE = Path(__file__).resolve().parent.parent / "muzero_agents" / "files.py"
TRIALS = 20
PAYLOAD_FLOATS = 2_500_000  # 20 MB: a replay buffer large enough that its save takes a while

# Saves one 20 MB pickle. It loads files.py alone (the module needs only the standard library)
# so that twenty children start in a fraction of a second each, without torch.
PICKLE_CHILD = textwrap.dedent(
    """
    import importlib.util, sys, time
    import numpy as np
    spec = importlib.util.spec_from_file_location("files_under_test", sys.argv[1])
    files = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(files)
    generation = int(sys.argv[3])
    obj = {"generation": generation, "payload": np.full(int(sys.argv[4]), generation, np.float64)}
    print("saving buffer", flush=True)
    start = time.perf_counter()
    files.save_pickle_atomically(sys.argv[2], obj)
    print(f"saved buffer {time.perf_counter() - start:.4f}", flush=True)
    """
)

# A fork server: it imports torch and muzero_agents and trains once (loading Numba's cache),
# then for each line "<folder> <seed>" on stdin forks a child that trains a tiny MuZero on
# CartPole with checkpoints every 20 steps, marking the start and end of each file's save.
# Forking spares each of the twenty trials the seconds of imports; one torch thread keeps the
# fork safe. It prints "child <pid>" after each fork and "reaped" once the child is gone, first
# ending the line a child killed during a print may have left open.
LEARN_SERVER = textwrap.dedent(
    """
    import os, sys, tempfile, time
    import torch
    torch.set_num_threads(1)
    from stable_baselines3.common.callbacks import CheckpointCallback
    from muzero_agents import MuZero

    def marked(kind, save, *args, **kwargs):
        print(f"saving {kind}", flush=True)
        start = time.perf_counter()
        save(*args, **kwargs)
        print(f"saved {kind} {time.perf_counter() - start:.4f}", flush=True)

    class MarkedMuZero(MuZero):
        def save(self, *args, **kwargs):
            marked("model", super().save, *args, **kwargs)

        def save_replay_buffer(self, *args, **kwargs):
            marked("buffer", super().save_replay_buffer, *args, **kwargs)

    def learn(folder, seed, steps):
        model = MarkedMuZero(
            "MlpPolicy", "CartPole-v1", learning_starts=16, batch_size=8, num_simulations=2,
            unroll_steps=2, td_steps=5, buffer_size=20_000, seed=seed,
            policy_kwargs=dict(network_kwargs=dict(hidden_dim=16, net_arch=[32])),
        )
        model.learn(steps, callback=CheckpointCallback(20, folder, save_replay_buffer=True))

    with tempfile.TemporaryDirectory() as warm_up:
        learn(warm_up, 0, 40)
    print("ready", flush=True)
    for line in sys.stdin:
        folder, seed = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                learn(folder, int(seed), 1_000_000)
            finally:
                os._exit(1)
        print(f"child {pid}", flush=True)
        os.waitpid(pid, 0)
        print("\\nreaped", flush=True)  # on a line of its own, even after a killed child's unended one
    """
)


def _start(command: list[str], stderr_path: Path, timeout: float) -> subprocess.Popen:
    """A child with piped text stdin/stdout, killed by a watchdog after ``timeout`` seconds."""
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
    watchdog = threading.Timer(timeout, process.kill)
    watchdog.daemon = True
    watchdog.start()
    return process


def _lines_until(stream, end: str | None) -> Iterator[str]:
    for line in stream:
        if end is not None and line.startswith(end):
            return
        yield line


def _kill_during_save(
    lines: Iterator[str], kill: Callable[[], None], saves_before: int, rng: random.Random, expected: float
) -> float | None:
    """SIGKILL at a random moment of the save after ``saves_before`` finished ones: up to 1.3
    times the duration of the last save of that kind of file (``expected`` seconds before any)
    after it starts. Return how long that save took if it reported finishing before the kill."""
    finished, durations = 0, {}
    for line in lines:
        words = line.split() or [""]
        if words[0] == "saved":
            finished, durations[words[1]] = finished + 1, float(words[2])
        elif words[0] == "saving" and finished >= saves_before:
            time.sleep(rng.uniform(0.0, 1.3 * durations.get(words[1], expected)))
            kill()
            break
    else:
        pytest.fail("the process under test ended before the kill (its stderr is in the test's tmp_path)")
    # a kill during the print can leave a line without its end: the server's "reaped" ends it
    finished = re.match(r"\s*saved \S+ (\d+(?:\.\d+)?)", " ".join(lines))
    return float(finished.group(1)) if finished else None


def _generation(path: Path) -> int:
    """The generation a pickle of ours holds, checking that every element agrees (not torn)."""
    obj = load_pickle_checked(path, dict, "a test payload")
    payload = obj["payload"]
    assert payload.shape == (PAYLOAD_FLOATS,) and np.all(payload == obj["generation"])
    return obj["generation"]


def _temporaries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_kill_during_pickle_saves_leaves_the_old_or_the_new_copy(tmp_path):
    rng = random.Random(0)
    path, stderr = tmp_path / "buffer.pkl", tmp_path / "stderr.txt"
    start = time.perf_counter()
    save_pickle_atomically(path, {"generation": 0, "payload": np.zeros(PAYLOAD_FLOATS)})
    expected = time.perf_counter() - start  # then the children's own save times
    current, interrupted, leftovers = 0, 0, 0
    for generation in range(1, TRIALS + 1):
        command = [sys.executable, "-c", PICKLE_CHILD, str(FILES_MODULE), str(path), str(generation)]
        child = _start(command + [str(PAYLOAD_FLOATS)], stderr, timeout=60)
        took = _kill_during_save(_lines_until(child.stdout, None), child.kill, 0, rng, expected)
        assert child.wait() in (0, -signal.SIGKILL), stderr.read_text()[-3000:]
        interrupted += took is None
        expected = expected if took is None else 0.5 * (expected + took)
        found = _generation(path)
        assert found in (current, generation), f"trial {generation}: holds generation {found}"
        current = found
        leftovers += len(_temporaries(tmp_path))
    print(f"{interrupted} of {TRIALS} kills came inside the save; {leftovers} temporaries left")
    assert interrupted >= 1 and leftovers >= 1, "no kill landed inside a save: the test proved nothing"
    save_pickle_atomically(path, {"generation": -1, "payload": np.full(PAYLOAD_FLOATS, -1.0)})
    assert _generation(path) == -1
    assert sorted(os.listdir(tmp_path)) == ["buffer.pkl", "stderr.txt"]


def _steps(path: Path) -> int:
    return int(path.name.split("_")[-2])


def _check_checkpoints_and_resume(folder: Path) -> int:
    """Every checkpoint file loads; learning resumes from the last model with its buffer; saving
    again to the path a killed save was writing removes its temporary file. Returns how many
    temporary files the kill left."""
    import gymnasium as gym

    from muzero_agents import MuZero
    from muzero_agents.replay import TrajectoryReplay

    models = sorted(folder.glob("rl_model_*_steps.zip"), key=_steps)
    buffers = {_steps(path): path for path in folder.glob("rl_model_replay_buffer_*_steps.pkl")}
    assert models, f"no checkpoint in {sorted(os.listdir(folder))}"
    for path in buffers.values():  # none torn
        load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")
    for path in models[-2:]:  # the latest loads even when the kill came before its buffer's save
        MuZero.load(path)
    complete = [path for path in models if _steps(path) in buffers]
    assert complete, f"no checkpoint has both files: {sorted(os.listdir(folder))}"
    model = MuZero.load(complete[-1], env=gym.make("CartPole-v1"))
    model.load_replay_buffer(buffers[_steps(complete[-1])])
    model.learn(8, reset_num_timesteps=False)
    assert model.num_timesteps >= _steps(complete[-1]) + 8
    leftovers = _temporaries(folder)
    for name in leftovers:  # ".<target>.<pid>-<hex>.tmp": save to that target again
        target = folder / name[1:].rsplit(".", 2)[0]
        (model.save if target.suffix == ".zip" else model.save_replay_buffer)(target)
    assert _temporaries(folder) == [], sorted(os.listdir(folder))
    return len(leftovers)


@pytest.mark.skipif(sys.platform != "linux", reason="forking after importing torch is safe on Linux")
def test_kill_during_learn_with_checkpoints_leaves_loadable_checkpoints(tmp_path):
    rng, stderr = random.Random(1), tmp_path / "stderr.txt"
    server = _start([sys.executable, "-c", LEARN_SERVER], stderr, timeout=300)
    interrupted, leftovers = 0, 0
    try:
        for _ in _lines_until(server.stdout, "ready"):  # the warm-up's own checkpoints
            pass
        assert server.poll() is None, stderr.read_text()[-3000:]
        for trial in range(TRIALS):
            folder = tmp_path / f"trial{trial}"
            assert server.poll() is None, f"trial {trial}: the server ended: {stderr.read_text()[-3000:]}"
            server.stdin.write(f"{folder} {trial}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline().split()[1])
            lines = _lines_until(server.stdout, "reaped")
            kill = functools.partial(os.kill, pid, signal.SIGKILL)
            interrupted += _kill_during_save(lines, kill, rng.randint(2, 5), rng, 0.02) is None
            leftovers += _check_checkpoints_and_resume(folder)
    finally:
        server.kill()
        server.wait()
    print(f"{interrupted} of {TRIALS} kills came inside a checkpoint's save; {leftovers} temporaries left")
    assert interrupted >= 1, "no kill landed inside a save: the test proved nothing"

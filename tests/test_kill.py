"""`kill -9` during saves: the final files are always whole (the previous copy or the new one),
the next save removes what the killed one left, and training resumes from the last checkpoint."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from muzero_agents.files import load_pickle_checked, save_pickle_atomically

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
    print("saving", flush=True)
    start = time.perf_counter()
    files.save_pickle_atomically(sys.argv[2], obj)
    print(f"saved {time.perf_counter() - start:.4f}", flush=True)
    """
)

# Trains a tiny MuZero on CartPole with checkpoints (model and replay buffer) every few steps,
# printing a marker around each checkpoint so that kills can aim inside one.
LEARN_CHILD = textwrap.dedent(
    """
    import sys, time
    import torch
    torch.set_num_threads(1)
    from stable_baselines3.common.callbacks import CheckpointCallback
    from muzero_agents import MuZero

    class MarkedCheckpoints(CheckpointCallback):
        def _on_step(self):
            due = self.n_calls % self.save_freq == 0
            if due:
                print("saving", flush=True)
                start = time.perf_counter()
            result = super()._on_step()
            if due:
                print(f"saved {time.perf_counter() - start:.4f}", flush=True)
            return result

    model = MuZero(
        "MlpPolicy", "CartPole-v1", learning_starts=16, batch_size=8, num_simulations=2,
        unroll_steps=2, td_steps=5, buffer_size=20_000,
        policy_kwargs=dict(network_kwargs=dict(hidden_dim=16, net_arch=[32])), seed=int(sys.argv[2]),
    )
    checkpoints = MarkedCheckpoints(save_freq=20, save_path=sys.argv[1], save_replay_buffer=True)
    model.learn(1_000_000, callback=checkpoints)
    """
)


class _Child:
    """A child process whose stdout markers say when a save starts and how long the last took."""

    def __init__(self, command: list[str], stderr_path: Path, timeout: float = 120.0) -> None:
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        self.watchdog = threading.Timer(timeout, self.process.kill)
        self.watchdog.start()

    def kill_during_save(self, saves_before: int, rng: random.Random, expected: float) -> float | None:
        """SIGKILL at a random moment of the save after ``saves_before`` finished ones (up to 1.3
        times ``expected`` seconds after it starts); return how long that save took if the child
        reported it finished before the kill, else None."""
        finished = 0
        for line in self.process.stdout:
            if line.startswith("saved"):
                finished += 1
            elif line.startswith("saving") and finished >= saves_before:
                time.sleep(rng.uniform(0.0, 1.3 * expected))
                self.process.kill()
                break
        else:
            self.process.wait()
            self.watchdog.cancel()
            pytest.fail(f"the child ended before the kill:\n{self.stderr_path.read_text()[-3000:]}")
        rest = self.process.stdout.read().split()
        self.process.wait()
        self.watchdog.cancel()
        assert self.process.returncode in (0, -9), self.stderr_path.read_text()[-3000:]
        return float(rest[1]) if rest[:1] == ["saved"] else None


def _generation(path: Path) -> int:
    """The generation a pickle of ours holds, checking that every element agrees (not torn)."""
    obj = load_pickle_checked(path, dict, "test payload")
    payload = obj["payload"]
    assert payload.shape == (PAYLOAD_FLOATS,) and np.all(payload == obj["generation"])
    return obj["generation"]


def _temporaries(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".tmp"))


def test_kill_during_pickle_saves_leaves_the_old_or_the_new_copy(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "buffer.pkl"
    start = time.perf_counter()
    save_pickle_atomically(path, {"generation": 0, "payload": np.zeros(PAYLOAD_FLOATS)})
    expected = time.perf_counter() - start  # then the children's own save times
    current, interrupted, leftovers = 0, 0, 0
    for generation in range(1, TRIALS + 1):
        command = [sys.executable, "-c", PICKLE_CHILD, str(FILES_MODULE), str(path), str(generation)]
        child = _Child(command + [str(PAYLOAD_FLOATS)], tmp_path / "stderr.txt")
        took = child.kill_during_save(0, rng, expected)
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
    """Every checkpoint file loads; learning resumes from the last model with its buffer."""
    import gymnasium as gym

    from muzero_agents import MuZero
    from muzero_agents.replay import TrajectoryReplay

    models = sorted(folder.glob("rl_model_*_steps.zip"), key=_steps)
    buffers = {_steps(path): path for path in folder.glob("rl_model_replay_buffer_*_steps.pkl")}
    assert models, f"no checkpoint in {sorted(os.listdir(folder))}"
    for path in buffers.values():  # none torn
        load_pickle_checked(path, TrajectoryReplay, "MuZero replay buffer")
    for path in models:  # none torn, the latest included (its buffer may not have been saved)
        MuZero.load(path)
    latest = max((path for path in models if _steps(path) in buffers), key=_steps)
    model = MuZero.load(latest, env=gym.make("CartPole-v1"))
    model.load_replay_buffer(buffers[_steps(latest)])
    model.learn(8, reset_num_timesteps=False)
    assert model.num_timesteps >= _steps(latest) + 8
    return len(models)


def test_kill_during_learn_with_checkpoints_leaves_loadable_checkpoints(tmp_path):
    rng = random.Random(1)
    for trial in range(TRIALS):
        folder = tmp_path / f"trial{trial}"
        child = _Child([sys.executable, "-c", LEARN_CHILD, str(folder), str(trial)], tmp_path / "stderr.txt")
        child.kill_during_save(rng.randint(1, 2), rng, expected=0.05)
        _check_checkpoints_and_resume(folder)

"""Ctrl-C during learn(): the replay is never left half written (loops.ReplayGuard)."""

import signal
import threading

import numpy as np
import pytest

from muzero_agents import MuZero
from muzero_agents.loops import ReplayGuard
from muzero_agents.replay import TrajectoryReplay


def _inconsistencies(replay: TrajectoryReplay) -> list[str]:
    """Where the ring's bookkeeping disagrees with what it holds: the valid count, and every
    finished episode's steps in consecutive rows of its column."""
    found = []
    if replay._num_valid != int(replay._valid.sum()):
        found.append(f"_num_valid {replay._num_valid}, valid slots {int(replay._valid.sum())}")
    for row, env in zip(*np.nonzero(replay._valid & (replay._ep_len >= 0)), strict=True):
        length, step = replay._ep_len[row, env], replay._step[row, env]
        for ahead in range(1, length - step):
            later = (row + ahead) % replay.rows
            if not replay._valid[later, env] or replay._step[later, env] != step + ahead:
                found.append(f"episode at row {row}, env {env}: step {step + ahead} missing")
                break
    return found


def test_a_guard_holds_ctrl_c_until_its_block_ends():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with ReplayGuard():
            signal.raise_signal(signal.SIGINT)
            done.append("the whole block ran")
    assert done == ["the whole block ran"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_guard_with_a_lock_releases_it_when_ctrl_c_is_delivered():
    lock = threading.Lock()
    with pytest.raises(KeyboardInterrupt):
        with ReplayGuard(lock):
            signal.raise_signal(signal.SIGINT)
    assert not lock.locked()
    held_elsewhere = []
    thread = threading.Thread(target=lambda: held_elsewhere.append(ReplayGuard(lock).__enter__()))
    thread.start()
    thread.join()
    assert held_elsewhere and lock.locked()  # a thread other than the main one holds no signal
    lock.release()


def test_a_guards_threads_lock_alone_leaves_ctrl_c_alone():
    guard = ReplayGuard(threading.Lock())
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with guard.threads_lock:
            signal.raise_signal(signal.SIGINT)
            reached.append("the rest of the block")  # only where Ctrl-C was held back
    assert reached == [] and not guard._lock.locked()


@pytest.mark.parametrize("background_training", [False, True])
def test_ctrl_c_while_a_step_is_stored_leaves_the_replay_whole(monkeypatch, fast_kwargs, background_training):
    written = TrajectoryReplay._write_row
    calls = []

    def write_then_interrupt(replay, *args):
        written(replay, *args)
        calls.append(1)
        if len(calls) == 40:  # Ctrl-C after the row is written, before add() moves on
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(TrajectoryReplay, "_write_row", write_then_interrupt)
    model = MuZero("MlpPolicy", "CartPole-v1", seed=0, background_training=background_training, **fast_kwargs)
    with pytest.raises(KeyboardInterrupt):
        model.learn(400)
    assert model.replay_buffer._rows_written == 40 == model.num_timesteps  # the step was stored whole
    monkeypatch.setattr(TrajectoryReplay, "_write_row", written)
    model.learn(200, reset_num_timesteps=False)
    assert not _inconsistencies(model.replay_buffer)

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


class _HandOverLock:
    """A lock whose release by the main thread waits until another thread has taken and left it."""

    def __init__(self) -> None:
        self._lock, self.other_done = threading.Lock(), threading.Event()

    def acquire(self, *args, **kwargs) -> bool:
        return self._lock.acquire(*args, **kwargs)

    def release(self) -> None:
        self._lock.release()
        if threading.current_thread() is threading.main_thread():
            assert self.other_done.wait(5)

    def locked(self) -> bool:
        return self._lock.locked()


def test_a_thread_that_takes_the_guard_as_the_main_thread_leaves_it_touches_no_signal():
    lock = _HandOverLock()
    guard, errors = ReplayGuard(lock), []

    def trainer():
        try:
            with guard:
                pass
        except BaseException as error:  # signal.signal outside the main thread raises
            errors.append(error)
        finally:
            lock.other_done.set()

    thread = threading.Thread(target=trainer)
    with guard:
        thread.start()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


class _CtrlCAtAcquire:
    """A lock at whose first acquire Ctrl-C arrives: as it is granted, or while another thread
    holds it (``busy``: that try times out)."""

    def __init__(self, busy: bool) -> None:
        self._lock, self._busy, self.tries = threading.Lock(), busy, 0

    def acquire(self, *args, **kwargs) -> bool:
        self.tries += 1
        granted = False if self._busy and self.tries == 1 else self._lock.acquire(*args, **kwargs)
        if self.tries == 1:
            signal.raise_signal(signal.SIGINT)
        return granted

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()


@pytest.mark.parametrize("busy", [False, True])
def test_ctrl_c_as_the_guards_lock_is_taken_never_leaves_it_held(busy):
    lock, ran = _CtrlCAtAcquire(busy), []
    with pytest.raises(KeyboardInterrupt):
        with ReplayGuard(lock):
            ran.append("the block")
    assert ran == ([] if busy else ["the block"])  # waiting is cut short; a granted lock is used
    assert not lock.locked() and signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_while_waiting_for_a_held_lock_cuts_the_wait_short():
    lock = threading.Lock()
    lock.acquire()  # held elsewhere, for 5 s at most (a guard that waited on would then enter)
    safety = threading.Timer(5.0, lock.release)
    safety.start()
    threading.Timer(0.2, signal.raise_signal, (signal.SIGINT,)).start()
    with pytest.raises(KeyboardInterrupt):
        with ReplayGuard(lock):
            pytest.fail("the guard waited on after Ctrl-C")
    safety.cancel()
    assert lock.locked() and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    lock.release()


def test_a_ctrl_c_handler_that_goes_on_lets_the_wait_go_on():
    lock, handled = threading.Lock(), []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: handled.append(signum))
    try:
        lock.acquire()
        threading.Timer(0.1, signal.raise_signal, (signal.SIGINT,)).start()
        threading.Timer(0.4, lock.release).start()
        with ReplayGuard(lock):
            entered = True
    finally:
        signal.signal(signal.SIGINT, previous)
    assert entered and handled == [signal.SIGINT] and not lock.locked()


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

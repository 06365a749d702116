"""Worker processes that end with the benchmark that started them.

``worker_pool`` is a ``ProcessPoolExecutor`` of spawned processes with three guarantees:

- Ctrl-C (SIGINT) or SIGTERM of the parent ends the workers: while the pool is open the parent
  turns SIGTERM into ``SystemExit(143)``, and when the ``with`` block is left by any exception
  (Ctrl-C's ``KeyboardInterrupt`` included) it terminates the workers, then kills those still
  alive after ``GRACE_S``, before the exception goes on (finished runs are saved already);
- workers ignore SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent
  alone decides to stop, so a worker never turns the signal into a failed run and goes on
  with the next job;
- a worker whose parent is gone (killed by SIGKILL, which no handler sees) exits within
  ``PARENT_POLL_S`` seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

SPAWN = multiprocessing.get_context("spawn")
"""The start method of every worker (safe with torch's threads); build its queues and locks from it."""
GRACE_S = 5.0
"""Seconds a terminated worker gets to exit before it is killed."""
PARENT_POLL_S = 1.0
"""How often a worker checks that its parent is still alive."""


@contextmanager
def worker_pool(
    n_workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``n_workers`` spawned processes, each running ``initializer(*initargs)`` first.

    Leaving the block normally waits for the submitted jobs; leaving it by an exception (or by
    SIGINT/SIGTERM) cancels the queued jobs and ends the running ones' processes.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(
        max_workers=n_workers,
        mp_context=SPAWN,
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )
    with sigterm_raises_system_exit():
        try:
            yield pool
        except BaseException:
            end_workers(pool, [p for p in multiprocessing.active_children() if p not in before])
            raise
        else:
            pool.shutdown(wait=True)


def end_workers(pool: ProcessPoolExecutor, workers: list[Any]) -> None:
    """Terminate ``workers`` (the pool's processes), kill the ones still alive after ``GRACE_S``,
    and shut the pool down without waiting for its jobs."""
    for worker in workers:
        worker.terminate()
    deadline = time.monotonic() + GRACE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join(1.0)
    pool.shutdown(wait=False, cancel_futures=True)


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def sigterm_raises_system_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises ``SystemExit(143)`` in the main thread (off it, where
    handlers cannot be set, nothing changes); the previous handler comes back after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_system_exit)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _start_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    """Runs first in every worker: ignore SIGINT, exit with the parent, then the pool's initializer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _exit_with_parent(parent_pid: int) -> None:
    """Exit the worker at once when its parent is gone (the worker then has another parent)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)

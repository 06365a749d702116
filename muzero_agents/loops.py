"""Who runs self-play and the gradient steps, and where: the only owner of threads and locks.

``SerialLoop`` (the default) takes the gradient steps the replay ratio owes in the caller's
thread, between two env steps. ``BackgroundLoop`` (``MuZero(background_training=True)``) takes
them on a thread of their own while the caller's thread keeps playing with an *acting* copy of
the network; on a two-core machine both sides then run at nearly full speed, since torch ops
and the search's Numba kernels spend most of their time outside the GIL.

Both offer the same face to ``MuZero.learn``: ``start``, ``before_env_step``, ``owe``,
``drain_statistics``, ``stop``, the ``acting_policy`` to play with, the ``replay_lock`` to hold
around the replay (a ``ReplayGuard``), and ``paused()`` for readers of the learner's state (``save``, ``predict``
with the weight average). A loop that runs actors elsewhere (processes, machines) is one more
class with this face.

What the background loop's two threads share, and how:
- the replay: every ``add``, the reads of each ``sample`` and every priority update run under
  ``replay_lock`` (Reanalyze's network calls and searches run outside it, on copies), which
  in the caller's thread also holds Ctrl-C back until the replay is whole again;
- the search's cached trees are per thread, so the trainer's Reanalyze search and self-play's
  never share arrays;
- the weights: after each gradient step the trainer publishes a copy of the learner's state,
  and the acting copy loads the newest one before each env step, so self-play lags by the
  steps finished during one search and env step;
- the work: the caller adds gradient-step credit, the trainer takes a step whenever a whole
  step is owed, so the replay ratio is a ceiling; steps still owed when ``learn`` ends are
  dropped;
- statistics: kept by the trainer and handed to the caller, so only the caller's thread writes
  to SB3's logger;
- pausing: the step lock is held for each gradient step, so ``save`` takes a consistent
  snapshot of weights and optimizer between two steps.

An exception on the trainer thread stops it and is raised again on the caller's thread at its
next check. Thread timing decides which weights play which move, so seeded runs with background
training are not reproducible step for step.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

STOP_TIMEOUT_S = 60.0  # longest wait for the step in progress when stopping
WAIT_POLL_S = 0.05  # how often a wait for the replay lock looks for a held Ctrl-C

GradientStep = Callable[[contextlib.AbstractContextManager], dict[str, float]]


class ReplayGuard:
    """Held around every read and write of the replay: ``lock`` (where another thread shares the
    replay) and, in the main thread, Ctrl-C (SIGINT) held back until the block ends, so an
    interrupted ``learn()`` never leaves a step half stored or priorities half updated. Not
    reentrant; one holder at a time.
    """

    def __init__(self, lock: threading.Lock | None = None) -> None:
        self._lock = lock
        self._held: tuple[Any, list[int]] | None = None  # the holder's (previous handler, signals held)

    def __enter__(self) -> ReplayGuard:
        in_main = threading.current_thread() is threading.main_thread()
        if not in_main or signal.getsignal(signal.SIGINT) is None:  # None: not set from Python
            if self._lock is not None:
                self._lock.acquire()
            return self
        received: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
        acquired = self._lock is None
        try:  # held from before the lock is taken, so Ctrl-C cannot land between the two
            while not (acquired or received):
                acquired = self._lock.acquire(timeout=WAIT_POLL_S)
        finally:
            if acquired:
                self._held = (previous, received)
            else:
                signal.signal(signal.SIGINT, previous)
        if not acquired:  # Ctrl-C while waiting: nothing is half done, so deliver it now
            signal.raise_signal(signal.SIGINT)
            return self.__enter__()  # its handler let the program go on: wait again
        return self

    def __exit__(self, *exc_info) -> None:
        if self._release():  # delivered now, to the handler it was meant for
            signal.raise_signal(signal.SIGINT)

    @property
    def threads_lock(self) -> contextlib.AbstractContextManager:
        """The lock alone, for long reads (a snapshot) that Ctrl-C may interrupt harmlessly."""
        return contextlib.nullcontext() if self._lock is None else self._lock

    def _release(self) -> list[int]:
        """Release the lock, then give Ctrl-C its own handler back (one in between is still
        held); returns the signals held. The holder's state is taken first, since another
        thread may hold the guard as soon as the lock is free."""
        held, self._held = self._held, None
        try:
            if self._lock is not None:
                self._lock.release()
        finally:
            if held is not None:
                signal.signal(signal.SIGINT, held[0])
        return [] if held is None else held[1]


class SerialLoop:
    """Gradient steps in the caller's thread, as soon as they are owed.

    :param gradient_step: takes one step (given the replay lock to hold) and returns its scalars
    :param learner_policy: the network trained, which self-play also plays with
    """

    def __init__(self, gradient_step: GradientStep, learner_policy: nn.Module) -> None:
        self._gradient_step = gradient_step
        self.acting_policy = learner_policy
        self.replay_lock = ReplayGuard()
        self._statistics: list[dict[str, float]] = []

    def paused(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    @property
    def steps_owed(self) -> int:
        return 0

    @property
    def running(self) -> bool:
        return False

    def start(self) -> SerialLoop:
        return self

    def before_env_step(self) -> None:
        """Nothing to sync: self-play plays with the learner's own network."""

    def owe(self, steps: int) -> None:
        for _ in range(steps):
            self._statistics.append(self._gradient_step(self.replay_lock))

    def drain_statistics(self) -> list[dict[str, float]]:
        statistics, self._statistics = self._statistics, []
        return statistics

    def stop(self, in_flight: BaseException | None = None) -> bool:
        """Always stopped; returns True (the loop can be dropped)."""
        return True


class BackgroundLoop:
    """Gradient steps on a daemon thread whenever a whole step is owed.

    :param gradient_step: takes one step (given the replay lock to hold) and returns its scalars
    :param learner_policy: the network trained
    :param acting_policy: the copy self-play plays with, kept at the newest published weights
    """

    def __init__(
        self, gradient_step: GradientStep, learner_policy: nn.Module, acting_policy: nn.Module
    ) -> None:
        self._gradient_step = gradient_step
        self._learner = learner_policy
        self.acting_policy = acting_policy
        self.replay_lock = ReplayGuard(threading.Lock())
        self.step_lock = threading.Lock()
        self._owed = threading.Condition()
        self._credit = 0
        self._stopping = False
        self._weights_lock = threading.Lock()
        self._weights: dict[str, torch.Tensor] | None = None
        self._version = 0
        self._acting_version = 0
        self._statistics: list[dict[str, float]] = []
        self._statistics_lock = threading.Lock()
        self.error: BaseException | None = None
        self.steps_taken = 0
        self._thread = threading.Thread(target=self._run, name="muzero-trainer", daemon=True)

    # ------------------------------------------------------------------ caller's side

    def start(self) -> BackgroundLoop:
        self._thread.start()
        return self

    def paused(self) -> contextlib.AbstractContextManager:
        """Hold the trainer between two gradient steps."""
        return self.step_lock

    def owe(self, steps: int) -> None:
        """Add ``steps`` gradient steps to the trainer's work."""
        if steps <= 0:
            return
        with self._owed:
            self._credit += steps
            self._owed.notify()

    @property
    def steps_owed(self) -> int:
        with self._owed:
            return self._credit

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def before_env_step(self) -> None:
        """Raise the trainer's failure, if any; load the newest weights into the acting copy."""
        self.raise_if_failed()
        if self._acting_version == self._version:
            return
        with self._weights_lock:
            weights, version = self._weights, self._version
        if weights is not None:
            self.acting_policy.load_state_dict(weights)
            self._acting_version = version

    def raise_if_failed(self) -> None:
        """Raise the trainer's exception, if it had one, on the caller's thread."""
        if self.error is not None:
            raise RuntimeError(
                f"MuZero's background trainer failed ({type(self.error).__name__}: {self.error}); "
                "pass background_training=False to run gradient steps in the main loop."
            ) from self.error

    def drain_statistics(self) -> list[dict[str, float]]:
        """The training scalars of the steps since the last call (one dict per step)."""
        with self._statistics_lock:
            statistics, self._statistics = self._statistics, []
        return statistics

    def stop(self, in_flight: BaseException | None = None) -> bool:
        """Let the step in progress finish, end the thread, drop the owed steps; raise its failure.

        Returns False if the thread did not end in time (keep the loop: ``save`` still pauses it).
        With an exception already on its way out (``in_flight``), the trainer's own failure or a
        stop that timed out is added to it as a note instead of replacing it.
        """
        with self._owed:
            self._stopping = True
            self._owed.notify()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            message = f"MuZero's background trainer did not stop within {STOP_TIMEOUT_S:.0f} s."
            if in_flight is None:
                raise RuntimeError(message)
            _add_note(in_flight, message)
            return False
        if in_flight is None:
            self.raise_if_failed()
        elif self.error is not None and in_flight.__cause__ is not self.error:
            _add_note(in_flight, f"MuZero's background trainer had also failed: {self.error!r}")
        return True

    # ------------------------------------------------------------------ trainer's side

    def _run(self) -> None:
        try:
            while self._take_owed_step():
                with self.step_lock:
                    statistics = self._gradient_step(self.replay_lock)
                self.steps_taken += 1
                self._publish_weights()
                with self._statistics_lock:
                    self._statistics.append(statistics)
        except BaseException as error:  # handed to the caller's thread, never lost
            self.error = error

    def _take_owed_step(self) -> bool:
        """Wait until a step is owed (True, and take it) or the trainer is stopped (False)."""
        with self._owed:
            while self._credit == 0 and not self._stopping:
                self._owed.wait()
            if self._stopping:
                return False
            self._credit -= 1
            return True

    def _publish_weights(self) -> None:
        weights = {name: value.detach().clone() for name, value in self._learner.state_dict().items()}
        with self._weights_lock:
            self._weights = weights
            self._version += 1


def _add_note(error: BaseException, note: str) -> None:
    """Attach ``note`` to an exception on its way out (a warning before Python 3.11's add_note)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        warnings.warn(note, RuntimeWarning, stacklevel=3)


def make_loop(
    background: bool,
    gradient_step: GradientStep,
    learner_policy: nn.Module,
    acting_copy: Callable[[], nn.Module],
) -> SerialLoop | BackgroundLoop:
    """The loop ``MuZero(background_training=...)`` asks for, started (``acting_copy`` builds the
    background loop's acting copy of the learner's network)."""
    if background:
        return BackgroundLoop(gradient_step, learner_policy, acting_copy()).start()
    return SerialLoop(gradient_step, learner_policy).start()


def refuse_if_running(loop: SerialLoop | BackgroundLoop | None) -> None:
    """A loop an earlier ``learn()`` could not stop in time must end before the next one starts."""
    if loop is not None and loop.running:
        raise RuntimeError(
            "A background trainer from an earlier learn() is still running (it did not stop in "
            "time); wait for it to finish before calling learn() again."
        )

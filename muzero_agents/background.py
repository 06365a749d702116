"""Gradient steps on a thread of their own, beside self-play (``MuZero(background_training=True)``).

In the plain loop one process alternates a batched search with the gradient steps the replay
ratio owes, so on a two-core machine one core idles. Here a trainer thread takes the gradient
steps on the learner's network while the caller's thread keeps playing with an *acting* copy of
it. Torch ops and the search's Numba kernels spend most of their time outside the GIL, so the
two overlap almost fully: in a connect-four prototype (8 envs, 25 simulations, one torch thread
each) each side kept 93-95% of the speed it had alone.

What the two threads share, and how:
- the replay buffer: every ``add``, the reads of each ``sample`` and every priority update run
  under ``replay_lock`` (Reanalyze's network calls or searches run outside it, on copies);
- the search's cached trees are per thread (``search._tree.get_tree``), so the trainer's
  Reanalyze search and self-play's never share arrays;
- the weights: after each gradient step the trainer publishes a copy of the learner's state,
  and the acting policy loads the newest one at the start of each self-play step
  (``sync_acting_policy``), so self-play lags by the steps finished during one search and env
  step;
- the work: the caller adds gradient-step credit (replay ratio x transitions), the trainer takes
  a step whenever a whole step is owed, so ``replay_ratio`` is a ceiling. Self-play never waits
  for a gradient step (only for the lock around the replay reads):
  where gradient steps are the slower side the ratio reached is lower, and the steps still owed
  when ``learn`` ends are dropped;
- training statistics: kept by the trainer and handed to the caller (``drain_statistics``), so
  only the caller's thread writes to SB3's logger;
- pausing: ``step_lock`` is held for each gradient step, so ``save`` can take a consistent
  snapshot of weights and optimizer between two steps.

An exception on the trainer thread stops it and is raised again on the caller's thread at its
next check. Thread timing decides which weights play which move, so seeded runs with background
training are not reproducible step for step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from torch import nn

STOP_TIMEOUT_S = 60.0  # longest wait for the step in progress when stopping


class BackgroundTrainer:
    """Runs ``gradient_step()`` on a daemon thread whenever a whole step is owed."""

    def __init__(
        self,
        gradient_step: Callable[[], dict[str, float]],
        learner: nn.Module,
        acting: nn.Module,
        replay_lock: threading.Lock | None = None,
    ) -> None:
        """``replay_lock``: the lock ``gradient_step`` takes around the replay buffer (a new one if None)."""
        self._gradient_step = gradient_step
        self._learner = learner
        self.acting_policy = acting
        self.replay_lock = threading.Lock() if replay_lock is None else replay_lock
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

    def start(self) -> BackgroundTrainer:
        self._thread.start()
        return self

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

    def raise_if_failed(self) -> None:
        """Raise the trainer's exception, if it had one, on the caller's thread."""
        if self.error is not None:
            raise RuntimeError(
                f"MuZero's background trainer failed ({type(self.error).__name__}: {self.error}); "
                "pass background_training=False to run gradient steps in the main loop."
            ) from self.error

    def sync_acting_policy(self) -> None:
        """Load the newest published weights into the acting policy (no-op if it has them)."""
        if self._acting_version == self._version:
            return
        with self._weights_lock:
            weights, version = self._weights, self._version
        if weights is not None:
            self.acting_policy.load_state_dict(weights)
            self._acting_version = version

    def drain_statistics(self) -> list[dict[str, float]]:
        """The training scalars of the steps since the last call (one dict per step)."""
        with self._statistics_lock:
            statistics, self._statistics = self._statistics, []
        return statistics

    def stop(self) -> None:
        """Let the step in progress finish, end the thread, drop the owed steps."""
        with self._owed:
            self._stopping = True
            self._owed.notify()
        if self._thread.is_alive():
            self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError(f"MuZero's background trainer did not stop within {STOP_TIMEOUT_S:.0f} s.")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ trainer's side

    def _run(self) -> None:
        try:
            while self._take_owed_step():
                with self.step_lock:
                    statistics = self._gradient_step()
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

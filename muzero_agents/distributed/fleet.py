"""The learner's view of its self-play actors: what each is doing, and what to do when one fails.

Each actor has a slot that is ``running`` (it plays pieces), ``restarting`` (it failed; Ray is
starting it again and the fleet probes it until it answers) or ``dead`` (Ray spent its
``cluster.MAX_RESTARTS`` process restarts, or it failed that many times in a row without
playing a piece). A probe that fails while Ray still restarts the actor (Ray raises
``ActorDiedError`` for a call in flight at any death, restarts left or not) is sent again; the
slot is given up only once Ray's record of the actor says it is dead for good. A failure is one of:

- the actor's process died (killed, crashed, its node gone): Ray restarts it;
- its env raised inside ``play``: the actor is alive but its envs are in an unknown state, so
  the fleet has it rebuild them (``rebuild_envs``), or, if that fails too, restarts it through
  Ray (``ray.kill(no_restart=False)``).

Either way the slot's ``generation`` moves on, so that results of calls made before the failure
are dropped, and the caller is told (``Failure``) so that it can end that actor's running
episodes in the replay. At most the pieces in flight at the failure are lost. Probes carry the
slot's ``restarts``, from which the actor seeds its envs and search afresh (``worker.py``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from muzero_agents.env_checks import BadObservation
from muzero_agents.distributed.cluster import MAX_RESTARTS, import_ray, restarts_spent, stop_workers

RUNNING, RESTARTING, DEAD = "running", "restarting", "dead"
PROBE_INTERVAL_S = 0.5  # between two probes of a restarting actor
IDLE_WAIT_S = 0.01  # a poll with nothing asked (the trainer is behind) waits this long at least
START_TIMEOUT_S = 300.0  # longest wait for the actors' first answer (imports, Numba's cache)


@dataclass
class Slot:
    """One actor: its handle, state, calls in flight and failures so far."""

    index: int
    handle: Any
    n_envs: int = 0
    state: str = RUNNING
    generation: int = 0
    in_flight: int = 0  # pieces asked for and not answered yet
    steps_in_flight: int = 0  # the vectorized env steps of those pieces
    restarts: int = 0
    deaths: int = 0  # process deaths seen (Ray restarts the process after each, up to MAX_RESTARTS)
    failures_in_row: int = 0  # failures since its last piece
    probe_at: float = 0.0
    probe: str = "describe"  # what a probe calls: "rebuild_envs" after an env's failure
    node_id: str = ""
    last_error: str = ""


@dataclass(frozen=True)
class Failure:
    """An actor failed (``slot``); ``error`` says how."""

    slot: Slot
    error: str


class Fleet:
    """Calls to the actors and their answers (see the module docstring).

    :param handles: the Ray actors, one per slot, in index order
    """

    def __init__(self, handles: list[Any]) -> None:
        self.ray = import_ray()
        self.slots = [Slot(index, handle) for index, handle in enumerate(handles)]
        self._calls: dict[Any, tuple[Slot, int, str, int]] = {}  # ref -> (slot, generation, kind, steps)
        self.restarts = 0

    @property
    def alive(self) -> int:
        return sum(slot.state == RUNNING for slot in self.slots)

    def describe_all(self) -> list[dict[str, Any]]:
        """Every actor's ``describe()``, once they have all started; a clear error if one cannot."""
        refs = [slot.handle.describe.remote() for slot in self.slots]
        answers = answers_once_started(self.ray, refs, "self-play actor", "num_actors")
        for slot, answer in zip(self.slots, answers):
            slot.n_envs = answer["n_envs"]
        return answers

    def play(self, slot: Slot, weights: list, version: int, progress_remaining: float, steps: int) -> None:
        """Ask ``slot``'s actor for a piece of ``steps`` vectorized env steps (``SelfPlayWorker.play``);
        it comes back from ``poll``."""
        self._send(slot, "play", (weights, version, progress_remaining, steps), steps)
        slot.in_flight += 1
        slot.steps_in_flight += steps

    def call(self, slot: Slot, method: str, *args) -> None:
        """Call ``method`` (a probe) of ``slot``'s actor; its answer comes back from ``poll``."""
        self._send(slot, method, args, steps=0)

    def _send(self, slot: Slot, method: str, args: tuple, steps: int) -> None:
        ref = getattr(slot.handle, method).remote(*args)
        self._calls[ref] = (slot, slot.generation, method, steps)

    def probe_due(self) -> None:
        """Probe the restarting actors whose probe is due (one probe in flight each)."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.state == RESTARTING and slot.probe_at <= now:
                slot.probe_at = float("inf")  # until this probe answers
                self.call(slot, slot.probe, slot.restarts)

    def poll(self, timeout: float) -> tuple[list[tuple[Slot, Any]], list[Failure]]:
        """Wait up to ``timeout`` s for answers; returns the pieces played (slot, piece), in the
        order they came, and the failures seen."""
        if not self._calls:  # nothing asked: the trainer is behind, or every actor is restarting
            time.sleep(min(timeout, max(IDLE_WAIT_S, self._next_probe() - time.monotonic())))
            return [], []
        refs = list(self._calls)
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        pieces, failures = [], []
        for ref in ready:
            slot, generation, method, steps = self._calls.pop(ref)
            slot.in_flight -= method == "play"
            slot.steps_in_flight -= steps
            try:
                answer = self.ray.get(ref)
            except self.ray.exceptions.RayError as error:
                if isinstance(getattr(error, "cause", None), BadObservation):
                    raise error.cause from None  # the env's data: learn() stops, as without actors
                failure = self._failed(slot, generation, error)
                failures.extend([failure] if failure else [])
                continue
            if generation != slot.generation or slot.state == DEAD:
                continue  # played after its actor failed (a call made before): its envs' state is unknown
            if method != "play":  # a probe answered: the actor plays again
                slot.state = RUNNING
            else:
                slot.node_id, slot.failures_in_row = answer.node_id, 0
                pieces.append((slot, answer))
        return pieces, failures

    def _failed(self, slot: Slot, generation: int, error: Exception) -> Failure | None:
        """Handle a failed call: a running actor's failure restarts it (``Failure``); a failed probe
        probes again, restarts the process, or gives the slot up."""
        if slot.state == DEAD or generation != slot.generation:
            return None  # already handled
        if slot.state == RESTARTING:  # a probe failed
            self._probe_failed(slot, error)
            return None
        return self._restart(slot, error)

    def _probe_failed(self, slot: Slot, error: Exception) -> None:
        """The actor is still restarting (probe again soon), could not rebuild its envs (restart
        it through Ray), or is gone for good (Ray's restarts are spent)."""
        exceptions = self.ray.exceptions
        slot.probe_at = time.monotonic() + PROBE_INTERVAL_S
        if isinstance(error, exceptions.RayTaskError):  # rebuild_envs raised: a fresh process then
            slot.probe, slot.last_error = "describe", error_summary(error)
            self._kill_for_restart(slot)
        elif isinstance(error, exceptions.ActorDiedError):  # it died again, or for good
            slot.deaths += 1
            if restarts_spent(slot.handle, error, slot.deaths):
                self._give_up(slot, error_summary(error))

    def _give_up(self, slot: Slot, error: str) -> None:
        slot.state, slot.last_error = DEAD, error
        warnings.warn(f"self-play actor {slot.index} is gone for good: {error}", RuntimeWarning, stacklevel=3)
        stop_workers([slot.handle])  # its core goes back to the cluster

    def _restart(self, slot: Slot, error: Exception) -> Failure:
        """A running actor failed: its envs raised (rebuild them) or its process died (Ray restarts it)."""
        slot.state, slot.generation, slot.last_error = RESTARTING, slot.generation + 1, error_summary(error)
        slot.restarts += 1
        slot.deaths += isinstance(error, self.ray.exceptions.RayActorError)
        slot.failures_in_row += 1
        self.restarts += 1
        if slot.failures_in_row > MAX_RESTARTS:  # it fails again and again without playing a piece
            self._give_up(slot, f"{MAX_RESTARTS + 1} failures in a row, the last: {slot.last_error}")
            return Failure(slot, slot.last_error)
        slot.probe_at = time.monotonic()
        env_failed = isinstance(error, self.ray.exceptions.RayTaskError)
        slot.probe = "rebuild_envs" if env_failed else "describe"
        warnings.warn(
            f"self-play actor {slot.index} failed ({slot.last_error}); restarting "
            f"{'its envs' if env_failed else 'it'} (failure {slot.failures_in_row} in a row; it is given up "
            f"after {MAX_RESTARTS + 1}); learning goes on",
            RuntimeWarning,
            stacklevel=2,
        )
        return Failure(slot, slot.last_error)

    def _kill_for_restart(self, slot: Slot) -> None:
        slot.deaths += 1
        try:
            self.ray.kill(slot.handle, no_restart=False)
        except Exception:  # it died meanwhile: Ray restarts it anyway
            pass

    def _next_probe(self) -> float:
        return min(
            (slot.probe_at for slot in self.slots if slot.state == RESTARTING), default=time.monotonic()
        )

    def raise_if_all_dead(self) -> None:
        if all(slot.state == DEAD for slot in self.slots):
            errors = "; ".join(f"actor {slot.index}: {slot.last_error}" for slot in self.slots)
            raise RuntimeError(f"every self-play actor failed for good, so learning cannot go on ({errors}).")

    def close(self, stop: Callable[[list[Any]], None]) -> None:
        """Stop every actor (``stop`` ends them) and forget the calls in flight."""
        self._calls.clear()
        stop([slot.handle for slot in self.slots])


def answers_once_started(ray, refs: list, role: str, setting: str, timeout: float = START_TIMEOUT_S) -> list:
    """The answers of every ``role`` (their first calls ``refs``), or a clear error naming
    ``setting`` when one has not started within ``timeout`` seconds or failed to start."""
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
    if len(ready) < len(refs):
        free = ray.available_resources().get("CPU", 0)
        raise RuntimeError(
            f"only {len(ready)} of {len(refs)} {role}s started within {timeout:.0f} s; each needs one "
            f"CPU and the Ray cluster has {free:g} free: lower {setting} or add nodes."
        )
    try:
        return ray.get(refs)
    except ray.exceptions.RayError as error:
        raise RuntimeError(f"a {role} could not start: {error_summary(error)}") from error


def error_summary(error: Exception) -> str:
    """One line for an actor's failure: the env's own exception where there is one, also for an
    actor whose creation failed (Ray passes that exception on only as text)."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}"
    raised = raised_in_creation(str(error)) if getattr(error, "actor_init_failed", False) else None
    if raised:
        return f"{type(error).__name__}: its creation failed: {raised}"
    first = str(error).strip().splitlines()
    return f"{type(error).__name__}: {first[0] if first else ''}"


def raised_in_creation(text: str) -> str | None:
    """The exception that Ray's message for a failed actor creation ends with, on one line
    (``module.Type: message``, as Python prints it): after the traceback's last frame, or after
    the first line where there is no traceback (an argument Ray could not fetch); None if none."""
    lines = text.strip().splitlines()
    frames = [number for number, line in enumerate(lines) if line.startswith("  File ")]
    after = lines[frames[-1] + 1 if frames else 1 :]
    while after and (not after[0].strip() or after[0].startswith(" ")):  # source lines, carets, notes
        after = after[1:]
    return " ".join(line.strip() for line in after if line.strip()) or None

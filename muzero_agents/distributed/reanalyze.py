"""Reanalyze workers (``MuZero(reanalyze_kwargs=dict(num_workers=M))``): Reanalyze's network calls and
searches in Ray actors, for windows the learner samples ahead.

Each gradient step trains on one window of the replay whose targets Reanalyze refreshed. With
workers, the gradient step takes its window from ``RemoteReanalyze``: it keeps a short queue of
windows sampled ahead (one more than the workers running), copies out of the replay what
Reanalyze evaluates for each (the stored observations its targets read, and their legal masks)
and sends that to a worker. The step then takes the oldest window, waits for its evaluation and
refreshes it as ``Reanalyzer.refresh`` does; its own Reanalyze forward pass or search is
skipped. So while the learner trains on one window, the workers evaluate the next ones. A
window is used up to ``num_workers`` gradient steps after it was sampled: its
priorities and importance weights (``beta``) are those of then.

A worker (``ReanalyzeWorker``) holds a CPU copy of the network, loaded from the weights the
learner publishes (``weights.py``, which self-play actors read too) when their version is newer,
and evaluates as the learner does (``network_evaluate``: one value-only network call, or a fresh
search when ``reanalyze_kwargs["search"]``). The logger records
``distributed/reanalyze_weight_lag`` (learner steps between those weights and the newest),
``distributed/reanalyze_workers_alive``, ``distributed/reanalyze_failures`` and
``distributed/reanalyze_fallbacks``.

A worker that fails, or has not answered in time, costs speed only: that window is evaluated in
the learner's process (a fallback), and the worker gets no work until it answers a probe (Ray
restarts a dead one up to ``cluster.MAX_RESTARTS`` times). "In time" is ``RESULT_TIMEOUT_S``, or
``TIMEOUT_MARGIN`` times the longest evaluation that worker has reported (a late one included)
when that is longer, so a worker whose windows simply take long (large batches, searches) is
waited for after its first late answer. A change of the search settings during ``learn`` drops
the windows sampled ahead under the old ones when Reanalyze searches.
"""

from __future__ import annotations

import collections
import contextlib
import time
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from muzero_agents.distributed import cluster
from muzero_agents.distributed.fleet import START_TIMEOUT_S, answers_once_started, error_summary
from muzero_agents.distributed.weights import PublishedWeights
from muzero_agents.distributed.worker import PolicyRecipe
from muzero_agents.planning import Planner
from muzero_agents.reanalyze import ReanalyzeInputs, Reanalyzer, network_evaluate
from muzero_agents.replay import ReplayWindow

if TYPE_CHECKING:
    from muzero_agents.algorithm import MuZero
    from muzero_agents.learner import ReplayStep

RUNNING, RESTARTING, DEAD = "running", "restarting", "dead"
RESULT_TIMEOUT_S = 60.0  # shortest wait for one window's evaluation before the learner does it
TIMEOUT_MARGIN = 4.0  # the wait is at least this times the worker's longest evaluation so far
PROBE_INTERVAL_S = 0.5  # between two probes of a restarting worker


@dataclass(frozen=True)
class ReanalyzeSpec:
    """What a Reanalyze worker needs: how to build its network, its seed and its index."""

    policy: PolicyRecipe
    seed: int | None
    index: int


@dataclass(frozen=True)
class Evaluation:
    """Reanalyze's evaluation of one window: values [M], policies [M, A] (None: value-only), the
    version of the weights that computed them, and the seconds the worker spent on it."""

    values: np.ndarray
    policies: np.ndarray | None
    version: int
    seconds: float = 0.0


class ReanalyzeWorker:
    """One Reanalyze worker's process: a CPU copy of the network and a planner (see the module
    docstring); ``cluster.start_workers`` runs it as a Ray actor."""

    def __init__(self, spec: ReanalyzeSpec) -> None:
        torch.set_num_threads(1)  # one core per worker
        self.policy = spec.policy.build()
        entropy = None if spec.seed is None else [spec.seed, spec.index]
        self.rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(1,)))  # not an actor's
        self.planner_args: tuple | None = None
        self.planner: Planner | None = None
        self.version = -1

    def ping(self) -> int:
        """The version of the weights held (a probe: the worker answers)."""
        return self.version

    def set_weights(self, weights: dict[str, torch.Tensor], version: int) -> None:
        """Load the learner's weights of ``version``."""
        self.policy.load_state_dict(weights)
        self.version = version

    def evaluate(
        self, weights: list, version: int, observations: np.ndarray, legal_masks, settings: tuple
    ) -> Evaluation:
        """``evaluate_now`` with the weights of ``version`` (``weights[0]``, their Ray object,
        fetched only when the version changed)."""
        import ray

        started = time.perf_counter()
        if version != self.version:
            self.set_weights(ray.get(weights[0]), version)
        evaluation = self.evaluate_now(observations, legal_masks, settings)
        return replace(evaluation, seconds=time.perf_counter() - started)

    def evaluate_now(self, observations: np.ndarray, legal_masks, settings: tuple) -> Evaluation:
        """Reanalyze's ``evaluate`` with the weights held. ``settings``: (search, num_simulations,
        ``Planner``'s arguments), the learner's of now."""
        search, num_simulations, planner_args = settings
        if planner_args != self.planner_args:
            self.planner, self.planner_args = Planner(*planner_args), planner_args
        evaluate = network_evaluate(self.policy, self.planner, num_simulations, search, self.rng)
        values, policies = evaluate(observations, legal_masks)
        policies = None if policies is None else np.asarray(policies, dtype=np.float32)
        return Evaluation(np.asarray(values, dtype=np.float64), policies, self.version)


@dataclass
class _Worker:
    """The learner's view of one worker."""

    index: int
    handle: Any
    state: str = RUNNING
    generation: int = 0  # moves on at each failure: evaluations asked for before it are not awaited
    failures_in_row: int = 0
    deaths: int = 0
    probe: Any = None  # the call whose answer brings a restarting worker back
    probe_at: float = 0.0
    probe_is_evaluation: bool = False  # the probe is a late evaluation (else a ping)
    slowest_s: float = 0.0  # the longest evaluation the worker reported

    def timeout(self) -> float:
        """How long the learner waits for this worker's evaluation."""
        return max(RESULT_TIMEOUT_S, TIMEOUT_MARGIN * self.slowest_s)

    def answered(self, evaluation: Evaluation) -> None:
        self.slowest_s = max(self.slowest_s, evaluation.seconds)


@dataclass
class _Ahead:
    """A window sampled ahead, what Reanalyze evaluates for it (None: nothing), and the call."""

    window: ReplayWindow
    reanalyzer: Reanalyzer
    key: tuple
    inputs: ReanalyzeInputs | None
    worker: _Worker | None = None
    generation: int = 0
    ref: Any = None


class RemoteReanalyze:
    """The learner's side of the Reanalyze workers (see the module docstring): called by the
    gradient step (``ReplayStep.windows``) for its refreshed window.

    :param model: the model that learns (its replay, settings and step count)
    :param handles: the workers, in index order
    :param weights: the weights the workers load (this class publishes them when due)
    """

    def __init__(self, model: MuZero, handles: list[Any], weights: PublishedWeights) -> None:
        self.model, self.weights, self.ray = model, weights, weights.ray
        self.workers = [_Worker(index, handle) for index, handle in enumerate(handles)]
        self._ahead: collections.deque[_Ahead] = collections.deque()
        self._lags: collections.deque[int] = collections.deque()  # by the gradient step, for the logger
        self.failures = self.fallbacks = 0
        self._said_all_dead = False

    @property
    def alive(self) -> int:
        return sum(worker.state == RUNNING for worker in self.workers)

    def wait_started(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until every worker answers; a clear error if one cannot start."""
        refs = [worker.handle.ping.remote() for worker in self.workers]
        answers_once_started(self.ray, refs, "Reanalyze worker", 'reanalyze_kwargs["num_workers"]', timeout)

    # ------------------------------------------------------------------ the gradient step's side
    def __call__(
        self,
        source: ReplayStep,
        batch_size: int,
        beta: float,
        next_observations: bool,
        replay_lock: contextlib.AbstractContextManager,
    ) -> ReplayWindow:
        """The window for this gradient step, refreshed by Reanalyze (``gradient_step_on_replay``'s
        ``windows``): the oldest sampled ahead, once the queue is topped up."""
        model = self.model
        if self.weights.due(model._n_updates):
            self.weights.publish(model.policy, model._n_updates)
        self._check_probes()
        reanalyzer = source.reanalyzer
        searches = self._search_settings() if reanalyzer.search else None
        settings = (reanalyzer.fraction, reanalyzer.search, reanalyzer.td_lambda, searches)
        key = (batch_size, next_observations, id(source.replay), settings)
        if self._ahead and self._ahead[0].key != key:  # train(batch_size=...), or settings changed
            self._ahead.clear()
        while self.alive and len(self._ahead) <= self.alive:
            self._ahead.append(self._sample_ahead(source, key, beta, replay_lock))
        if not self._ahead:  # no worker to evaluate: as in one process
            window = _sample(source, batch_size, beta, next_observations, replay_lock)
            return source.reanalyzer.refresh(window, source.replay, source.evaluate, replay_lock)
        return self._refreshed(self._ahead.popleft(), source)

    def _sample_ahead(self, source: ReplayStep, key: tuple, beta: float, replay_lock) -> _Ahead:
        """Sample a window, copy out Reanalyze's inputs and send them to the least busy worker."""
        batch_size, next_observations = key[:2]
        window = _sample(source, batch_size, beta, next_observations, replay_lock)
        reanalyzer = source.reanalyzer
        ahead = _Ahead(window, reanalyzer, key, reanalyzer.inputs(window, source.replay, replay_lock))
        if ahead.inputs is None:
            return ahead
        busy = collections.Counter(id(item.worker) for item in self._ahead)
        worker = min((w for w in self.workers if w.state == RUNNING), key=lambda w: busy[id(w)])
        num_simulations, planner = self._search_settings()
        settings = (reanalyzer.search, num_simulations, planner)
        weights, version = self.weights.current()
        inputs = ahead.inputs
        ahead.worker, ahead.generation = worker, worker.generation
        ahead.ref = worker.handle.evaluate.remote(
            weights, version, inputs.observations, inputs.legal_masks, settings
        )
        return ahead

    def _search_settings(self) -> tuple:
        """(num_simulations, ``Planner``'s arguments): what a worker's search uses, the learner's of now."""
        model = self.model
        return model.num_simulations, (
            model.search,
            dict(model.search_kwargs),
            model.discount,
            model.two_player,
        )

    def _refreshed(self, ahead: _Ahead, source: ReplayStep) -> ReplayWindow:
        """``ahead``'s window refreshed with its worker's evaluation, or evaluated here if the
        worker failed or is late."""
        if ahead.inputs is None:
            return ahead.window
        evaluation = self._result(ahead)
        if evaluation is None:
            self.fallbacks += 1
            values, policies = source.evaluate(ahead.inputs.observations, ahead.inputs.legal_masks)
        else:
            values, policies = evaluation.values, evaluation.policies
            self._lags.append(self.model._n_updates - evaluation.version)
        return ahead.reanalyzer.apply(ahead.window, ahead.inputs, values, policies)

    def _result(self, ahead: _Ahead) -> Evaluation | None:
        """The worker's evaluation, or None when it failed (since) or is late."""
        worker = ahead.worker
        if worker.state != RUNNING or worker.generation != ahead.generation:
            return None
        timeout = worker.timeout()
        ready, _ = self.ray.wait([ahead.ref], timeout=timeout)
        if not ready:  # no new work until this answer comes (it serves as the probe)
            worker.state, worker.probe, worker.probe_is_evaluation = RESTARTING, ahead.ref, True
            worker.generation += 1
            warnings.warn(
                f"Reanalyze worker {worker.index} did not answer within {timeout:.0f} s; "
                "the learner refreshes that window itself, and the worker gets no work until it answers",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        try:
            evaluation = self.ray.get(ahead.ref)
        except self.ray.exceptions.RayError as error:
            self._failed(worker, error)
            return None
        worker.failures_in_row = 0
        worker.answered(evaluation)
        return evaluation

    # ------------------------------------------------------------------ failures
    def _failed(self, worker: _Worker, error: Exception) -> None:
        """A call failed: a dead process is probed until Ray has restarted it; a worker that
        fails again and again is given up. Its windows are evaluated in the learner meanwhile."""
        self.failures += 1
        worker.failures_in_row += 1
        worker.generation += 1
        summary = error_summary(error)
        if worker.failures_in_row > cluster.MAX_RESTARTS:
            self._give_up(worker, f"{worker.failures_in_row} failures in a row, the last: {summary}")
            return
        if isinstance(error, self.ray.exceptions.RayActorError):
            worker.deaths += 1
            worker.state, worker.probe, worker.probe_at = RESTARTING, None, time.monotonic()
        warnings.warn(
            f"Reanalyze worker {worker.index} failed ({summary}); the learner refreshes its windows "
            "until it is back; learning goes on",
            RuntimeWarning,
            stacklevel=3,
        )

    def _check_probes(self) -> None:
        """Send the probes due to restarting workers; a worker whose probe answered works again."""
        now = time.monotonic()
        for worker in self.workers:
            if worker.state != RESTARTING:
                continue
            if worker.probe is None:
                if worker.probe_at <= now:
                    worker.probe, worker.probe_is_evaluation = worker.handle.ping.remote(), False
                continue
            ready, _ = self.ray.wait([worker.probe], timeout=0)
            if not ready:
                continue
            try:
                answer = self.ray.get(worker.probe)
            except self.ray.exceptions.RayError as error:
                worker.probe, worker.probe_at = None, now + PROBE_INTERVAL_S
                died = isinstance(error, self.ray.exceptions.ActorDiedError)
                worker.deaths += died
                if died and cluster.restarts_spent(worker.handle, error, worker.deaths):
                    self._give_up(worker, error_summary(error))
                continue
            if worker.probe_is_evaluation:  # a late evaluation: wait that long next time
                worker.answered(answer)
            worker.state, worker.probe = RUNNING, None

    def _give_up(self, worker: _Worker, error: str) -> None:
        worker.state = DEAD
        warnings.warn(
            f"Reanalyze worker {worker.index} is gone for good: {error}", RuntimeWarning, stacklevel=4
        )
        cluster.stop_workers([worker.handle])
        if not self._said_all_dead and all(w.state == DEAD for w in self.workers):
            self._said_all_dead = True
            warnings.warn(
                "every Reanalyze worker is gone: Reanalyze runs in the learner's process from now on",
                RuntimeWarning,
                stacklevel=4,
            )

    # ------------------------------------------------------------------ the logger's side
    def record(self, logger) -> None:
        """Record the monitoring into SB3's logger (call it from the thread that dumps the logs)."""
        while self._lags:  # appends and pops are thread-safe on a deque
            logger.record_mean("distributed/reanalyze_weight_lag", self._lags.popleft())
        logger.record("distributed/reanalyze_workers_alive", self.alive)
        logger.record("distributed/reanalyze_failures", self.failures)
        logger.record("distributed/reanalyze_fallbacks", self.fallbacks)

    def close(self) -> None:
        """End the workers and forget the windows sampled ahead."""
        self._ahead.clear()
        cluster.stop_workers([worker.handle for worker in self.workers])


def start(model: MuZero, weights: PublishedWeights, recipe: PolicyRecipe) -> RemoteReanalyze:
    """Start ``reanalyze_kwargs["num_workers"]`` workers (Ray is connected) and their learner's side."""
    count = model.reanalyze_kwargs["num_workers"]
    specs = [ReanalyzeSpec(recipe, model.seed, index) for index in range(count)]
    return RemoteReanalyze(model, cluster.start_workers(ReanalyzeWorker, specs, role="reanalyze"), weights)


def _sample(source: ReplayStep, batch_size: int, beta: float, next_observations: bool, replay_lock):
    with replay_lock:
        source.replay.beta = beta
        return source.replay.sample(batch_size, next_observations=next_observations)

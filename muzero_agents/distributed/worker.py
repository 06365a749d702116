"""A self-play actor's process: its own envs, a CPU copy of the network, the usual search.

``SelfPlayWorker`` is a plain class; ``cluster.start_workers`` runs it as a Ray actor. Each
``play`` call loads the newest weights the learner published (when the version changed), plays
``steps`` vectorized env steps with ``SelfPlayActor`` and returns them as a ``Piece``: the same
``StepRecord``s that ``TrajectoryReplay.add`` takes, in order. A restarted actor builds its envs
afresh, and so does an actor whose env raised (``rebuild_envs``); the first piece after either
says so (``fresh``), and the learner ends the episodes the old envs left running.

Seeds: an actor's envs and search draw from the model's seed, the actor's index and its
restart count (the learner's count of its failures, sent with ``describe`` and
``rebuild_envs``) and nothing else, so a seeded run seeds its envs the same way every time.
Without a seed each actor draws fresh entropy.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from muzero_agents.actor import SelfPlayActor, StepRecord, env_action_masks
from muzero_agents.distributed.envs import EnvSource
from muzero_agents.env_checks import check_observations
from muzero_agents.planning import Planner
from muzero_agents.policies import MuZeroPolicy


@dataclass(frozen=True)
class PolicyRecipe:
    """What builds the learner's network again, on the CPU: its class and constructor arguments."""

    policy_class: type[MuZeroPolicy]
    observation_space: spaces.Space
    action_space: spaces.Space
    policy_kwargs: dict[str, Any]

    def build(self) -> MuZeroPolicy:
        policy = self.policy_class(
            self.observation_space, self.action_space, lambda _: 0.0, **self.policy_kwargs
        )
        policy.set_training_mode(False)
        return policy.to("cpu")


@dataclass(frozen=True)
class WorkerSpec:
    """Everything an actor needs to play as the learner's model does.

    :param env: how to build its envs
    :param policy: how to build its network
    :param planner: ``Planner``'s arguments (search, search_kwargs, discount, two_player)
    :param num_simulations: simulations per move
    :param self_play_kwargs: the model's self-play settings
    :param seed: the model's seed (None: unseeded); each actor and each restart seeds from it
    :param index: the actor's number, 0 to ``num_actors - 1``
    """

    env: EnvSource
    policy: PolicyRecipe
    planner: tuple
    num_simulations: int
    self_play_kwargs: dict[str, Any]
    seed: int | None
    index: int


@dataclass
class Piece:
    """``steps`` vectorized env steps of one actor, in order.

    :param records: one ``StepRecord`` per step, as ``TrajectoryReplay.add`` takes it
    :param infos: per step, the envs' infos (without ``terminal_observation``, which is in the record)
    :param last_observations: the observations after the last step (where the next piece starts)
    :param statistics: per step, the search's statistics (``SelfPlayActor.statistics``)
    :param weights_version: the learner step count of the weights that played
    :param fresh: the actor's first piece since it started: its envs began new episodes
    :param step_seconds: time in ``SelfPlayActor.step`` (search and env step), over all steps
    :param seconds: time spent playing the piece, envs included
    :param pid: the actor's process
    :param node_id: the Ray node it ran on
    """

    records: list[StepRecord]
    infos: list[list[dict]]
    last_observations: np.ndarray
    statistics: list[dict[str, float]]
    weights_version: int
    fresh: bool
    step_seconds: float
    seconds: float
    pid: int
    node_id: str


class SelfPlayWorker:
    """One self-play actor (see the module docstring); ``spec`` is a ``WorkerSpec``."""

    def __init__(self, spec: WorkerSpec) -> None:
        torch.set_num_threads(1)  # one core per actor
        self.spec = spec
        self.policy = spec.policy.build()
        self.actor = SelfPlayActor(Planner(*spec.planner), spec.num_simulations, np.random.default_rng())
        self.version = -1
        self.env = None
        self.rebuild_envs(restarts=0)  # a process Ray restarts starts here too; describe() reseeds it

    def rebuild_envs(self, restarts: int | None = None) -> dict[str, Any]:
        """Close the envs (after one of them failed) and build them afresh, seeded for restart
        ``restarts`` (None: the next seeds of the current restart); the next piece is ``fresh``.
        Returns ``describe()``."""
        from stable_baselines3.common.base_class import BaseAlgorithm

        if restarts is not None:
            self._seed(restarts)
        if self.env is not None:
            try:
                self.env.close()
            except Exception:  # a broken env may fail to close too: it is dropped either way
                pass
        self.env = BaseAlgorithm._wrap_env(self.spec.env.build())
        self._reset_envs()
        return self.describe()

    def describe(self, restarts: int | None = None) -> dict[str, Any]:
        """The envs' count and spaces, for the learner to check against its own. A ``restarts``
        other than the actor's own (Ray restarted its process) reseeds it and resets its envs."""
        if restarts is not None and restarts != self.restarts:
            self._seed(restarts)
            self._reset_envs()
        return dict(
            n_envs=self.env.num_envs,
            observation_space=self.env.observation_space,
            action_space=self.env.action_space,
            pid=os.getpid(),
        )

    def _seed(self, restarts: int) -> None:
        """Seeds from the model's seed, the actor's index and ``restarts`` only (no seed: fresh entropy)."""
        spec = self.spec
        entropy = None if spec.seed is None else [spec.seed, spec.index, restarts]
        self.seeds, self.restarts = np.random.SeedSequence(entropy), restarts
        self.actor.rng = np.random.default_rng(self.seeds.spawn(1)[0])

    def _reset_envs(self) -> None:
        """Seed and reset the envs; every env starts a new episode and the next piece is ``fresh``."""
        self.env.seed(int(self.seeds.spawn(1)[0].generate_state(1)[0]))
        self.observations = self.env.reset()
        check_observations(self.observations, self.policy.observation_space, where="the env's reset()")
        self.actor.start(self.env.num_envs, self.spec.self_play_kwargs, envs_reset=True)
        self.fresh = True

    def play(self, weights: list, version: int, progress_remaining: float, steps: int) -> Piece:
        """Play ``steps`` env steps with the weights of ``version`` (``weights[0]`` is their Ray
        object, fetched only when the version changed) at the temperature of ``progress_remaining``."""
        import ray

        started = time.perf_counter()
        if version != self.version:
            self.policy.load_state_dict(ray.get(weights[0]))
            self.version = version
        temperature = self.actor.temperature(progress_remaining)
        records, infos, statistics, step_seconds = [], [], [], 0.0
        action_count = int(self.env.action_space.n)
        for _ in range(steps):
            legal_mask = env_action_masks(self.env, action_count)
            searched = time.perf_counter()
            record, self.observations, step_infos = self.actor.step(
                self.env, self.policy, self.observations, legal_mask, temperature
            )
            step_seconds += time.perf_counter() - searched
            records.append(record)
            statistics.append(self.actor.statistics(record, self.actor.last_prior_logits))
            infos.append([_without_terminal_observation(info) for info in step_infos])
        fresh, self.fresh = self.fresh, False
        return Piece(
            records=records,
            infos=infos,
            last_observations=self.observations,
            statistics=statistics,
            weights_version=self.version,
            fresh=fresh,
            step_seconds=step_seconds,
            seconds=time.perf_counter() - started,
            pid=os.getpid(),
            node_id=ray.get_runtime_context().get_node_id(),
        )


def _without_terminal_observation(info: dict) -> dict:
    return {key: value for key, value in info.items() if key != "terminal_observation"}

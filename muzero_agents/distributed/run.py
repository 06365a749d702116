"""``MuZero.learn`` with self-play actors: the learner's side of a distributed run.

The learner process keeps SB3's contract and everything that trains: the network, the
optimizer, the replay (one shard per actor), callbacks, the logger and the progress bar. The
actors play; each answer is a ``Piece`` of ``steps_per_piece`` vectorized steps (the last ones
fewer: only what ``total_timesteps`` still needs), which the learner takes step by step as the
in-process loop does (store, count, call the callbacks, take the gradient steps the replay ratio
owes, log).

Backpressure both ways: the learner waits for pieces when it has trained all the data owes, and
asks an actor for a new piece only while that actor has fewer than ``in_flight`` pieces asked
for and the trainer owes at most ``max_steps_owed`` steps, so actors never run ahead of the
replay ratio by more than those pieces. Weights travel through Ray's object store
(``weights.py``): the learner puts a CPU copy every ``weight_interval`` gradient steps, and an
actor fetches it with its next piece when the version (the learner's step count then) is newer
than its own.

With Reanalyze workers (``reanalyze_kwargs["num_workers"]``) the gradient steps take their
windows from the Reanalyze workers (``reanalyze.py``), which read the same weights; ``LocalRun``
runs them beside self-play in this process (``num_actors=0``).
"""

from __future__ import annotations

import math
import time
import warnings
from typing import TYPE_CHECKING

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from muzero_agents import env_checks
from muzero_agents.actor import env_action_masks, env_frame_stack
from muzero_agents.distributed import cluster, reanalyze
from muzero_agents.distributed.envs import EnvSource, source_of
from muzero_agents.distributed.fleet import RUNNING, Fleet
from muzero_agents.distributed.shards import ShardedReplay
from muzero_agents.distributed.weights import WEIGHT_INTERVAL, PublishedWeights
from muzero_agents.distributed.worker import Piece, PolicyRecipe, SelfPlayWorker, WorkerSpec
from muzero_agents.policies import policy_arguments

if TYPE_CHECKING:
    from muzero_agents.algorithm import MuZero

STEPS_PER_PIECE = 16  # vectorized env steps an actor plays per call
IN_FLIGHT = 2  # pieces asked of one actor at a time: it plays the next while the learner takes one
POLL_S = 1.0  # longest wait for an answer before checking on restarting actors


class DistributedRun:
    """One ``learn`` call with ``model.num_actors`` self-play actors (see the module docstring).

    :param model: the model that learns (its settings, parts and SB3 state)
    :param steps_per_piece: vectorized env steps per piece
    :param in_flight: pieces asked of one actor at a time
    :param weight_interval: gradient steps between two weight publications
    """

    def __init__(
        self,
        model: MuZero,
        steps_per_piece: int = STEPS_PER_PIECE,
        in_flight: int = IN_FLIGHT,
        weight_interval: int = WEIGHT_INTERVAL,
    ) -> None:
        self.model = model
        self.source: EnvSource = source_of(model.env)  # refuses a live env before Ray starts
        cluster.import_ray()
        self.steps_per_piece, self.in_flight = steps_per_piece, in_flight
        self.weights = PublishedWeights(weight_interval)
        self.fleet: Fleet | None = None
        self.reanalyze: reanalyze.RemoteReanalyze | None = None
        self.env_steps, self.started = 0, time.perf_counter()
        self.nodes: set[str] = set()
        model.replay_buffer = self._replay(model)

    # ------------------------------------------------------------------ set-up
    def _replay(self, model: MuZero) -> ShardedReplay:
        """The model's sharded replay when it fits these actors, else a new one (one shard each)."""
        replay, count = model.replay_buffer, model.num_actors
        layout = model._replay_layout()
        n_envs = layout.pop("n_envs")
        if isinstance(replay, ShardedReplay) and [s.n_envs for s in replay.shards] == [n_envs] * count:
            for shard in replay.shards:
                shard.check_compatible(n_envs=n_envs, frame_stack=shard.frame_stack, **layout)
            return replay
        if len(replay):
            warnings.warn(
                f"num_actors={count}: the replay's {len(replay)} stored steps do not fit one shard per actor "
                "of this run, so learning starts with a new replay buffer.",
                UserWarning,
                stacklevel=4,
            )
        frame_stack = env_frame_stack(model.env, model.policy)
        seed = None if model.seed is None else model.seed + 1
        return ShardedReplay.build(
            [n_envs] * count, seed, model.buffer_size, frame_stack=frame_stack, **layout,
            **model.replay_buffer_kwargs,
        )  # fmt: skip

    def _specs(self) -> list[WorkerSpec]:
        model = self.model
        recipe = policy_recipe(model)
        planner = (model.search, dict(model.search_kwargs), model.discount, model.two_player)
        return [
            WorkerSpec(
                self.source,
                recipe,
                planner,
                model.num_simulations,
                dict(model.self_play_kwargs),
                model.seed,
                i,
            )
            for i in range(model.num_actors)
        ]

    def _start(self) -> None:
        """Join or start the cluster, start the actors, check that their envs match the model's."""
        model = self.model
        warm_up(model)
        cluster.connect(model.num_actors + model.reanalyze_kwargs["num_workers"])
        self.fleet = Fleet(cluster.start_workers(SelfPlayWorker, self._specs()))
        self.reanalyze = start_reanalyze(model, self.weights)  # starts while the actors do
        for index, answer in enumerate(self.fleet.describe_all()):
            mismatch = [
                f"{name} {answer[name]!r} (the model's: {ours!r})"
                for name, ours in (
                    ("n_envs", model.n_envs),
                    ("observation_space", model.observation_space),
                    ("action_space", model.action_space),
                )
                if answer[name] != ours
            ]
            if mismatch:
                raise ValueError(
                    f"self-play actor {index} built an env that differs from the model's: "
                    f"{'; '.join(mismatch)}. The env id or function must build the same env every time."
                )
        attach_reanalyze(model, self.reanalyze)
        self.started = time.perf_counter()

    # ------------------------------------------------------------------ the loop
    def run(self, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
        """Learn until ``num_timesteps`` reaches ``total_timesteps`` or a callback stops; the actors
        end when it returns or raises (Ctrl-C included)."""
        try:
            self._start()
            self._loop_until(total_timesteps, callback, log_interval)
        finally:
            detach_reanalyze(self.model, self.reanalyze)
            if self.fleet is not None:
                self.fleet.close(cluster.stop_workers)
            self._record_monitoring()

    def _loop_until(self, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
        model, fleet = self.model, self.fleet
        dumped_at = model._episode_num
        while model.num_timesteps < total_timesteps:
            self._publish_weights()
            self._ask(total_timesteps)
            fleet.probe_due()
            pieces, failures = fleet.poll(POLL_S)
            keep_going, dumped_at = self._take_pieces(
                pieces, total_timesteps, callback, log_interval, dumped_at
            )
            for failure in failures:  # after the pieces its actor played before it failed
                with model._loop.replay_lock:  # its envs are gone: end their episodes
                    model.replay_buffer.truncate_running_episodes(failure.slot.index)
            fleet.raise_if_all_dead()
            if not keep_going:
                return
            self._record_monitoring()

    def _take_pieces(
        self, pieces: list, total_timesteps: int, callback: BaseCallback, log_interval: int, dumped_at: int
    ) -> tuple[bool, int]:
        """Store ``pieces`` (slot, piece) in order until the budget; returns whether to go on, and
        the episode count at the last logger dump."""
        for slot, piece in pieces:
            callback.on_rollout_start()
            keep_going, dumped_at = self._take(slot.index, piece, callback, log_interval, dumped_at)
            if not keep_going:
                return False, dumped_at  # as SB3: a stopped rollout does not end
            callback.on_rollout_end()
            if self.model.num_timesteps >= total_timesteps:
                break
        return True, dumped_at

    def _ask(self, total_timesteps: int) -> None:
        """Ask running actors for pieces while they have room, the data asked for stays within
        ``total_timesteps`` and the trainer is not behind (backpressure). The last pieces are
        shorter: as SB3's loop, the run ends less than one vectorized step past the budget."""
        model = self.model
        asked = sum(slot.steps_in_flight * slot.n_envs for slot in self.fleet.slots)
        max_owed = max(
            1, int(model.replay_ratio * model.n_envs * self.steps_per_piece * len(self.fleet.slots))
        )
        for slot in self.fleet.slots:
            while (
                slot.state == RUNNING
                and slot.in_flight < self.in_flight
                and model.num_timesteps + asked < total_timesteps
                and model._loop.steps_owed <= max_owed
            ):
                steps = self._piece_steps(total_timesteps - model.num_timesteps - asked, slot.n_envs)
                progress = model._current_progress_remaining
                weights, version = self.weights.current()
                self.fleet.play(slot, weights, version, progress, steps)
                asked += slot.n_envs * steps

    def _piece_steps(self, still_needed: int, n_envs: int) -> int:
        """Vectorized steps of the next piece: a whole piece, or fewer where the ``still_needed``
        env steps take fewer (rounded up to whole vectorized steps of ``n_envs`` envs)."""
        return min(self.steps_per_piece, math.ceil(still_needed / n_envs))

    def _publish_weights(self) -> None:
        """Put a CPU copy of the learner's weights in the object store, every ``weight_interval`` steps."""
        model = self.model
        if self.weights.due(model._n_updates):
            with model._paused():  # between two gradient steps (which may publish too)
                if self.weights.due(model._n_updates):
                    self.weights.publish(model.policy, model._n_updates)

    # ------------------------------------------------------------------ one piece
    def _take(
        self, shard: int, piece: Piece, callback: BaseCallback, log_interval: int, dumped_at: int
    ) -> tuple[bool, int]:
        """Store the piece step by step as the in-process loop does; returns whether to go on, and
        the episode count at the last logger dump."""
        model = self.model
        model._loop.before_env_step()  # a background trainer's failure surfaces here
        if piece.fresh:  # a new actor: the episodes its shard left running cannot go on
            with model._loop.replay_lock:
                model.replay_buffer.truncate_running_episodes(shard)
        self.nodes.add(piece.node_id)
        model.logger.record_mean("distributed/weight_lag", model._n_updates - piece.weights_version)
        model.logger.record_mean("search/ms_per_step", 1000.0 * piece.step_seconds / len(piece.records))
        for index in range(len(piece.records)):
            if not self._take_step(shard, piece, index, callback):
                return False, dumped_at
            model._train_due()
            if log_interval and model._episode_num - dumped_at >= log_interval:
                dumped_at = model._episode_num
                self._record_monitoring()
                model.dump_logs()
        return True, dumped_at

    def _take_step(self, shard: int, piece: Piece, index: int, callback: BaseCallback) -> bool:
        """One vectorized step of ``piece``: checked, stored, counted; False if a callback stops."""
        model, record = self.model, piece.records[index]
        new_obs = (
            piece.records[index + 1].observations
            if index + 1 < len(piece.records)
            else piece.last_observations
        )
        checks = (
            model.observation_space,
            model.policy.support_size,
            model.num_timesteps,
            model._reward_check,
        )
        env_checks.check_step(new_obs, record.rewards, *checks)
        infos = _infos_with_terminal_observations(piece.infos[index], record.final_observations)
        with model._loop.replay_lock:
            model.replay_buffer.add(shard, **record._asdict())
        model.num_timesteps += len(record.actions)
        self.env_steps += len(record.actions)
        model._update_info_buffer(infos, record.dones)
        model._episode_num += int(np.sum(record.dones))
        model._update_current_progress_remaining(model.num_timesteps, model._total_timesteps)
        for name, value in piece.statistics[index].items():
            model.logger.record_mean(f"search/{name}", value)
        actions, rewards, dones = record.actions, record.rewards, record.dones
        callback.update_locals(
            dict(
                self=model,
                actions=actions,
                rewards=rewards,
                dones=dones,
                infos=infos,
                new_obs=new_obs,
                record=record,
            )
        )
        return callback.on_step()

    def _record_monitoring(self) -> None:
        model, fleet = self.model, self.fleet
        if fleet is None:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        model.logger.record("distributed/actors_alive", fleet.alive)
        model.logger.record("distributed/actor_restarts", fleet.restarts)
        model.logger.record("distributed/env_steps_per_s", self.env_steps / elapsed)
        model.logger.record("distributed/nodes", len(self.nodes))
        if self.reanalyze is not None:
            self.reanalyze.record(model.logger)


class LocalRun:
    """``MuZero.learn`` with self-play in this process (``num_actors=0``) and Reanalyze workers on
    Ray: the in-process loop, whose gradient steps take their windows from the workers."""

    def __init__(self, model: MuZero) -> None:
        self.model = model
        cluster.import_ray()
        self.reanalyze: reanalyze.RemoteReanalyze | None = None

    def run(self, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
        """The in-process loop; the workers end when it returns or raises."""
        model = self.model
        try:
            warm_up(model)
            cluster.connect(model.reanalyze_kwargs["num_workers"])
            self.reanalyze = start_reanalyze(model, PublishedWeights())
            attach_reanalyze(model, self.reanalyze)
            model._run(total_timesteps, _Recording(callback, self.reanalyze, model.logger), log_interval)
        finally:
            detach_reanalyze(model, self.reanalyze)


class _Recording:
    """A learner's callback that records the workers' monitoring into the logger first, at each
    env step (in the thread that dumps the logs); everything else goes to the callback."""

    def __init__(self, callback: BaseCallback, remote: reanalyze.RemoteReanalyze, logger) -> None:
        self._callback, self._remote, self._logger = callback, remote, logger

    def on_step(self) -> bool:
        self._remote.record(self._logger)
        return self._callback.on_step()

    def __getattr__(self, name: str):
        return getattr(self._callback, name)


def policy_recipe(model: MuZero) -> PolicyRecipe:
    """How workers build the model's network on their CPU."""
    return PolicyRecipe(
        model.policy_class,
        model.observation_space,
        model.action_space,
        policy_arguments(model.policy_class, model.policy_kwargs, model.learner_kwargs),
    )


def start_reanalyze(model: MuZero, weights: PublishedWeights) -> reanalyze.RemoteReanalyze | None:
    """Start the model's Reanalyze workers (None without any); Ray is connected."""
    if not model.reanalyze_kwargs["num_workers"]:
        return None
    return reanalyze.start(model, weights, policy_recipe(model))


def attach_reanalyze(model: MuZero, remote: reanalyze.RemoteReanalyze | None) -> None:
    """Once the workers answer, the gradient steps take their windows from them."""
    if remote is not None:
        remote.wait_started()
        model._remote_reanalyze = remote


def detach_reanalyze(model: MuZero, remote: reanalyze.RemoteReanalyze | None) -> None:
    """The gradient steps refresh their windows themselves again; the workers end."""
    if remote is None:
        return
    with model._paused():  # a background trainer finishes the step that uses them
        model._remote_reanalyze = None
    remote.close()


def warm_up(model: MuZero) -> None:
    """One small search here first, so that Numba compiles the search's kernels once and caches
    them for the workers on this machine, instead of each worker compiling them at once."""
    observations = np.asarray(model._last_obs)[:1]
    mask = env_action_masks(model.env, int(model.action_space.n))
    rng = np.random.default_rng(0)
    legal = None if mask is None else mask[:1]
    model.planner.plan(
        model.policy, observations, legal, num_simulations=2, explore=True, temperature=1.0, rng=rng
    )


def _infos_with_terminal_observations(infos: list[dict], finals: dict[int, np.ndarray]) -> list[dict]:
    """The envs' infos as a VecEnv gives them: a done env's holds its ``terminal_observation``."""
    return [
        ({**info, "terminal_observation": finals[env]} if env in finals else info)
        for env, info in enumerate(infos)
    ]

"""``MuZero``: Stable-Baselines3's face over the parts of the algorithm.

Per vectorized env step, the actor searches every env's observation at once and steps the envs;
its record goes to the replay; the loop takes the gradient steps the replay ratio owes, each
one a window sampled from the replay, refreshed by Reanalyze, turned into targets and handed to
the learner. The parts live in their own modules (docs/design.md); this class builds them and
keeps SB3's contract: constructor, ``learn``, ``train``, ``predict``, the logger, save and load.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import pathlib
import time
import warnings

from collections.abc import Iterator
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm, maybe_make_env
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule

from muzero_agents import distributed, env_checks, files, legacy, logs, loops, normalization, settings
from muzero_agents.actor import SelfPlayActor, env_action_masks, env_flag, env_frame_stack, env_symmetries
from muzero_agents.distributed.shards import ShardedReplay
from muzero_agents.learner import Learner, ReplayStep, gradient_step_on_replay, match_saved_average
from muzero_agents.loops import BackgroundLoop, SerialLoop
from muzero_agents.planning import Planner
from muzero_agents.policies import CnnPolicy, MlpPolicy, MuZeroPolicy, policy_arguments
from muzero_agents.reanalyze import Reanalyzer, network_evaluate
from muzero_agents.replay import TrajectoryReplay
from muzero_agents.settings import default_temperature

__all__ = ["MuZero", "default_temperature"]

SelfMuZero = TypeVar("SelfMuZero", bound="MuZero")
# settings the parts read, given to them again when set after construction (the others shape the
# replay or the network, which a set after construction does not rebuild)
PART_SETTINGS = frozenset(
    (
        "search",
        "search_kwargs",
        "discount",
        "num_simulations",
        "value_loss_coef",
        "max_grad_norm",
        "learner_kwargs",
        "learning_rate",
    )
)
# the parts and state that _setup_model builds from the settings, not saved
REBUILT_AT_LOAD = (
    "_rng",
    "planner",
    "actor",
    "learner",
    "_loop",
    "_reward_check",
)


def _policy_from_name(model: BaseAlgorithm, policy_name: str) -> type[MuZeroPolicy]:
    """SB3's lookup of a policy's name, whose error names MuZero's policies."""
    if policy_name in model.policy_aliases:
        return model.policy_aliases[policy_name]
    if policy_name == "MultiInputPolicy":
        raise ValueError(env_checks.FLATTEN_FIX)
    raise ValueError(
        f"MuZero has no policy {policy_name!r}: use 'MlpPolicy' (vectors, or Discrete observations), "
        "'CnnPolicy' (images and boards) or a subclass of muzero_agents.policies.MuZeroPolicy."
    )


class MuZero(BaseAlgorithm):
    """MuZero (Schrittwieser et al., 2020): planning with a learned latent model.

    :param policy: ``"MlpPolicy"`` (vectors), ``"CnnPolicy"`` (images, boards) or a policy class
    :param env: env, env id or VecEnv with Discrete actions; ``action_masks()`` masks the search
        root; ``is_two_player_zero_sum = True``: an alternating zero-sum game (a learned model keeps its kind)
    :param learning_rate: constant, or a schedule of the remaining progress (1 -> 0)
    :param buffer_size: replay capacity in transitions
    :param learning_starts: transitions collected before the first gradient step
    :param batch_size: positions per gradient step
    :param unroll_steps: K, steps the dynamics function is unrolled in training
    :param td_steps: n, bootstrapping horizon of the value targets
    :param td_lambda: lambda of the TD(lambda) value target (1.0: n-step returns)
    :param discount: per-step discount gamma (board games: 1.0)
    :param num_simulations: simulations per decision in self-play, Reanalyze and ``predict``
    :param search: ``"muzero"`` (pUCT, Dirichlet root noise) or ``"gumbel"`` (Gumbel MuZero:
        sequential halving at the root, completed-Q targets; good with few simulations)
    :param replay_ratio: gradient steps per collected transition
    :param value_loss_coef: weight of the value loss
    :param max_grad_norm: gradient clipping norm
    :param search_kwargs: ``pb_c_init``, ``pb_c_base``, ``dirichlet_alpha``, ``dirichlet_fraction``
        (root noise; 0: off), ``max_considered_actions`` (Gumbel's m)
    :param replay_buffer_kwargs: ``priority_alpha`` (0: uniform), ``priority_beta`` (annealed to 1)
    :param reanalyze_kwargs: ``fraction`` of each batch the newest network refreshes, ``search``
        (re-run the search there; else one value-only network call), ``num_workers`` (Ray workers
        doing that work for windows sampled ahead; 0: here; needs the ``distributed`` extra)
    :param self_play_kwargs: ``temperature`` (float or schedule), ``sampling_moves`` (later moves
        greedy; None: all sampled), ``random_opening_moves`` (open with 0..k random legal moves)
    :param learner_kwargs: ``reward_loss_coef``, ``consistency_loss_coef`` (EfficientZero's; 0:
        off), ``weight_decay``, ``mixed_precision`` (bfloat16), ``augment_symmetries`` (board images)
    :param play_kwargs: ``predict``'s ``num_simulations`` (None: self-play's) and ``ema_decay``
        (play a moving average of the weights); settable later: ``model.play_kwargs[...] = ...``
    :param background_training: gradient steps on a thread of their own beside self-play
        (``replay_ratio`` becomes a ceiling; runs are not reproducible step for step)
    :param num_actors: self-play actors on Ray, each in a process with its own envs and network copy
        (0: self-play here, no Ray). Needs the ``distributed`` extra and an env id or a function that
        returns the env (``lambda: make_vec_env(...)``), which actors can rebuild
    :param policy_kwargs: the policy's, e.g. ``support_size`` or ``network_kwargs=dict(hidden_dim=64)``
    """

    policy_aliases: ClassVar[dict[str, type[MuZeroPolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
    _get_policy_from_name = _policy_from_name  # SB3's lookup, naming MuZero's policies
    policy: MuZeroPolicy

    def __init__(
        self,
        policy: str | type[MuZeroPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-3,
        buffer_size: int = 100_000,
        learning_starts: int = 256,
        batch_size: int = 128,
        unroll_steps: int = 5,
        td_steps: int = 50,
        td_lambda: float = 1.0,
        discount: float = 0.997,
        num_simulations: int = 25,
        search: str = "muzero",
        replay_ratio: float = 0.5,
        value_loss_coef: float = 0.25,
        max_grad_norm: float = 5.0,
        search_kwargs: dict[str, Any] | None = None,
        replay_buffer_kwargs: dict[str, Any] | None = None,
        reanalyze_kwargs: dict[str, Any] | None = None,
        self_play_kwargs: dict[str, Any] | None = None,
        learner_kwargs: dict[str, Any] | None = None,
        play_kwargs: dict[str, Any] | None = None,
        background_training: bool = False,
        num_actors: int = 0,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
        **unknown: Any,  # refused, naming where a 0.1.0 argument went
    ) -> None:
        legacy.refuse_unknown_arguments(unknown)
        env, env_source = distributed.open_env(env)  # an id or a function, which actors can rebuild
        given = {name: value for name, value in locals().items() if name in settings.SETTINGS}
        for name, value in given.items():
            setattr(self, name, value)  # each checked by __setattr__
        self._loop: SerialLoop | BackgroundLoop | None = None  # while learn() runs
        self._remote_reanalyze = None  # while learn() runs with Reanalyze workers: the windows' source
        super().__init__(
            policy, env, learning_rate, policy_kwargs=policy_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, verbose=verbose, device=device, seed=seed,
            support_multi_env=True, supported_action_spaces=None,  # checked below, naming the fix
        )  # fmt: skip
        distributed.remember(self.env, env_source)
        env_checks.check_env_spaces(self.env, self.policy_class, required=_init_setup_model)
        self.replay_buffer: TrajectoryReplay | None = None
        self.two_player, self._symmetries, self._grad_step_credit = False, None, 0.0
        if _init_setup_model:
            self._save_format = legacy.SAVE_FORMAT  # a loaded model takes its save's (or none)
            self._setup_model()

    def __setattr__(self, name: str, value: Any) -> None:
        """Settings are checked whenever they are set (constructor, later, load); 0.1.0's names point on."""
        if name in settings.SETTINGS:
            value = settings.check_setting(name, value, self.__dict__.get(name))
            if "learner" in self.__dict__:  # built
                settings.check_change_after_build(self._settings(), name, value, self.n_envs)
        legacy.refuse_flat_name(name)
        super().__setattr__(name, value)
        if name == "stats_window_size":
            _resize_episode_statistics(self, value)
        if name in PART_SETTINGS and "learner" in self.__dict__:  # the parts exist: they take it now
            self._build_parts()

    def _settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in settings.SETTINGS if hasattr(self, name)}

    def _setup_model(self) -> None:
        legacy.migrate_flat_settings(self.__dict__)  # a model saved by 0.1.0
        legacy.keep_frame_stem(self.__dict__)  # a conv model saved before 0.3.0
        for name, value in self._settings().items():  # load's overrides bypass __setattr__
            setattr(self, name, value)
        settings.check_cross_settings(self._settings(), self.n_envs)
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self.policy = self._make_policy()
        if self.env is not None:  # a loaded model without env keeps its saved flag and symmetries
            self.two_player = _game_kind(self)
            self._symmetries = self._env_symmetries()
        self.replay_buffer = _replay_to_train_on(self, self.__dict__.get("replay_buffer"))
        self._reward_check = env_checks.RewardScaleCheck(self.policy.support_size)  # warns once per model
        self._build_parts()

    def _build_parts(self) -> None:
        """The parts over the settings of now: the planner anew, the actor and learner once (they
        keep their state) and then given the settings they read."""
        self.planner = Planner(self.search, self.search_kwargs, self.discount, self.two_player)
        self._setup_lr_schedule()
        if "learner" not in self.__dict__:
            self.actor = SelfPlayActor(self.planner, self.num_simulations, self._rng)
            self.learner = Learner(self.policy, self._make_policy, self.unroll_steps, self._symmetries)
            if self.play_kwargs["ema_decay"] is not None:
                self.learner.average()  # starts at the initial weights
            for group in settings.BUILD_ONLY:  # the replay, optimizer and network use them now
                getattr(self, group).built = True
        self.actor.planner, self.actor.num_simulations = self.planner, self.num_simulations
        self.learner.configure(self.value_loss_coef, self.max_grad_norm, self.learner_kwargs)

    def _make_policy(self) -> MuZeroPolicy:
        env_checks.check_image_layout(self.env, self.policy_kwargs)
        policy_kwargs = policy_arguments(self.policy_class, self.policy_kwargs, self.learner_kwargs)
        spaces = (self.observation_space, self.action_space)
        policy = self.policy_class(*spaces, self.lr_schedule, **policy_kwargs)
        if getattr(policy, "channels_last", None) is not None:  # saved, so a load reads the same layout
            self.policy_kwargs["channels_last"] = policy.channels_last
        return policy.to(self.device)

    def _replay_layout(self) -> dict[str, Any]:
        """What a replay must match to train this model (its data's shapes and window)."""
        space, n_actions = self.observation_space, int(self.action_space.n)
        shapes = dict(observation_shape=space.shape, observation_dtype=space.dtype, action_dim=n_actions)
        return dict(n_envs=self.n_envs, unroll_steps=self.unroll_steps, td_steps=self.td_steps, **shapes)

    def _make_replay_buffer(self) -> TrajectoryReplay:
        seed = None if self.seed is None else self.seed + 1  # a stream apart from the search's
        frame_stack = env_frame_stack(self.env, self.policy)  # frames stored once
        kwargs = {**self._replay_layout(), **self.replay_buffer_kwargs, "frame_stack": frame_stack}
        return TrajectoryReplay(capacity=self.buffer_size, seed=seed, **kwargs)

    def _env_symmetries(self):
        augment = self.learner_kwargs["augment_symmetries"]
        return env_symmetries(self.env, self.observation_space, self.action_space, augment)

    def set_random_seed(self, seed: int | None = None) -> None:
        """SB3's seeding, and a built model's ``seed`` and search and replay streams as at construction."""
        super().set_random_seed(seed if seed is None else settings.check_setting("seed", seed))
        if seed is not None and "_rng" in self.__dict__:
            self.seed, self._rng = seed, np.random.default_rng(seed)
            self.actor.rng, self.replay_buffer.rng = self._rng, np.random.default_rng(seed + 1)

    _wrap_env = staticmethod(env_checks.wrap_env)  # SB3's, refusing Dict observations with MuZero's fix

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's set_env; a new replay where the old one does not fit (an untrained model takes the env's kind)."""
        super().set_env(env, force_reset)
        two_player = _game_kind(self)
        if self.two_player != two_player or not _replay_fits_env(self):
            self.two_player = two_player
            self.replay_buffer = self._make_replay_buffer()
        self._symmetries = self.learner.symmetries = self._env_symmetries()
        self.planner.two_player = two_player

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Plan with the learned model for each observation: ``deterministic`` plays the most visited
        root action, else one sampled from the search's policy (Gumbel: the survivor of sequential
        halving, without or with root noise); ``action_masks`` restrict the root; ``play_kwargs``
        sets the simulations and weights."""
        space, n_actions = self.observation_space, int(self.action_space.n)
        batch, masks, vectorized = env_checks.predict_inputs(observation, space, action_masks, n_actions)
        play = self.play_kwargs
        average = play["ema_decay"] is not None
        search = dict(num_simulations=play["num_simulations"] or self.num_simulations, explore=False)
        with self._paused() if average else contextlib.nullcontext():  # the trainer moves the average
            network = self.learner.average() if average else self._acting_policy
            result = self.planner.plan(
                network, batch, masks, temperature=0.0 if deterministic else 1.0, rng=self._rng, **search
            )
        return (result.action if vectorized else result.action.squeeze(axis=0)), state

    def _paused(self) -> contextlib.AbstractContextManager:
        """Holds a background trainer between two gradient steps (nothing to hold otherwise)."""
        return contextlib.nullcontext() if self._loop is None else self._loop.paused()

    @property
    def _acting_policy(self) -> MuZeroPolicy:
        """The network self-play plays with: an acting copy while background training runs."""
        return self.policy if self._loop is None else self._loop.acting_policy

    def learn(
        self: SelfMuZero,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MuZero",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMuZero:
        """Self-play, store, train (SB3's contract): ``callback.on_step()`` runs once per vectorized
        env step (False stops); ``log_interval`` counts finished episodes between logger dumps."""
        loops.refuse_if_running(self._loop)
        settings.check_learn_arguments(total_timesteps, callback, log_interval)
        _check_env_to_learn_on(self)
        self._stop_loop()
        remote = distributed.prepare(self)  # None unless num_actors or Reanalyze workers ask for Ray
        envs_will_reset = reset_num_timesteps or self._last_obs is None
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        env_checks.check_observations(self._last_obs, self.observation_space, where="the env's reset()")
        normalization.check_wrapping(self.env, self._vec_normalize_env)
        if self.actor.start(self.n_envs, self.self_play_kwargs, envs_will_reset):
            self.replay_buffer.truncate_running_episodes()  # stored episodes cannot go on
        callback.on_training_start(locals(), globals())
        rng = self._rng.spawn(1)[0] if self.background_training else self._rng  # the trainer's own stream
        step = functools.partial(self._gradient_step, rng=rng)
        self._loop = loops.make_loop(self.background_training, step, self.policy, self.learner.acting_copy)
        try:
            if remote is None:
                self._run(total_timesteps, callback, log_interval)
            else:
                remote.run(total_timesteps, callback, log_interval)
        except BaseException as error:  # (KeyboardInterrupt too) the loop ends; this exception goes on
            self._stop_loop(in_flight=error)
            raise
        self._stop_loop()
        callback.on_training_end()
        return self

    def _run(self, total_timesteps: int, callback: BaseCallback, log_interval: int) -> None:
        episodes_at_last_dump = self._episode_num
        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()
            if not self._collect_step(callback):
                break  # as SB3: a stopped rollout does not end
            callback.on_rollout_end()
            self._train_due()
            if log_interval and self._episode_num - episodes_at_last_dump >= log_interval:
                episodes_at_last_dump = self._episode_num
                self.dump_logs()

    def _stop_loop(self, in_flight: BaseException | None = None) -> None:
        """End the loop; one that did not stop in time is kept (``save`` still pauses it)."""
        if (loop := self._loop) is not None:
            try:
                loop.stop(in_flight)
            finally:  # a loop whose thread ended (even by failing) is done with
                self._record_training(loop.drain_statistics(), loop.steps_owed)
                self._loop = loop if loop.running else None

    def _collect_step(self, callback: BaseCallback) -> bool:
        """Search in every env, step them once, store the transitions; False if a callback stops."""
        self._loop.before_env_step()
        legal_mask = env_action_masks(self.env, int(self.action_space.n))
        temperature = self.actor.temperature(self._current_progress_remaining)
        started, obs = time.perf_counter(), self._last_obs
        self._last_obs = None  # until the envs have stepped: after a failure, the next learn() resets them
        record, new_obs, infos = self.actor.step(self.env, self._acting_policy, obs, legal_mask, temperature)
        self.logger.record_mean("search/ms_per_step", 1000.0 * (time.perf_counter() - started))
        actions, rewards, dones = record.actions, record.rewards, record.dones  # callbacks' locals
        checks = (self.observation_space, self.policy.support_size, self.num_timesteps, self._reward_check)
        env_checks.check_step(new_obs, rewards, *checks)
        self.num_timesteps += self.env.num_envs
        self._update_info_buffer(infos, dones)
        stored, self._last_original_obs = normalization.as_stored(  # VecNormalize: the env's own data
            record, self._vec_normalize_env, self._last_original_obs
        )
        with self._loop.replay_lock:
            self.replay_buffer.add(**stored._asdict())
        self._last_obs, self._last_episode_starts = new_obs, dones
        self._episode_num += int(np.sum(dones))
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        for name, value in self.actor.statistics(record, self.actor.last_prior_logits).items():
            self.logger.record_mean(f"search/{name}", value)
        callback.update_locals(locals())
        return callback.on_step()  # after storing, so a stop loses nothing and resumes cleanly

    def _train_due(self) -> None:
        """Owe the loop the replay ratio's gradient steps once ``learning_starts`` transitions were stored."""
        if len(self.replay_buffer) and self.replay_buffer.transitions_added >= self.learning_starts:
            self._grad_step_credit += self.replay_ratio * self.env.num_envs
            steps = int(self._grad_step_credit)
            self._grad_step_credit -= steps
            self._loop.owe(steps)
        self._record_training(self._loop.drain_statistics(), self._loop.steps_owed)

    def train(self, gradient_steps: int, batch_size: int | None = None) -> None:
        """Take ``gradient_steps`` gradient steps now, on batches of ``batch_size`` (None: the model's)."""
        gradient_steps, batch_size = settings.check_train_arguments(
            gradient_steps, batch_size, self._settings()
        )
        lock, rng = loops.ReplayGuard(), self._rng
        self._record_training([self._gradient_step(lock, rng, batch_size) for _ in range(gradient_steps)])

    def _gradient_step(self, replay_lock, rng: np.random.Generator, batch_size: int | None = None) -> dict:
        """One gradient step on a window of the replay (``replay_lock`` held around the replay)."""
        progress, beta = self._current_progress_remaining, self.replay_buffer_kwargs["priority_beta"]
        fraction, search = self.reanalyze_kwargs["fraction"], self.reanalyze_kwargs["search"]
        evaluate = network_evaluate(self.policy, self.planner, self.num_simulations, search, rng)
        targets = dict(discount=self.discount, td_lambda=self.td_lambda, two_player=self.two_player)
        reanalyzer = Reanalyzer(fraction, search, self.td_lambda)
        evaluate, normalize = normalization.replay_reads(evaluate, self._vec_normalize_env)
        source = ReplayStep(
            self.replay_buffer, reanalyzer, evaluate, targets, self._remote_reanalyze, normalize
        )
        learning_rate = settings.scheduled_value("learning_rate", self.lr_schedule, progress)  # SB3's
        step_args = (learning_rate, self.play_kwargs["ema_decay"], rng)
        beta += (1.0 - beta) * (1.0 - progress)  # annealed to 1 over training
        scalars = gradient_step_on_replay(
            self.learner, source, batch_size or self.batch_size, beta, step_args, replay_lock
        )
        self._n_updates += 1
        return scalars

    def _record_training(self, statistics: list[dict[str, float]], steps_owed: int | None = None) -> None:
        logs.record_training(self, statistics, steps_owed)

    def dump_logs(self) -> None:
        """Write SB3's standard time/rollout keys plus MuZero's search and train statistics."""
        logs.dump(self)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *REBUILT_AT_LOAD, "_remote_reanalyze"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        keeps_average = self.play_kwargs["ema_decay"] is not None and self.learner.weight_average is not None
        return ["policy", "policy.optimizer", *(["learner.weight_average"] if keeps_average else [])], []

    def set_parameters(
        self, load_path_or_dict, exact_match: bool = True, device: torch.device | str = "auto"
    ) -> None:
        """SB3's, reconciling the weight average with ``play_kwargs["ema_decay"]``: a save without
        one starts it at the loaded weights; one that has it while ``ema_decay`` is None drops it."""
        params = _parameters_to_set(self, load_path_or_dict, device)
        with self._paused():
            super().set_parameters(params, exact_match=exact_match, device=device)

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude=None, include=None) -> None:
        """SB3's zip, written atomically (a crash never tears it), between two gradient steps."""
        with self._paused():
            files.save_atomically(path, lambda target: super(MuZero, self).save(target, exclude, include))

    @classmethod
    def load(cls, path, env: GymEnv | None = None, device: torch.device | str = "auto", **kwargs) -> MuZero:
        """SB3's load (``env`` also an id or a function, as for the constructor), refusing non-MuZero saves."""
        path = _checked_save_to_load(path, device, kwargs)
        env, env_source = _open_env_to_load_with(env)
        with _clear_weights_errors(path):
            model = super().load(path, env=env, device=device, **kwargs)
        distributed.remember(model.env, env_source)  # actors can rebuild it
        return model

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Pickle the replay atomically (adds .pkl when no suffix is given); a crash never tears it."""
        lock = contextlib.nullcontext() if self._loop is None else self._loop.replay_lock.threads_lock
        with lock:  # a background trainer's sample cannot tear the snapshot
            files.save_pickle_atomically(path, self.replay_buffer)

    def load_replay_buffer(self, path, truncate_last_traj: bool = True) -> None:
        """Load a replay saved by ``save_replay_buffer``, refusing one recorded with other settings
        (a distributed run's, one shard per actor, needs as many ``num_actors``). Its running
        episodes end (``truncate_last_traj``, SB3's argument: False is refused)."""
        if self._loop is not None:
            raise RuntimeError("load_replay_buffer cannot run during learn(): load it before or after.")
        buffer = files.load_pickle_checked(path, (TrajectoryReplay, ShardedReplay), "a MuZero replay buffer")
        self.replay_buffer = _adopt_replay(self, buffer, path, truncate_last_traj)


def _replay_to_train_on(model: MuZero, saved) -> TrajectoryReplay:
    """A new replay, or the one a save holds (``save(include=["replay_buffer"])``, as SB3) where
    it fits the loaded model's settings and env; a misfit is dropped with a warning."""
    if saved is not None:
        try:
            return _adopt_replay(model, saved, "the saved model")
        except ValueError as misfit:
            warnings.warn(f"{misfit} The model starts a new replay instead.", stacklevel=5)
    return model._make_replay_buffer()


def _adopt_replay(model: MuZero, buffer, path, truncate_last_traj: bool = True) -> TrajectoryReplay:
    """A loaded replay ``model`` trains on from now: checked against its settings, with its
    running episodes ended (their envs are gone; their steps are kept)."""
    if truncate_last_traj is not True:
        raise ValueError(
            "load_replay_buffer(truncate_last_traj=False) would continue the saved episodes, but "
            "MuZero always ends them (their envs are gone): leave truncate_last_traj at True."
        )
    _check_loaded_replay(model, buffer, path)
    buffer.truncate_running_episodes()
    return buffer


def _check_loaded_replay(model: MuZero, buffer: TrajectoryReplay | ShardedReplay, path) -> None:
    """Refuse a loaded replay recorded with other settings than ``model``'s; one it can take
    samples with the model's ``priority_alpha`` from now on."""
    # a distributed run's replay (one shard per actor) fits a model with as many actors
    for replay in distributed.check_loadable_replay(buffer, model.num_actors, path):
        # how it stores frames is its own business: it checks every step it stores either way
        replay.check_compatible(**model._replay_layout(), frame_stack=replay.frame_stack, path=path)
        normalization.check_loaded_replay(replay, model._vec_normalize_env, path)
        replay.use_alpha(model.replay_buffer_kwargs["priority_alpha"])  # the model's, not the save's
    if model.env is not None and _masks_differ(buffer, model.env):
        recorded, gives = ("with", "gives none") if buffer.has_legal_masks else ("without", "gives them")
        raise ValueError(
            f"the replay buffer in {path} was recorded {recorded} legal-action masks, but the model's "
            f"env {gives} (action_masks()): load it into a model of the env it was recorded in, or "
            "collect new data."
        )


def _parameters_to_set(model: MuZero, load_path_or_dict, device) -> dict[str, Any]:
    """The parameters ``set_parameters`` sets: a save's read as SB3 would, 0.1.0's names renamed,
    the weight average matched to ``play_kwargs["ema_decay"]``."""
    params = load_path_or_dict
    if not isinstance(params, dict):
        params = load_from_zip_file(load_path_or_dict, load_data=False, device=device)[1]
    params = legacy.rename_saved_parameters(params)
    return match_saved_average(model.learner, params, model.play_kwargs["ema_decay"])


def _replay_fits_env(model: MuZero) -> bool:
    """Whether ``model``'s replay goes on with its env: as many envs (per shard after Ray), and
    while it is empty, the env's frame stacking."""
    replay = model.replay_buffer
    if getattr(replay, "shards", [replay])[0].n_envs != model.n_envs or _masks_differ(replay, model.env):
        return False
    stacking = env_frame_stack(model.env, model.policy)
    return len(replay) > 0 or getattr(replay, "frame_stack", None) == stacking


def _game_kind(model: MuZero) -> bool:
    """Whether ``model`` searches an alternating two-player zero-sum game (values negated at each
    ply): its env's kind until it has learned, then the kind its network learned on any env (a
    self-play model searches one ply per step, also against an opponent inside the env)."""
    learned = model.num_timesteps > 0 or model._n_updates > 0
    return model.two_player if learned else env_flag(model.env, "is_two_player_zero_sum")


def _check_env_to_learn_on(model: MuZero) -> None:
    """Refuse an env ``learn()`` cannot use: one missing or of the wrong spaces, or of another
    kind of game than the one ``model`` learned (it can still play on it)."""
    env_checks.check_env_spaces(model.env, model.policy_class, required=True, where="learn()")
    if env_flag(model.env, "is_two_player_zero_sum") != model.two_player:
        kinds = (
            "self-play of an alternating two-player game (one ply per step)",
            "a single-agent env (an opponent, if any, moving inside it)",
        )
        learned, given = (kinds[0], kinds[1]) if model.two_player else (kinds[1], kinds[0])
        example = "make_board_game(game)" if model.two_player else "make_board_game(game, opponent=...)"
        raise ValueError(
            f"this model learned {learned}, but its env is {given}: it can play there (predict, "
            f"evaluate_policy) but not learn from it. Learn on an env of its kind (for a board game: "
            f"{example}), or make a new model for this env."
        )


def _masks_differ(replay, env) -> bool:
    """Whether ``replay`` holds steps stored with legal-action masks while ``env`` gives none
    (``action_masks()``), or the other way round: it takes steps one way only."""
    return len(replay) > 0 and replay.has_legal_masks != env.has_attr("action_masks")


def _resize_episode_statistics(model: MuZero, window: int) -> None:
    """SB3's logged episode statistics averaged over the last ``window`` episodes from now on."""
    model.__dict__["_stats_window_size"] = window  # what SB3's learn() sizes its buffers with
    for name in ("ep_info_buffer", "ep_success_buffer"):
        if model.__dict__.get(name) is not None:  # the newest episodes are kept
            model.__dict__[name] = collections.deque(model.__dict__[name], maxlen=window)


def _checked_save_to_load(path, device, kwargs: dict[str, Any]):
    """``path`` checked as a MuZero zip with a MuZero policy, and ``load``'s arguments checked
    and merged with the save's settings (``kwargs`` is updated)."""
    _check_load_arguments(kwargs, device)
    path = files.check_model_zip(path)
    _check_policy_class(path, kwargs.get("custom_objects"))
    _merge_saved_settings(path, kwargs)
    return path


def _open_env_to_load_with(env):
    """``env`` as SB3's load takes it (an id made into an env, a function called once), and how
    actors can rebuild it (None for a live env)."""
    env, source = distributed.open_env(env)
    return (maybe_make_env(env, verbose=0) if isinstance(env, str) else env), source


def _check_load_arguments(kwargs: dict[str, Any], device) -> None:
    """Refuse a bad ``device`` and the arguments given to ``load`` that are neither settings,
    0.1.0's names (moved into their groups at load) nor SB3's own: SB3 would set them silently."""
    settings.check_setting("device", device)
    known = {*settings.SETTINGS, *legacy.LOADABLE_NAMES, "custom_objects", "print_system_info", "force_reset"}
    unknown = {name: value for name, value in kwargs.items() if name not in known}
    legacy.refuse_unknown_arguments(unknown, where="MuZero.load()")


def _merge_saved_settings(path, kwargs: dict[str, Any]) -> None:
    """Groups given to ``load`` change the keys they name; the save's other keys stay. Given
    ``policy_kwargs`` take the image layout the saved policy read where they do not say it."""
    given = {name: dict(kwargs[name]) for name in settings.GROUP_NAMES if kwargs.get(name) is not None}
    if not given and kwargs.get("policy_kwargs") is None:
        return
    saved = _read_saved_data(path, kwargs.get("custom_objects"))
    kwargs.update({name: {**(saved.get(name) or {}), **keys} for name, keys in given.items()})
    kwargs["_load_overrides"] = {name: set(keys) for name, keys in given.items()}  # over 0.1.0's names
    layout = (saved.get("policy_kwargs") or {}).get("channels_last")
    if kwargs.get("policy_kwargs") is not None and layout is not None:
        kwargs["policy_kwargs"] = {"channels_last": layout, **kwargs["policy_kwargs"]}


def _read_saved_data(path, custom_objects: dict[str, Any] | None) -> dict[str, Any]:
    """The saved model's attributes, unpickled as SB3's load does (``custom_objects`` replace theirs)."""
    return load_from_zip_file(path, load_data=True, custom_objects=custom_objects, device="cpu")[0] or {}


@contextlib.contextmanager
def _clear_weights_errors(path) -> Iterator[None]:
    """PyTorch's errors for saved weights that do not fit the network, made clear."""
    try:
        yield
    except RuntimeError as error:
        clear = _weights_error(path, error)
        if clear is None:
            raise
        raise clear from error


def _weights_error(path, error: RuntimeError) -> ValueError | None:
    """A clear error for saved weights that do not fit the network the settings build."""
    message = str(error)
    if "consistency_head" in message:
        return ValueError(
            f"{path} was saved {'without' if 'Missing' in message else 'with'} the consistency head, "
            "and learner_kwargs consistency_loss_coef now asks for the opposite: load it with the "
            "coefficient it was saved with (leave consistency_loss_coef out of load's arguments)."
        )
    if "size mismatch" not in message:
        return None
    return ValueError(
        f"{path}'s network weights do not fit the network these settings build: load it with the "
        f"settings and muzero-agents version it was saved with. PyTorch said: {message.splitlines()[0]}"
    )


def _check_policy_class(path, custom_objects: dict[str, Any] | None = None) -> None:
    """Refuse a readable SB3 zip whose policy is not a MuZero policy, naming what it holds (read
    by name without unpickling anything, unless its module must be imported to know)."""
    policy_class = (custom_objects or {}).get("policy_class") or files.saved_policy_class(path)
    if isinstance(policy_class, str):  # a class from a module not imported yet: SB3 must import it
        policy_class = _read_saved_data(path, custom_objects).get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, MuZeroPolicy)):
        name = getattr(policy_class, "__qualname__", policy_class)
        raise ValueError(f"{path} is not a MuZero save: its policy is {name} (load it with that algorithm).")

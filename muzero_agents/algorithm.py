"""``MuZero``: Stable-Baselines3's face over the parts of the algorithm.

Per vectorized env step, the actor searches every env's observation at once and steps the envs;
its record goes to the replay; the loop takes the gradient steps the replay ratio owes, each
one a window sampled from the replay, refreshed by Reanalyze, turned into targets and handed to
the learner. The parts live in their own modules (docs/design.md); this class builds them and
keeps SB3's contract: constructor, ``learn``, ``train``, ``predict``, the logger, save and load.
"""

from __future__ import annotations

import contextlib
import functools
import io
import pathlib
import sys
import time
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import maybe_transpose
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import FloatSchedule, is_vectorized_observation, safe_mean

from muzero_agents import env_checks, files, legacy, settings
from muzero_agents.actor import SelfPlayActor, env_action_masks, env_flag, env_symmetries
from muzero_agents.learner import Learner
from muzero_agents.loops import BackgroundLoop, SerialLoop
from muzero_agents.planning import Planner
from muzero_agents.policies import CnnPolicy, MlpPolicy, MuZeroPolicy
from muzero_agents.reanalyze import Reanalyzer
from muzero_agents.replay import TrajectoryReplay
from muzero_agents.settings import default_temperature
from muzero_agents.targets import make_batch

__all__ = ["MuZero", "default_temperature"]

SelfMuZero = TypeVar("SelfMuZero", bound="MuZero")


class MuZero(BaseAlgorithm):
    """MuZero (Schrittwieser et al., 2020): planning with a learned latent model.

    :param policy: ``"MlpPolicy"`` (vector observations), ``"CnnPolicy"`` (images, boards) or a class
    :param env: environment, env id or VecEnv with a Discrete action space. Envs exposing
        ``action_masks()`` (sb3-contrib's convention) get legal-action masks at the search root;
        envs with ``is_two_player_zero_sum = True`` (``wrappers.SelfPlayEnv``) are searched and
        trained as alternating zero-sum games.
    :param learning_rate: learning rate, constant or a schedule of the remaining progress (1 -> 0)
    :param buffer_size: replay capacity in transitions
    :param learning_starts: transitions collected before the first gradient step
    :param batch_size: positions per gradient step
    :param unroll_steps: K, steps the dynamics function is unrolled in training
    :param td_steps: n, bootstrapping horizon of the value targets
    :param td_lambda: lambda of the TD(lambda) value target (1.0: plain n-step returns)
    :param discount: per-step discount gamma (board games: 1.0)
    :param num_simulations: search simulations per decision in self-play and Reanalyze (and in
        ``predict`` unless ``play_kwargs`` sets its own)
    :param search: ``"muzero"`` (pUCT with Dirichlet root noise and visit-count policy targets) or
        ``"gumbel"`` (Gumbel MuZero: sequential halving at the root, completed-Q policy targets;
        strong with few simulations)
    :param replay_ratio: gradient steps per collected transition
    :param value_loss_coef: weight of the value loss
    :param max_grad_norm: gradient clipping norm
    :param search_kwargs: the search's constants: ``pb_c_init`` (pUCT c1), ``pb_c_base`` (c2),
        ``dirichlet_alpha`` and ``dirichlet_fraction`` (root noise; fraction 0 turns it off),
        ``max_considered_actions`` (Gumbel MuZero's m)
    :param replay_buffer_kwargs: ``priority_alpha`` (prioritization exponent, 0: uniform) and
        ``priority_beta`` (initial importance-sampling exponent, annealed to 1)
    :param reanalyze_kwargs: ``fraction`` of each batch whose targets are recomputed with the
        newest network, and ``search``: True re-runs the search there (fresh policy and value
        targets), False refreshes only the bootstrap values with one network call
    :param self_play_kwargs: ``temperature`` (visit-count temperature, a float or a schedule of
        the remaining progress), ``sampling_moves`` (moves per episode sampled at the
        temperature; later ones play the most visited action; None: all), ``random_opening_moves``
        (each episode opens with 0..k uniformly random legal moves; value returns stop at
        random moves the search would not have played)
    :param learner_kwargs: ``reward_loss_coef``, ``consistency_loss_coef`` (EfficientZero's
        temporal consistency loss; 0 turns it off), ``weight_decay`` (AdamW), ``mixed_precision``
        (bfloat16 autocast in training), ``augment_symmetries`` (train on random images under
        the env's ``board_symmetries``)
    :param play_kwargs: how ``predict`` plays: ``num_simulations`` (None: self-play's) and
        ``ema_decay`` (play with an exponential moving average of the weights, updated after
        each gradient step: ``avg += (1 - ema_decay) * (new - avg)``; None: the newest weights).
        Settable after training: ``model.play_kwargs["num_simulations"] = 100``
    :param background_training: take the gradient steps on a thread of their own while self-play
        goes on with a copy of the network (``muzero_agents.loops``); ``replay_ratio`` becomes a
        ceiling and seeded runs are not reproducible step for step
    :param policy_kwargs: forwarded to the policy, e.g. ``support_size`` (the value and reward
        support {-S..S}) or ``network_kwargs=dict(hidden_dim=64)``
    """

    policy_aliases: ClassVar[dict[str, type[MuZeroPolicy]]] = {"MlpPolicy": MlpPolicy, "CnnPolicy": CnnPolicy}
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
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        given = {name: value for name, value in locals().items() if name in settings.SETTINGS}
        for name, value in given.items():
            setattr(self, name, value)  # each checked by __setattr__
        settings.check_cross_settings(self._settings())
        if env is not None:
            env_checks.check_policy_kwargs(policy_kwargs)
        self._loop: SerialLoop | BackgroundLoop | None = None  # while learn() runs
        super().__init__(
            policy,
            env,
            learning_rate,
            policy_kwargs=policy_kwargs,
            stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log,
            verbose=verbose,
            device=device,
            support_multi_env=True,
            seed=seed,
            supported_action_spaces=None,  # checked below with an error that names the fix
        )
        if self.env is not None:
            env_checks.check_action_space(self.action_space)
            env_checks.check_observation_space(self.observation_space, self.policy_class)
        self.replay_buffer: TrajectoryReplay | None = None
        self.two_player = False
        self._symmetries = None
        self._grad_step_credit = 0.0
        if _init_setup_model:
            self._setup_model()

    def __setattr__(self, name: str, value: Any) -> None:
        """Documented settings are checked whenever they are set (constructor, later, load)."""
        if name in settings.SETTINGS:
            value = settings.check_setting(name, value)
        super().__setattr__(name, value)

    def _settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in settings.SETTINGS if hasattr(self, name)}

    # ------------------------------------------------------------------ setup

    def _setup_model(self) -> None:
        legacy.migrate_flat_settings(self.__dict__)  # a model saved by 0.1.0
        for name, value in self._settings().items():  # load's overrides bypass __setattr__
            setattr(self, name, value)
        settings.check_cross_settings(self._settings())
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self.policy = self._make_policy()
        if self.learner_kwargs["mixed_precision"] and self.device.type == "cuda":
            if not torch.cuda.is_bf16_supported():
                raise ValueError(
                    f"learner_kwargs mixed_precision=True needs bfloat16, which "
                    f"{torch.cuda.get_device_name(self.device)} lacks: pass mixed_precision=False"
                )
        self.temperature_schedule = FloatSchedule(self.self_play_kwargs["temperature"])
        if self.env is not None:  # a loaded model without env keeps its saved flag and symmetries
            self.two_player = env_flag(self.env, "is_two_player_zero_sum")
            self._symmetries = self._read_symmetries()
        self.replay_buffer = self._make_replay_buffer()
        self._reward_check = env_checks.RewardScaleCheck(self.policy.support_size)  # warns once per model
        self._build_parts()

    def _build_parts(self) -> None:
        """The planner, actor, learner and Reanalyze worker over the policy and settings of now."""
        self.planner = Planner(self.search, self.search_kwargs, self.discount, self.two_player)
        self.actor = SelfPlayActor(
            self.planner,
            self.num_simulations,
            self.self_play_kwargs["sampling_moves"],
            self.self_play_kwargs["random_opening_moves"],
            self._rng,
        )
        self.learner = Learner(
            self.policy,
            self._make_policy,
            self.unroll_steps,
            self.value_loss_coef,
            self.max_grad_norm,
            self.learner_kwargs,
            self._symmetries,
        )
        if self.play_kwargs["ema_decay"] is not None:
            self.learner.average()  # starts at the initial weights
        self.reanalyzer = Reanalyzer(self.reanalyze_kwargs["fraction"], self.reanalyze_kwargs["search"], self.td_lambda)

    def _make_policy(self) -> MuZeroPolicy:
        policy_kwargs = dict(self.policy_kwargs)
        policy_kwargs["optimizer_kwargs"] = {
            "weight_decay": self.learner_kwargs["weight_decay"],
            **policy_kwargs.get("optimizer_kwargs", {}),
        }
        if self.learner_kwargs["consistency_loss_coef"] > 0:
            policy_kwargs.setdefault("consistency_kwargs", {})
        policy = self.policy_class(self.observation_space, self.action_space, self.lr_schedule, **policy_kwargs)
        if getattr(policy, "channels_last", None) is not None:  # saved, so a load reads the same layout
            self.policy_kwargs["channels_last"] = policy.channels_last
        return policy.to(self.device)

    def _make_replay_buffer(self) -> TrajectoryReplay:
        return TrajectoryReplay(
            capacity=self.buffer_size,
            n_envs=self.n_envs,
            observation_shape=self.observation_space.shape,
            observation_dtype=self.observation_space.dtype,
            action_dim=int(self.action_space.n),
            unroll_steps=self.unroll_steps,
            td_steps=self.td_steps,
            seed=None if self.seed is None else self.seed + 1,  # a stream apart from the search's
            **self.replay_buffer_kwargs,
        )

    def _read_symmetries(self):
        needed = self.learner_kwargs["augment_symmetries"]
        return env_symmetries(self.env, self.observation_space, self.action_space, needed)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's set_env; a different number of envs or kind of game gets a fresh replay buffer."""
        super().set_env(env, force_reset)
        two_player = env_flag(self.env, "is_two_player_zero_sum")
        buffer = self.replay_buffer
        if buffer is not None and (buffer.n_envs != self.n_envs or self.two_player != two_player):
            if self.verbose:
                print("set_env: the new env differs in n_envs or players; starting an empty replay buffer")
            self.replay_buffer = None
        self.two_player = two_player
        self._symmetries = self._read_symmetries()
        self.replay_buffer = self.replay_buffer or self._make_replay_buffer()
        self.planner.two_player = two_player
        self.learner.symmetries = self._symmetries

    # ------------------------------------------------------------------ play

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Plan with the learned model for each observation of the batch.

        ``deterministic=True`` plays the most visited root action; otherwise an action is sampled
        from the search's policy. ``action_masks`` (sb3-contrib's convention) restricts the root.
        ``play_kwargs`` sets the simulations and whether the weight average plays.
        """
        env_checks.check_not_dict(observation)
        observation = maybe_transpose(np.asarray(observation), self.observation_space)
        vectorized = is_vectorized_observation(observation, self.observation_space)
        batch = observation if vectorized else observation[None]
        env_checks.check_observations(batch, self.observation_space, where="predict()")
        masks = None
        if action_masks is not None:
            masks = env_checks.check_action_masks(action_masks, batch.shape[0], int(self.action_space.n))
        self.play_kwargs = self.play_kwargs  # checks what was changed in place
        play = self.play_kwargs
        average = play["ema_decay"] is not None
        pause = self._loop.paused() if average and self._loop is not None else contextlib.nullcontext()
        with pause:
            result = self.planner.plan(
                self.learner.average() if average else self._acting_policy,
                batch,
                masks,
                num_simulations=play["num_simulations"] or self.num_simulations,
                explore=False,
                temperature=0.0 if deterministic else 1.0,
                rng=self._rng,
            )
        return (result.action if vectorized else result.action[0]), state

    @property
    def _acting_policy(self) -> MuZeroPolicy:
        """The network self-play plays with: an acting copy while background training runs."""
        return self.policy if self._loop is None else self._loop.acting_policy

    # ------------------------------------------------------------------ learning

    def learn(
        self: SelfMuZero,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 4,
        tb_log_name: str = "MuZero",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> SelfMuZero:
        """Self-play with search, store trajectories, train on K-step unrolls (SB3's learn contract).

        ``callback.on_step()`` runs once per vectorized env step; returning False stops training.
        ``log_interval`` counts finished episodes between logger dumps.
        """
        self.self_play_kwargs = self.self_play_kwargs  # checks what was changed in place
        self.play_kwargs = self.play_kwargs
        self._drop_stopped_loop()
        envs_will_reset = reset_num_timesteps or self._last_obs is None
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        opening_moves = self.self_play_kwargs["random_opening_moves"]
        if envs_will_reset or self.actor.episode_moves.shape != (self.n_envs,):
            self.actor.start(self.n_envs, opening_moves)
            self.replay_buffer.truncate_running_episodes()  # stored episodes cannot go on
        self.actor.openings.limit(opening_moves)  # a value set between learns applies now
        self.actor.sampling_moves = self.self_play_kwargs["sampling_moves"]
        self.temperature_schedule = FloatSchedule(self.self_play_kwargs["temperature"])
        callback.on_training_start(locals(), globals())
        self._loop = self._make_loop().start()
        try:
            self._run(total_timesteps, callback, log_interval)
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
            keep_going = self._collect_step(callback)
            callback.on_rollout_end()
            if not keep_going:
                break
            self._train_due()
            if log_interval and self._episode_num - episodes_at_last_dump >= log_interval:
                episodes_at_last_dump = self._episode_num
                self.dump_logs()

    def _make_loop(self) -> SerialLoop | BackgroundLoop:
        if not self.background_training:
            return SerialLoop(functools.partial(self._gradient_step, rng=self._rng), self.policy)
        step = functools.partial(self._gradient_step, rng=self._rng.spawn(1)[0])
        return BackgroundLoop(step, self.policy, self.learner.copy_weights())

    def _stop_loop(self, in_flight: BaseException | None = None) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            stopped = loop.stop(in_flight)
        finally:
            self._record_training(loop)
        if stopped:
            self._loop = None

    def _drop_stopped_loop(self) -> None:
        """Clear a loop an earlier learn() could not stop in time, once it has ended."""
        if self._loop is not None and self._loop.running:
            raise RuntimeError(
                "A background trainer from an earlier learn() is still running (it did not stop in "
                "time); wait for it to finish before calling learn() again."
            )
        self._stop_loop()

    def _collect_step(self, callback: BaseCallback) -> bool:
        """Search in every env, step them once, store the transitions; False if a callback stops."""
        self._loop.before_env_step()
        legal_mask = env_action_masks(self.env)
        temperature = float(self.temperature_schedule(self._current_progress_remaining))
        started = time.perf_counter()
        record, new_obs, infos = self.actor.step(self.env, self._acting_policy, self._last_obs, legal_mask, temperature)
        self.logger.record_mean("search/ms_per_step", 1000.0 * (time.perf_counter() - started))
        rewards, dones = record.rewards, record.dones
        env_checks.check_step(
            new_obs, rewards, self.observation_space, self.policy.support_size, self.num_timesteps, self._reward_check
        )
        self.num_timesteps += self.env.num_envs
        self._update_info_buffer(infos, dones)
        with self._loop.replay_lock:
            self.replay_buffer.add(**record._asdict())
        self._last_obs, self._last_episode_starts = new_obs, dones
        self._episode_num += int(np.sum(dones))
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._record_search(record)
        callback.update_locals(locals())
        return callback.on_step()  # after storing, so a stop loses nothing and resumes cleanly

    def _record_search(self, record) -> None:
        policy = np.clip(record.search_policies, 1e-12, 1.0)
        entropy = float(-(record.search_policies * np.log(policy)).sum(axis=1).mean())
        self.logger.record_mean("search/root_value", float(np.mean(record.root_values)))
        self.logger.record_mean("search/visit_entropy", entropy)

    def _train_due(self) -> None:
        """Owe the loop the gradient steps of the replay ratio (fractional credit carries over).

        Nothing is owed until the buffer holds ``learning_starts`` transitions.
        """
        if len(self.replay_buffer) >= max(1, self.learning_starts):
            self._grad_step_credit += self.replay_ratio * self.env.num_envs
            steps = int(self._grad_step_credit)
            self._grad_step_credit -= steps
            self._loop.owe(steps)
        self._record_training(self._loop)

    def train(self, gradient_steps: int, batch_size: int = 128) -> None:
        """Take ``gradient_steps`` gradient steps now, on batches of ``batch_size`` (SB3's train)."""
        for _ in range(gradient_steps):
            for name, value in self._gradient_step(contextlib.nullcontext(), self._rng, batch_size).items():
                self.logger.record_mean(f"train/{name}", value)
        self._record_progress()

    def _gradient_step(
        self, replay_lock: contextlib.AbstractContextManager, rng: np.random.Generator, batch_size: int | None = None
    ) -> dict[str, float]:
        """Sample a window, refresh it with Reanalyze, build its targets, take one optimizer step.

        ``replay_lock`` is held around every read and write of the replay (background training).
        """
        done, beta = 1.0 - self._current_progress_remaining, self.replay_buffer_kwargs["priority_beta"]
        replay, batch_size = self.replay_buffer, batch_size or self.batch_size
        with replay_lock:
            replay.beta = beta + (1.0 - beta) * done  # annealed to 1 over training
            window = replay.sample(batch_size, next_observations=self.learner.wants_next_observations)
        evaluate = functools.partial(self._reanalyze_targets, rng=rng)
        window = self.reanalyzer.refresh(window, replay, evaluate, replay_lock)
        batch = make_batch(window, discount=self.discount, td_lambda=self.td_lambda, two_player=self.two_player)
        learning_rate = self.lr_schedule(self._current_progress_remaining)
        scalars, priorities = self.learner.step(batch, learning_rate, self.play_kwargs["ema_decay"], rng)
        keep = batch.priority_mask  # the newest steps of running episodes keep their priority
        with replay_lock:
            replay.update_priorities(batch.indices[keep], priorities[keep])
        self._n_updates += 1
        return scalars

    def _reanalyze_targets(self, observations, legal_masks, rng: np.random.Generator):
        """Fresh values (and, with ``reanalyze_kwargs["search"]``, policies) from the learner's network."""
        if self.reanalyze_kwargs["search"]:
            result = self.planner.plan(
                self.policy, observations, legal_masks, num_simulations=self.num_simulations,
                explore=False, temperature=0.0, rng=rng,
            )  # fmt: skip
            return result.root_value, result.policy
        self.policy.set_training_mode(False)
        _, values, _ = self.policy.initial_inference_numpy(observations)
        return values, None

    def _record_training(self, loop) -> None:
        for scalars in loop.drain_statistics():
            for name, value in scalars.items():
                self.logger.record_mean(f"train/{name}", value)
        if isinstance(loop, BackgroundLoop):
            self.logger.record("train/steps_owed", loop.steps_owed)
        self._record_progress()

    def _record_progress(self) -> None:
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/learning_rate", self.lr_schedule(self._current_progress_remaining))

    def dump_logs(self) -> None:
        """Write SB3's standard time/rollout keys plus MuZero's search and train statistics."""
        elapsed = max((time.time_ns() - self.start_time) / 1e9, sys.float_info.epsilon)
        fps = int((self.num_timesteps - self._num_timesteps_at_start) / elapsed)
        self.logger.record("time/episodes", self._episode_num, exclude="tensorboard")
        if self.ep_info_buffer:
            self.logger.record("rollout/ep_rew_mean", safe_mean([ep["r"] for ep in self.ep_info_buffer]))
            self.logger.record("rollout/ep_len_mean", safe_mean([ep["l"] for ep in self.ep_info_buffer]))
        self.logger.record("time/fps", fps)
        self.logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(step=self.num_timesteps)

    # ------------------------------------------------------------------ persistence

    def _excluded_save_params(self) -> list[str]:
        parts = ["_rng", "temperature_schedule", "planner", "actor", "learner", "reanalyzer", "_loop", "_reward_check"]
        return [*super()._excluded_save_params(), *parts]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        keeps_average = self.play_kwargs["ema_decay"] is not None and self.learner.weight_average is not None
        return ["policy", "policy.optimizer", *(["learner.weight_average"] if keeps_average else [])], []

    def set_parameters(self, load_path_or_dict, exact_match: bool = True, device: torch.device | str = "auto") -> None:
        """SB3's, reconciling the weight average with ``play_kwargs["ema_decay"]``: a save without
        one starts it at the loaded weights; one that has it while ``ema_decay`` is None drops it."""
        if isinstance(load_path_or_dict, dict):
            params = dict(load_path_or_dict)
        else:  # a save: read its parameters as SB3 would
            _, params, _ = load_from_zip_file(load_path_or_dict, load_data=False, device=device)
        params = legacy.rename_saved_parameters(params)
        if self.play_kwargs["ema_decay"] is None:  # an average kept from before belongs to other weights
            params.pop("learner.weight_average", None)
            self.learner.weight_average = None
        else:
            self.learner.average()  # exists before SB3 loads into it
            if "learner.weight_average" not in params and "policy" in params:
                params["learner.weight_average"] = params["policy"]
        super().set_parameters(params, exact_match=exact_match, device=device)

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude=None, include=None) -> None:
        """SB3's zip format, written to a temporary file then renamed so a crash never leaves a torn file.

        During background training it waits for the gradient step in progress.
        """
        pause = contextlib.nullcontext() if self._loop is None else self._loop.paused()
        with pause:
            if isinstance(path, io.BufferedIOBase):
                super().save(path, exclude, include)
            else:
                files.save_atomically(path, lambda tmp: super(MuZero, self).save(tmp, exclude, include))

    @classmethod
    def load(cls, path, env: GymEnv | None = None, device: torch.device | str = "auto", **kwargs) -> MuZero:
        """SB3's load, refusing with a clear message anything that is not a readable MuZero save."""
        path = files.check_model_zip(path)
        _check_policy_class(path)
        try:
            model = super().load(path, env=env, device=device, **kwargs)
        except RuntimeError as error:
            clear = _weights_error(path, error)
            if clear is None:
                raise
            raise clear from error
        model._rng = np.random.default_rng(model.seed)
        model.actor.rng = model._rng
        return model

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Pickle the replay atomically (adds .pkl when no suffix is given); a crash never tears it."""
        lock = contextlib.nullcontext() if self._loop is None else self._loop.replay_lock
        with lock:  # a background trainer's sample cannot tear the snapshot
            files.save_pickle_atomically(path, self.replay_buffer)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Load a replay saved by ``save_replay_buffer``, refusing one recorded with other settings."""
        if self._loop is not None:
            raise RuntimeError(
                "load_replay_buffer cannot swap the buffer while background training samples from "
                "it; load it before or after learn()."
            )
        buffer = files.load_pickle_checked(path, TrajectoryReplay, "a MuZero replay buffer")
        buffer.check_compatible(
            n_envs=self.n_envs,
            observation_shape=self.observation_space.shape,
            observation_dtype=self.observation_space.dtype,
            action_dim=int(self.action_space.n),
            unroll_steps=self.unroll_steps,
            td_steps=self.td_steps,
            path=path,
        )
        buffer.truncate_running_episodes()  # their envs are gone; keep the steps, end the episodes
        self.replay_buffer = buffer


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


def _check_policy_class(path) -> None:
    """Refuse a readable SB3 zip whose policy is not a MuZero policy, naming what it holds."""
    data, _, _ = load_from_zip_file(path, load_data=True, device="cpu")
    policy_class = (data or {}).get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, MuZeroPolicy)):
        name = getattr(policy_class, "__qualname__", policy_class)
        raise ValueError(f"{path} is not a MuZero save: its policy is {name} (load it with that algorithm).")
    if isinstance(path, io.BufferedIOBase):
        path.seek(0)

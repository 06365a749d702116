"""The ``MuZero`` algorithm: Stable-Baselines3's face over the learned model, search and replay.

Flow per vectorized env step (DESIGN.md, "The data path"): observations -> batched search over
all envs at once -> actions -> env step -> replay -> (replay_ratio) gradient steps on K-step
unrolls. Search and training never call each other; the policy's network is all they share.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import pathlib
import sys
import threading
import time
import warnings
import zipfile
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.preprocessing import maybe_transpose
from stable_baselines3.common.save_util import load_from_pkl, load_from_zip_file, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import (
    FloatSchedule,
    is_vectorized_observation,
    safe_mean,
    update_learning_rate,
)

from muzero_agents.background import BackgroundTrainer
from muzero_agents.files import replace_atomically, temporary_file
from muzero_agents.losses import muzero_loss
from muzero_agents.policies import CnnPolicy, MlpPolicy, MuZeroPolicy
from muzero_agents.replay import TrajectoryReplay
from muzero_agents.search import SearchResult, gumbel_muzero_search, muzero_search
from muzero_agents.augment import Symmetries, augment
from muzero_agents.openings import RandomOpenings, check_opening_moves
from muzero_agents.averaging import check_ema_decay, update_average

SEARCHES = ("muzero", "gumbel")

SelfMuZero = TypeVar("SelfMuZero", bound="MuZero")


def default_temperature(progress_remaining: float) -> float:
    """The paper's visit-count temperature schedule, 1 -> 0.5 -> 0.25, over training progress."""
    if progress_remaining > 0.5:
        return 1.0
    return 0.5 if progress_remaining > 0.25 else 0.25


class MuZero(BaseAlgorithm):
    """MuZero (Schrittwieser et al., 2020): planning with a learned latent model.

    :param policy: ``"MlpPolicy"`` (vector observations), ``"CnnPolicy"`` (images, boards) or a class
    :param env: environment, env id or VecEnv; actions must be Discrete. Envs exposing
        ``action_masks()`` (sb3-contrib's convention) get legal-action masks at the search root;
        envs with ``is_two_player_zero_sum = True`` (``wrappers.SelfPlayEnv``) are searched and
        trained as alternating zero-sum games.
    :param learning_rate: learning rate, constant or a schedule of the remaining progress (1 -> 0)
    :param buffer_size: replay capacity in transitions
    :param learning_starts: transitions collected before the first gradient step
    :param batch_size: positions per gradient step
    :param unroll_steps: K, steps the dynamics function is unrolled in training
    :param td_steps: n, bootstrapping horizon of the value targets (the paper uses 10 on Atari;
        50 measured best on classic control, see benchmarks/cartpole.py)
    :param td_lambda: lambda of the TD(lambda) value target (1.0 = plain n-step)
    :param discount: per-step discount gamma (board games: 1.0)
    :param num_simulations: search simulations per decision in self-play and Reanalyze, and in
        ``predict`` unless ``play_simulations`` is set
    :param play_simulations: search simulations per decision in ``predict`` (evaluation, games
        against opponents, callbacks' evaluations during ``learn``); None plays with
        ``num_simulations``. Self-play stays cheap while play searches deeper. On tic-tac-toe,
        most models trained at 25 simulations that lost to a perfect player at 25 lost none at 100,
        though more search is not monotone: a few lost more at 100 or at 400
        (benchmarks/results/boardgames/tictactoe-play-simulations-2026-12-04.txt). Settable after
        training too (``model.play_simulations = 100``)
    :param ema_decay: if set, ``predict`` plays with an exponential moving average of the weights
        (each gradient step: ``avg += (1 - ema_decay) * (new - avg)``; 0.995 spans roughly the
        last 200 steps) while self-play, Reanalyze and training keep the newest weights: with a
        constant learning rate the newest weights keep swinging between positions they misjudge
        (muzero_agents/averaging.py). Saved with the model; ``model.ema_decay = None`` plays with
        the newest weights again (the average is dropped at the next gradient step or
        ``set_parameters``; set again, it starts from the weights of then). The average starts at
        the initial weights, so it lags most in short runs. None: no average is kept
    :param search: ``"muzero"`` (pUCT with Dirichlet noise and visit-count policy targets, the
        paper's) or ``"gumbel"`` (Gumbel MuZero: Gumbel-top-k with sequential halving at the root
        and completed-Q policy targets; strong with very few simulations)
    :param max_considered_actions: Gumbel MuZero's m, root actions considered by sequential halving
    :param pb_c_init: pUCT c1
    :param pb_c_base: pUCT c2
    :param dirichlet_alpha: root exploration noise concentration
    :param dirichlet_fraction: root noise mixing fraction (0 disables noise)
    :param temperature: visit-count temperature while collecting, a float or a schedule of the
        remaining progress; ``predict(deterministic=False)`` samples at temperature 1
    :param sampling_moves: if set, only the first ``sampling_moves`` moves of each episode are
        sampled (at ``temperature``) and later ones play the most visited action: the paper's
        board-game schedule (AlphaZero samples the first 30 moves), which varies the openings
        while the rest of each game shows the current policy at its best
    :param random_opening_moves: each self-play episode opens with ``k`` uniformly random legal
        moves, ``k`` drawn from ``0..random_opening_moves`` afresh per episode (0: off). The search
        still runs there and its policy is the target. A random move that is not the argmax of
        its stored (root-noised) search policy ends every value return that reaches it, its own
        position's included: they bootstrap from the value there, so no value target averages
        over random moves. Random moves count toward ``sampling_moves``. It plays out lines the
        sharpening policy stops entering but an opponent may choose (muzero_agents/openings.py)
    :param cut_returns_at_exploration: a value target follows the moves played after its position
        only while each was the search's greedy choice (the most visited action): at the first
        later move sampled away from it, the return stops and bootstraps from the value there
        (Watkins's Q(lambda) cut), so sampled moves stop hiding mistakes a greedy player would
        punish (the position's own move is always followed). Frequent sampling makes the returns
        short (mostly 1-2 steps when every move is sampled at temperature 1). Meant for
        ``search="muzero"``: with ``"gumbel"`` the stored policy is the improved policy, whose
        argmax the Gumbel-noised move often is not, so even late moves cut. No measured gain yet
        (benchmarks/results/boardgames/tictactoe-session10-*)
    :param priority_alpha: prioritization exponent (0 = uniform replay)
    :param priority_beta: initial importance-sampling exponent, annealed to 1 over training
    :param replay_ratio: gradient steps per collected transition
    :param reanalyze_fraction: fraction of each batch whose targets are recomputed with the
        latest network (MuZero Reanalyze), so value targets stop bootstrapping from stale values
    :param reanalyze_search: True re-runs the search for those positions (fresh policy and value
        targets, the paper's Reanalyze); False only refreshes the bootstrap values with one
        network call (cheap, as EfficientZero does with its target values)
    :param augment_symmetries: train each sample on a random image under the env's board
        symmetries (``board_symmetries`` of ``wrappers.make_board_game``'s Go, tic-tac-toe and
        connect four), as AlphaGo Zero did; no effect on envs that declare none
    :param play_symmetries: ``predict`` searches every image of the position under the env's
        board symmetries (8 on square boards, 2 on connect four) in one batch and plays from the
        searches' improved policies (pUCT: normalized visits) summed on the original board, so a
        misjudgement the network makes in a minority of orientations is outvoted (in the spirit of
        AlphaGo's averaging of its network over the 8 images; here whole searches vote). Self-play
        is unchanged; a move costs S searches. Needs an env with ``board_symmetries`` (kept in the
        save, so a loaded model has them without its env). No reliable gain on tic-tac-toe:
        benchmarks/results/boardgames/tictactoe-symmetric-play-2026-12-03.txt
    :param value_loss_coef: weight of the value loss (the paper uses 0.25 with reanalyze)
    :param reward_loss_coef: weight of the reward loss. Above 1 helped connect four, whose one
        reward (the winning move's) reaches only a few percent of the unrolled steps
        (benchmarks/results/boardgames/connect-four-session6-2026-12-01.txt)
    :param consistency_loss_coef: weight of EfficientZero's temporal consistency loss (Ye et al.,
        2021; muzero_agents/consistency.py): the dynamics' hidden state at each unrolled step is
        pulled towards the representation of the real observation there, a dense signal for
        the learned model where rewards are rare. 0 (the paper's MuZero) turns it off;
        EfficientZero uses 2. Adds a projector/predictor to the policy (settable through
        ``policy_kwargs=dict(consistency_kwargs=dict(projection_dim=..., predictor_dim=...))``)
    :param weight_decay: AdamW weight decay
    :param max_grad_norm: gradient clipping norm
    :param mixed_precision: run the training forward and backward passes under bfloat16 autocast
        (weights, optimizer, Reanalyze and the search stay float32). Faster only on hardware with
        bfloat16 arithmetic (CUDA GPUs from Ampere on, CPUs with AVX512-BF16/AMX: a connect-four
        gradient step took ~20% less time on such a CPU); elsewhere bfloat16 is emulated and
        slower. Its effect on learning: benchmarks/results/boardgames/connect-four-session9-*
    :param background_training: take the gradient steps on a thread of their own while self-play
        goes on with a copy of the network that loads the newest weights before each search
        (muzero_agents/background.py): on two cores both sides run at nearly full speed, not in
        turn. ``replay_ratio`` becomes a ceiling (self-play never waits for training, so where
        the gradient steps are the slower side fewer are taken per transition), and thread
        timing makes seeded runs irreproducible. Callbacks' ``predict`` calls during ``learn``
        play with the acting copy; ``save`` waits for the step in progress
    :param policy_kwargs: forwarded to the policy (e.g. ``network_kwargs=dict(hidden_dim=64)``)
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
        play_simulations: int | None = None,
        ema_decay: float | None = None,
        search: str = "muzero",
        max_considered_actions: int = 16,
        pb_c_init: float = 1.25,
        pb_c_base: float = 19652.0,
        dirichlet_alpha: float = 0.25,
        dirichlet_fraction: float = 0.25,
        temperature: float | Schedule = default_temperature,
        sampling_moves: int | None = None,
        random_opening_moves: int = 0,
        support_size: int = 20,
        cut_returns_at_exploration: bool = False,
        priority_alpha: float = 1.0,
        priority_beta: float = 0.4,
        replay_ratio: float = 0.5,
        reanalyze_fraction: float = 1.0,
        reanalyze_search: bool = False,
        augment_symmetries: bool = True,
        play_symmetries: bool = False,
        value_loss_coef: float = 0.25,
        reward_loss_coef: float = 1.0,
        consistency_loss_coef: float = 0.0,
        weight_decay: float = 1e-4,
        max_grad_norm: float = 5.0,
        mixed_precision: bool = False,
        background_training: bool = False,
        policy_kwargs: dict[str, Any] | None = None,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: torch.device | str = "auto",
        _init_setup_model: bool = True,
    ) -> None:
        self.buffer_size = buffer_size
        self.learning_starts = learning_starts
        self.batch_size = batch_size
        self.unroll_steps = unroll_steps
        self.td_steps = td_steps
        self.td_lambda = td_lambda
        self.discount = discount
        self.num_simulations = num_simulations
        self.play_simulations = play_simulations
        self.ema_decay = ema_decay
        self.search = search
        self.max_considered_actions = max_considered_actions
        self.pb_c_init = pb_c_init
        self.pb_c_base = pb_c_base
        self.dirichlet_alpha = dirichlet_alpha
        self.dirichlet_fraction = dirichlet_fraction
        self.temperature = temperature
        self.sampling_moves = sampling_moves
        self.random_opening_moves = random_opening_moves
        self.support_size = support_size
        self.cut_returns_at_exploration = cut_returns_at_exploration
        self.priority_alpha = priority_alpha
        self.priority_beta = priority_beta
        self.replay_ratio = replay_ratio
        self.reanalyze_fraction = reanalyze_fraction
        self.reanalyze_search = reanalyze_search
        self.augment_symmetries = augment_symmetries
        self.play_symmetries = play_symmetries
        self.value_loss_coef = value_loss_coef
        self.reward_loss_coef = reward_loss_coef
        self.consistency_loss_coef = consistency_loss_coef
        self.weight_decay = weight_decay
        self.max_grad_norm = max_grad_norm
        self.mixed_precision = mixed_precision
        self.background_training = background_training
        self._background: BackgroundTrainer | None = None  # the trainer thread while learn() runs
        self._acting_copy: MuZeroPolicy | None = None  # background self-play's network, kept between learns
        self._averaged_policy: MuZeroPolicy | None = None  # predict's network with ema_decay
        self._validate_hyperparameters()
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
        if self.env is not None and not isinstance(self.action_space, spaces.Discrete):
            raise ValueError(
                f"MuZero plans over a finite action set and needs a Discrete action space, got "
                f"{self.action_space}. Discretize continuous actions (e.g. a DiscreteActions wrapper) "
                "or use SAC/TD3 for continuous control."
            )
        self.replay_buffer: TrajectoryReplay | None = None
        self.two_player = False
        self._symmetries: Symmetries | None = None
        self._episode_moves = np.zeros(0, dtype=np.int64)
        self._openings = RandomOpenings(0, np.random.default_rng())  # drawn anew in learn()
        self._grad_step_credit = 0.0
        if _init_setup_model:
            self._setup_model()

    def _validate_hyperparameters(self) -> None:
        checks = {
            "num_simulations must be >= 1": self.num_simulations >= 1,
            "play_simulations must be None or an int >= 1": self.play_simulations is None
            or _is_simulation_count(self.play_simulations),
            "sampling_moves must be None or >= 0": self.sampling_moves is None or self.sampling_moves >= 0,
            f"search must be one of {SEARCHES}": self.search in SEARCHES,
            "max_considered_actions must be >= 1": self.max_considered_actions >= 1,
            "unroll_steps must be >= 1": self.unroll_steps >= 1,
            "td_steps must be >= 1": self.td_steps >= 1,
            "batch_size must be >= 1": self.batch_size >= 1,
            "buffer_size must be >= 1": self.buffer_size >= 1,
            "learning_starts must be >= 0": self.learning_starts >= 0,
            "learning_starts must not exceed buffer_size": self.learning_starts <= self.buffer_size,
            "td_lambda must be in [0, 1]": 0.0 <= self.td_lambda <= 1.0,
            "discount must be in (0, 1]": 0.0 < self.discount <= 1.0,
            "support_size must be >= 1": self.support_size >= 1,
            "replay_ratio must be > 0": self.replay_ratio > 0,
            "dirichlet_fraction must be in [0, 1]": 0.0 <= self.dirichlet_fraction <= 1.0,
            "dirichlet_alpha must be > 0": self.dirichlet_alpha > 0,
            "reanalyze_fraction must be in [0, 1]": 0.0 <= self.reanalyze_fraction <= 1.0,
            "priority_alpha must be >= 0": self.priority_alpha >= 0,
            "priority_beta must be in [0, 1]": 0.0 <= self.priority_beta <= 1.0,
            "value_loss_coef must be >= 0": self.value_loss_coef >= 0,
            "reward_loss_coef must be >= 0": self.reward_loss_coef >= 0,
            "consistency_loss_coef must be >= 0": self.consistency_loss_coef >= 0,
            "batch_size must be >= 2 when consistency_loss_coef > 0 (its heads' batch norm needs two samples)": (
                self.consistency_loss_coef <= 0 or self.batch_size >= 2
            ),
            "mixed_precision must be a bool": isinstance(self.mixed_precision, bool),
            "background_training must be a bool": isinstance(self.background_training, bool),
            "cut_returns_at_exploration must be a bool": isinstance(self.cut_returns_at_exploration, bool),
            "play_symmetries must be a bool": isinstance(self.play_symmetries, bool),
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError("Invalid MuZero hyperparameters: " + "; ".join(failed))
        check_ema_decay(self.ema_decay)
        check_opening_moves(self.random_opening_moves)

    # ------------------------------------------------------------------ setup

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self._rng = np.random.default_rng(self.seed)
        self.policy = self._make_policy()
        if self.mixed_precision and self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(
                f"mixed_precision=True needs bfloat16, which {torch.cuda.get_device_name(self.device)} "
                "lacks (CUDA GPUs from Ampere on have it): pass mixed_precision=False"
            )
        self.temperature_schedule = FloatSchedule(self.temperature)
        if self.env is not None:  # a loaded model without env keeps its saved flag and symmetries
            self.two_player = self._env_flag("is_two_player_zero_sum")
            self._read_env_symmetries()
        self.replay_buffer = self._make_replay_buffer()
        check_ema_decay(self.ema_decay)  # load's overrides reach here without _validate_hyperparameters
        self._averaged_policy = self._policy_copy() if self.ema_decay is not None else None

    def _policy_copy(self, into: MuZeroPolicy | None = None) -> MuZeroPolicy:
        """The learner's weights in an inference-mode network (``into``, else a new one)."""
        copy = self._make_policy() if into is None else into
        copy.load_state_dict(self.policy.state_dict())
        copy.set_training_mode(False)
        return copy

    def _make_policy(self) -> MuZeroPolicy:
        policy_kwargs = dict(self.policy_kwargs)
        policy_kwargs["optimizer_kwargs"] = {
            "weight_decay": self.weight_decay,
            **policy_kwargs.get("optimizer_kwargs", {}),
        }
        if self.consistency_loss_coef > 0:
            policy_kwargs.setdefault("consistency_kwargs", {})
        return self.policy_class(
            self.observation_space,
            self.action_space,
            self.lr_schedule,
            support_size=self.support_size,
            **policy_kwargs,
        ).to(self.device)

    def _make_replay_buffer(self) -> TrajectoryReplay:
        return TrajectoryReplay(
            capacity=self.buffer_size,
            n_envs=self.n_envs,
            observation_shape=self.observation_space.shape,
            observation_dtype=self.observation_space.dtype,
            action_dim=int(self.action_space.n),
            unroll_steps=self.unroll_steps,
            td_steps=self.td_steps,
            discount=self.discount,
            td_lambda=self.td_lambda,
            two_player=self.two_player,
            priority_alpha=self.priority_alpha,
            priority_beta=self.priority_beta,
            seed=None if self.seed is None else self.seed + 1,  # a stream apart from the search's
            cut_returns_at_exploration=self.cut_returns_at_exploration,
        )

    def _env_flag(self, name: str) -> bool:
        """True if every sub-env exposes attribute ``name`` set to True (e.g. two-player games)."""
        if self.env is None or not self.env.has_attr(name):
            return False
        return all(bool(value) for value in self.env.get_attr(name))

    def _read_env_symmetries(self) -> None:
        """Take the env's board symmetries; refuse ``play_symmetries`` on an env without them."""
        self._symmetries = self._env_symmetries()
        if self.play_symmetries and self._symmetries is None:
            raise ValueError(
                "play_symmetries=True needs an env that declares board_symmetries (wrappers."
                "make_board_game's Go, tic-tac-toe and connect four do); this env declares none. "
                "Pass play_symmetries=False (to MuZero.load too, for a model saved with it on)."
            )

    def _env_symmetries(self) -> Symmetries | None:
        """The board symmetries of the sub-envs (None where they declare none).

        They index the env's own observations, so a wrapper that reshapes them (frame
        stacking, a transpose) makes them wrong: refused, where augmentation or symmetric play
        would use them, with an error that names the fix (otherwise ignored).
        """
        if self.env is None or not self.env.has_attr("board_symmetries"):
            return None
        per_env = self.env.get_attr("board_symmetries")
        if not per_env[0]:
            return None
        symmetries = Symmetries.stack(per_env[0])
        obs_size, actions = int(np.prod(self.observation_space.shape)), int(self.action_space.n)
        same = all(s and Symmetries.stack(s).same_as(symmetries) for s in per_env[1:])
        env_shape = tuple(self.env.get_attr("observation_space")[0].shape)
        if (
            not same
            or env_shape != tuple(self.observation_space.shape)
            or symmetries.obs_index.shape[1] != obs_size
            or symmetries.action_map.shape[1] != actions
        ):
            if not (self.augment_symmetries or self.play_symmetries):
                return None
            raise ValueError(
                "The env's board_symmetries do not match its observations or actions (a wrapper "
                "such as VecFrameStack or VecTransposeImage reshaped them, or the sub-envs differ). "
                "Pass augment_symmetries=False and play_symmetries=False, or give MuZero the board "
                "env unwrapped."
            )
        return symmetries

    def _env_action_masks(self) -> np.ndarray | None:
        if self.env is None or not self.env.has_attr("action_masks"):
            return None
        return np.stack(self.env.env_method("action_masks")).astype(bool)

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        """SB3's set_env; a different number of envs or kind of game gets a fresh replay buffer."""
        super().set_env(env, force_reset)
        two_player = self._env_flag("is_two_player_zero_sum")
        buffer = self.replay_buffer
        if buffer is not None and (buffer.n_envs != self.n_envs or buffer.two_player != two_player):
            if self.verbose:
                print("set_env: the new env differs in n_envs or players; starting an empty replay buffer")
            self.two_player = two_player
            self.replay_buffer = self._make_replay_buffer()
        self.two_player = two_player
        self._read_env_symmetries()

    # ------------------------------------------------------------------ search

    def _search(
        self,
        observations: np.ndarray,
        legal_mask: np.ndarray | None,
        explore: bool,
        temperature: float,
        policy: MuZeroPolicy | None = None,
        rng: np.random.Generator | None = None,
        num_simulations: int | None = None,
    ) -> SearchResult:
        """One batched search from a batch of observations (all envs, or predict's batch).

        ``policy`` defaults to the acting policy (the learner's network unless background
        training runs), ``rng`` to the model's, ``num_simulations`` to self-play's.
        """
        policy = self._acting_policy if policy is None else policy
        policy.set_training_mode(False)
        hidden, value, logits = policy.initial_inference_numpy(observations)
        common = dict(
            num_simulations=self.num_simulations if num_simulations is None else num_simulations,
            legal_mask=legal_mask,
            discount=self.discount,
            two_player=self.two_player,
            rng=self._rng if rng is None else rng,
        )
        if self.search == "gumbel":  # Gumbel noise explores; deterministic when not exploring
            return gumbel_muzero_search(
                logits,
                value,
                hidden,
                policy.recurrent_numpy,
                max_num_considered_actions=self.max_considered_actions,
                gumbel_scale=1.0 if explore or temperature > 0 else 0.0,
                **common,
            )
        return muzero_search(
            logits,
            value,
            hidden,
            policy.recurrent_numpy,
            pb_c_init=self.pb_c_init,
            pb_c_base=self.pb_c_base,
            dirichlet_alpha=self.dirichlet_alpha,
            dirichlet_fraction=self.dirichlet_fraction if explore else 0.0,
            temperature=temperature,
            **common,
        )

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Plan with the learned model for each observation of the batch.

        Each search runs ``play_simulations`` simulations (``num_simulations`` when None).
        ``deterministic=True`` plays the most visited root action; otherwise an action is sampled
        from the visit counts. ``action_masks`` (sb3-contrib's convention) restricts the root.
        With ``play_symmetries`` the choice comes from the searches of all the board's images.
        """
        if isinstance(observation, dict):
            raise ValueError("MuZero takes array observations, not dicts (see MuZeroPolicy).")
        observation = maybe_transpose(np.asarray(observation), self.observation_space)
        vectorized = is_vectorized_observation(observation, self.observation_space)
        batch = observation if vectorized else observation[None]
        masks = None
        if action_masks is not None:
            masks = np.asarray(action_masks, dtype=bool).reshape(batch.shape[0], -1)
        temperature = 0.0 if deterministic else 1.0
        with self._weight_average_lock():
            if self.play_symmetries:
                chosen = self._symmetric_play(batch, masks, sample=not deterministic)
            else:
                chosen = self._search(
                    batch,
                    masks,
                    explore=False,
                    temperature=temperature,
                    policy=self._play_policy,
                    num_simulations=self._play_simulations,
                ).action
        return (chosen if vectorized else chosen[0]), state

    @property
    def _play_policy(self) -> MuZeroPolicy:
        """``predict``'s network: the weight average with ``ema_decay``, else the acting network."""
        if self.ema_decay is None:
            return self._acting_policy
        return self._weight_average(self.ema_decay)

    def _weight_average(self, decay: float) -> MuZeroPolicy:
        """The average, checked (``ema_decay`` is settable after construction) and started at the
        weights of now if ``ema_decay`` was set after construction."""
        check_ema_decay(decay)
        if self._averaged_policy is None:
            self._averaged_policy = self._policy_copy()
        return self._averaged_policy

    def _update_weight_average(self) -> None:
        """After a gradient step: move the average (``ema_decay`` set) or drop it (None), so that
        setting ``ema_decay`` again later starts from the weights of then, not from a stale average."""
        decay = self.ema_decay  # read once: a callback may change it meanwhile
        if decay is None:
            self._averaged_policy = None
            return
        update_average(self._weight_average(decay), self.policy, decay)

    def _weight_average_lock(self) -> contextlib.AbstractContextManager:
        """Hold a background trainer between steps while predict reads the weight average it updates."""
        if self.ema_decay is None or self._background is None:
            return contextlib.nullcontext()
        return self._background.step_lock

    @property
    def _play_simulations(self) -> int:
        """Simulations per ``predict`` decision: ``play_simulations``, else self-play's.

        Checked here too, since it is meant to be set after training (``model.play_simulations = N``).
        """
        if self.play_simulations is None:
            return self.num_simulations
        if not _is_simulation_count(self.play_simulations):
            raise ValueError(
                f"play_simulations must be None or an int >= 1, got {self.play_simulations!r}: set it to "
                "the simulations per move predict() should search, or None to use num_simulations."
            )
        return int(self.play_simulations)

    def _symmetric_play(
        self, observations: np.ndarray, legal_mask: np.ndarray | None, sample: bool
    ) -> np.ndarray:
        """Actions from one search per board image (all in one batch), policies summed on the original board.

        The searches' improved policies are summed, not their visit counts: for pUCT the two agree
        (every image gets the same simulations), while Gumbel MuZero's visits only follow sequential
        halving's schedule and tie among its survivors. ``sample`` draws from the sum, else its argmax.
        """
        symmetries = self._symmetries
        if symmetries is None:
            raise ValueError(
                "play_symmetries needs the board's symmetries, and this model has none (a save from "
                "before they were kept, or an env without usable board_symmetries): give it its "
                "board env (MuZero.load(path, env=...) or model.set_env(env)), or set "
                "play_symmetries=False."
            )
        images, image_masks = symmetries.images(observations, legal_mask)
        result = self._search(
            images,
            image_masks,
            explore=False,
            temperature=0.0,
            policy=self._play_policy,
            num_simulations=self._play_simulations,
        )
        summed = symmetries.pull_back_sum(result.policy.astype(np.float64))  # 0 on illegal actions
        if not sample:
            return summed.argmax(axis=1)
        return np.array([self._rng.choice(row.size, p=row / row.sum()) for row in summed], dtype=np.int64)

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
        opening_moves = check_opening_moves(self.random_opening_moves)  # before anything changes
        self._reap_background_trainer()
        envs_will_reset = reset_num_timesteps or self._last_obs is None
        total_timesteps, callback = self._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        if envs_will_reset or self._episode_moves.shape != (self.n_envs,):
            self._episode_moves = np.zeros(self.n_envs, dtype=np.int64)  # moves into each episode
            # its own stream, spawned only when used (so seeded runs without openings are as before)
            rng = self._rng.spawn(1)[0] if opening_moves else np.random.default_rng()
            self._openings = RandomOpenings(opening_moves, rng)
            self._openings.start(self.n_envs)
        self._openings.limit(opening_moves)  # a value set between learns applies now
        if envs_will_reset:  # stored episodes cannot continue from freshly reset envs
            self.replay_buffer.truncate_running_episodes()
        callback.on_training_start(locals(), globals())
        assert self.env is not None and self.replay_buffer is not None
        episodes_at_last_dump = self._episode_num
        if self.background_training:
            self._start_background_trainer()
        try:
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
        except BaseException as error:  # (KeyboardInterrupt too) the thread ends; this exception goes on
            self._stop_background_trainer(in_flight=error)
            raise
        self._stop_background_trainer()
        callback.on_training_end()
        return self

    @property
    def _acting_policy(self) -> MuZeroPolicy:
        """The network self-play and ``predict`` search with: a copy while background training runs."""
        return self.policy if self._background is None else self._background.acting_policy

    def _replay_lock(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self._background is None else self._background.replay_lock

    def _reap_background_trainer(self) -> None:
        """Clear a trainer an earlier learn() could not stop in time, once it has ended."""
        if self._background is None:
            return
        if self._background.running:
            raise RuntimeError(
                "A background trainer from an earlier learn() is still running (it did not stop in "
                "time); wait for it to finish before calling learn() again."
            )
        self._stop_background_trainer()  # records its statistics, raises its failure if any

    def _start_background_trainer(self) -> None:
        self._acting_copy = self._policy_copy(into=self._acting_copy)
        replay_lock = threading.Lock()
        rng = self._rng.spawn(1)[0]  # the trainer's own stream, new for each learn()
        step = functools.partial(self._gradient_step, self.batch_size, rng, replay_lock)
        self._background = BackgroundTrainer(step, self.policy, self._acting_copy, replay_lock).start()

    def _stop_background_trainer(self, in_flight: BaseException | None = None) -> None:
        """End the trainer thread (dropping owed steps) and raise what it failed with.

        With an exception already on its way out (``in_flight``), the trainer's own failure or a
        stop that timed out is added to it as a note instead of replacing it.
        """
        background = self._background
        if background is None:
            return
        try:
            background.stop()
        except RuntimeError as timeout:  # still running: keep it, so save() still pauses it
            if in_flight is None:
                raise
            _add_note(in_flight, str(timeout))
            return
        self._background = None
        self._record_background_statistics(background)
        if in_flight is None:
            background.raise_if_failed()
        elif background.error is not None and in_flight.__cause__ is not background.error:
            _add_note(in_flight, f"MuZero's background trainer had also failed: {background.error!r}")

    def _record_background_statistics(self, background: BackgroundTrainer) -> None:
        for scalars in background.drain_statistics():
            for name, value in scalars.items():
                self.logger.record_mean(f"train/{name}", value)
        self.logger.record("train/steps_owed", background.steps_owed)
        self._record_training_progress()

    def _collect_step(self, callback: BaseCallback) -> bool:
        """Search in every env, step them once, store the transitions; False if a callback stops."""
        if self._background is not None:
            self._background.raise_if_failed()
            self._background.sync_acting_policy()
        observations = self._last_obs
        legal_mask = self._env_action_masks()
        temperature = float(self.temperature_schedule(self._current_progress_remaining))
        started = time.perf_counter()
        result = self._search(observations, legal_mask, explore=True, temperature=temperature)
        result = self._play_greedily_after_sampling_moves(result)
        actions, random_moves = self._openings.choose(result.action, legal_mask, int(self.action_space.n))
        result = result._replace(action=actions)
        self._search_seconds = time.perf_counter() - started
        new_obs, rewards, dones, infos = self.env.step(result.action)
        self.num_timesteps += self.env.num_envs
        self._update_info_buffer(infos, dones)
        self._store(observations, result, rewards, dones, infos, legal_mask, random_moves)
        self._last_obs = new_obs
        self._last_episode_starts = dones
        self._episode_moves = np.where(dones, 0, self._episode_moves + 1)
        self._openings.advance(dones)
        self._episode_num += int(np.sum(dones))
        self._update_current_progress_remaining(self.num_timesteps, self._total_timesteps)
        self._record_search_stats(result)
        callback.update_locals(locals())
        return callback.on_step()  # after storing, so a stop loses nothing and resumes cleanly

    def _play_greedily_after_sampling_moves(self, result: SearchResult) -> SearchResult:
        """Envs past ``sampling_moves`` moves of their episode take the most visited action.

        Ties in visits (common after Gumbel's sequential halving) go to the largest improved
        policy, which for Gumbel MuZero is its own noise-free choice.
        """
        if self.sampling_moves is None:
            return result
        late = self._episode_moves >= self.sampling_moves
        if not late.any():
            return result
        visits = result.visit_counts[late]  # masked actions have 0 visits
        most_visited = visits == visits.max(axis=1, keepdims=True)
        action = result.action.copy()
        action[late] = np.argmax(np.where(most_visited, result.policy[late], -1.0), axis=1)
        return result._replace(action=action)

    def _store(
        self, observations, result: SearchResult, rewards, dones, infos, legal_mask, random_moves
    ) -> None:
        """Add one vectorized step to replay; truncated episodes bootstrap from their final obs."""
        terminated = np.array(
            [bool(done) and not info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)]
        )
        final_observations: dict[int, np.ndarray] = {}
        final_values: dict[int, float] = {}
        for index in np.flatnonzero(dones):
            final_obs = infos[index].get("terminal_observation")
            if final_obs is None:
                continue
            final_observations[int(index)] = final_obs
            if not terminated[index]:
                _, value, _ = self._acting_policy.initial_inference_numpy(np.asarray(final_obs)[None])
                final_values[int(index)] = float(value[0])
        with self._replay_lock():
            self.replay_buffer.add(
                observations,
                result.action,
                np.asarray(rewards, dtype=np.float32),
                result.root_value,
                result.policy,
                np.asarray(dones, dtype=bool),
                terminated,
                final_observations=final_observations,
                final_values=final_values,
                legal_masks=legal_mask,
                random_moves=random_moves,
            )

    def _record_search_stats(self, result: SearchResult) -> None:
        policy = np.clip(result.policy, 1e-12, 1.0)
        entropy = float(-(result.policy * np.log(policy)).sum(axis=1).mean())
        self.logger.record_mean("search/root_value", float(np.mean(result.root_value)))
        self.logger.record_mean("search/visit_entropy", entropy)
        self.logger.record_mean("search/ms_per_step", 1000.0 * self._search_seconds)

    def _train_due(self) -> None:
        """Run the gradient steps owed by the replay ratio (fractional credit carries over).

        Nothing is owed until the buffer holds ``learning_starts`` transitions. With background
        training the owed steps go to the trainer thread instead.
        """
        if self._background is not None:
            self._record_background_statistics(self._background)
        if len(self.replay_buffer) < max(1, self.learning_starts):
            return  # e.g. right after load with an empty buffer: no burst of owed steps later
        self._grad_step_credit += self.replay_ratio * self.env.num_envs
        steps = int(self._grad_step_credit)
        if steps > 0:
            self._grad_step_credit -= steps
            if self._background is not None:
                self._background.owe(steps)
            else:
                self.train(steps, self.batch_size)

    def train(self, gradient_steps: int, batch_size: int = 128) -> None:
        """Sample K-step unrolls and minimize the MuZero loss (value, reward, policy)."""
        for _ in range(gradient_steps):
            for name, value in self._gradient_step(batch_size, self._rng).items():
                self.logger.record_mean(f"train/{name}", value)
        self._record_training_progress()

    def _record_training_progress(self) -> None:
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/learning_rate", self.lr_schedule(self._current_progress_remaining))

    def _gradient_step(
        self, batch_size: int, rng: np.random.Generator, replay_lock: threading.Lock | None = None
    ) -> dict[str, float]:
        """One optimizer step on a sampled batch; returns the loss scalars.

        ``rng`` draws the symmetries and Reanalyze's search noise: the trainer thread has its own.
        ``replay_lock`` guards the replay buffer against self-play's ``add`` (background training).
        """
        guard = contextlib.nullcontext() if replay_lock is None else replay_lock
        # not SB3's _update_learning_rate: it writes to the logger, which only the caller's thread may
        update_learning_rate(self.policy.optimizer, self.lr_schedule(self._current_progress_remaining))
        refresh_fn = functools.partial(self._reanalyze, rng=rng) if self.reanalyze_fraction > 0 else None
        self.replay_buffer.beta = self.priority_beta + (1.0 - self.priority_beta) * (
            1.0 - self._current_progress_remaining
        )
        batch = self.replay_buffer.sample(
            batch_size,
            refresh_fn=refresh_fn,
            refresh_fraction=self.reanalyze_fraction,
            refresh_with_masks=refresh_fn is not None and self.replay_buffer.has_legal_masks,
            refresh_policies=self.reanalyze_search,
            lock=replay_lock,  # released while Reanalyze runs: self-play's add() need not wait
            next_observations=self.consistency_loss_coef > 0,
        )
        batch = augment(batch, self._symmetries if self.augment_symmetries else None, rng)
        self.policy.set_training_mode(True)
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.mixed_precision):
            losses = muzero_loss(
                self.policy,
                batch,
                self.unroll_steps,
                self.support_size,
                self.value_loss_coef,
                self.reward_loss_coef,
                self.consistency_loss_coef,
            )
        self.policy.optimizer.zero_grad(set_to_none=True)
        losses.total.backward()
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        self.policy.optimizer.step()
        self._update_weight_average()
        keep = batch.priority_mask  # newest steps of running episodes keep their priority
        with guard:
            self.replay_buffer.update_priorities(batch.indices[keep], losses.priorities[keep])
        self._n_updates += 1
        return losses.scalars()

    def _reanalyze(
        self,
        observations: np.ndarray,
        legal_masks: np.ndarray | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Reanalyze stored observations with the latest network (the learner's, not a copy).

        With ``reanalyze_search`` a fresh noise-free search gives new values and policies;
        otherwise only values are refreshed, by one batched network call (policies kept).
        """
        self.policy.set_training_mode(False)
        if self.reanalyze_search:
            result = self._search(
                observations, legal_masks, explore=False, temperature=0.0, policy=self.policy, rng=rng
            )
            values, policies = result.root_value, result.policy
        else:
            _, values, _ = self.policy.initial_inference_numpy(observations)
            policies = None
        self.policy.set_training_mode(True)
        return values, policies

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
        return [
            *super()._excluded_save_params(),
            "_rng",
            "temperature_schedule",
            "_episode_moves",
            "_openings",
            "_background",
            "_acting_copy",
            "_averaged_policy",
        ]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        averaged = (
            ["_averaged_policy"] if self.ema_decay is not None and self._averaged_policy is not None else []
        )
        return ["policy", "policy.optimizer", *averaged], []

    def set_parameters(
        self, load_path_or_dict, exact_match: bool = True, device: torch.device | str = "auto"
    ) -> None:
        """SB3's, reconciling the weight average with ``ema_decay``: a save without one starts it at the
        loaded weights, and one that has it while ``ema_decay`` is None drops it."""
        if isinstance(load_path_or_dict, dict):
            params = dict(load_path_or_dict)
        else:  # a save: read its parameters as SB3 would
            _, params, _ = load_from_zip_file(load_path_or_dict, load_data=False, device=device)
        if self.ema_decay is None:  # an average kept from before would belong to other weights
            params.pop("_averaged_policy", None)
            self._averaged_policy = None
        else:
            self._weight_average(self.ema_decay)  # exists before SB3 loads into it
            if "_averaged_policy" not in params and "policy" in params:
                params["_averaged_policy"] = params["policy"]
        super().set_parameters(params, exact_match=exact_match, device=device)

    def save(self, path: str | pathlib.Path | io.BufferedIOBase, exclude=None, include=None) -> None:
        """SB3's zip format, written to a temporary file then renamed so a crash never leaves a torn file."""
        pause = contextlib.nullcontext() if self._background is None else self._background.step_lock
        with pause:  # between two background gradient steps: weights and optimizer agree
            self._save_now(path, exclude, include)

    def _save_now(self, path, exclude, include) -> None:
        if isinstance(path, io.BufferedIOBase):
            return super().save(path, exclude, include)
        path = pathlib.Path(path)
        if path.suffix == "":
            path = path.with_suffix(".zip")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temporary_file(path)
        os.close(fd)
        try:
            super().save(tmp, exclude, include)
            replace_atomically(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path, env: GymEnv | None = None, device: torch.device | str = "auto", **kwargs) -> MuZero:
        """SB3's load, refusing with a clear message anything that is not a MuZero save."""
        _check_is_muzero_save(path)
        try:
            model = super().load(path, env=env, device=device, **kwargs)
        except RuntimeError as error:
            if "consistency_head" in str(error):
                raise ValueError(
                    f"{path} was saved {'without' if 'Missing' in str(error) else 'with'} the consistency "
                    "head, and consistency_loss_coef now asks for the opposite: load it with the "
                    "coefficient it was saved with (leave consistency_loss_coef out of load's arguments)."
                ) from error
            if "size mismatch" not in str(error):
                raise
            raise ValueError(
                f"{path}'s network weights do not fit this version's network layout: it was saved by "
                "an older muzero-agents (for example a connect-four model from before commit a193aab, "
                "which encoded column actions as 7 planes, not one). Load it with the version that "
                f"saved it, or train it again. PyTorch said: {str(error).splitlines()[0]}"
            ) from error
        model._rng = np.random.default_rng(model.seed)
        model.temperature_schedule = FloatSchedule(model.temperature)
        return model

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Pickle the trajectory replay (SB3's helper; adds .pkl when no suffix is given)."""
        with self._replay_lock():  # a background trainer's sample cannot tear the snapshot
            save_to_pkl(path, self.replay_buffer, self.verbose)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        if self._background is not None:
            raise RuntimeError(
                "load_replay_buffer cannot swap the buffer while background training samples from "
                "it; load it before or after learn()."
            )
        buffer = load_from_pkl(path, self.verbose)
        if not isinstance(buffer, TrajectoryReplay):
            raise ValueError(f"{path} holds a {type(buffer).__name__}, not a MuZero TrajectoryReplay.")
        if buffer.n_envs != self.n_envs:
            raise ValueError(
                f"{path} was recorded with {buffer.n_envs} envs but this model has {self.n_envs}; "
                f"load it into a model whose env has {buffer.n_envs} envs."
            )
        buffer.truncate_running_episodes()  # their envs are gone; keep the steps, end the episodes
        buffer.cut_returns_at_exploration = self.cut_returns_at_exploration  # the model's targets
        self.replay_buffer = buffer


def _is_simulation_count(value: Any) -> bool:
    """An int (numpy's too, not a bool) of at least 1."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


def _add_note(error: BaseException, note: str) -> None:
    """Attach ``note`` to an exception on its way out (a warning before Python 3.11's add_note)."""
    if hasattr(error, "add_note"):
        error.add_note(note)
    else:
        warnings.warn(note, RuntimeWarning, stacklevel=3)


def _check_is_muzero_save(path) -> None:
    """Raise ValueError naming the problem if ``path`` is not a readable MuZero zip save."""
    if isinstance(path, (str, pathlib.Path)):
        candidates = [pathlib.Path(path), pathlib.Path(f"{path}.zip")]
        existing = next((p for p in candidates if p.exists()), None)
        if existing is None:
            raise FileNotFoundError(f"No MuZero save at {path} (nor {path}.zip).")
        if not zipfile.is_zipfile(existing):
            raise ValueError(
                f"{existing} is not a MuZero save: it is not an SB3 zip archive (corrupt or another format)."
            )
        path = existing
    try:
        data, _, _ = load_from_zip_file(path, load_data=True, device="cpu")
    except Exception as error:  # SB3 raises assorted errors for damaged archives
        raise ValueError(f"{path} is not a readable MuZero save: {error}") from error
    policy_class = (data or {}).get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, MuZeroPolicy)):
        name = getattr(policy_class, "__qualname__", policy_class)
        raise ValueError(
            f"{path} is not a MuZero save (its policy is {name}); load it with the algorithm that saved it."
        )
    if isinstance(path, io.BufferedIOBase):
        path.seek(0)

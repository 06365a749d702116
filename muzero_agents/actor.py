"""Self-play: observations -> batched search -> actions -> env step -> trajectory pieces.

The actor knows the envs and the search, never the optimizer: it plays with whatever network it
is handed (the learner's, or an acting copy that a loop keeps up to date) and returns each
vectorized step as a ``StepRecord`` ready for ``TrajectoryReplay.add``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.vec_env import (
    VecEnv,
    VecEnvWrapper,
    VecFrameStack,
    VecTransposeImage,
    is_vecenv_wrapped,
)

from muzero_agents.augment import Symmetries
from muzero_agents.env_checks import check_action_masks, check_frame_stack_axis, check_observations
from muzero_agents.openings import RandomOpenings
from muzero_agents.planning import Planner
from muzero_agents.policies import MuZeroPolicy
from muzero_agents.search import SearchResult
from muzero_agents.settings import scheduled_value


class StepRecord(NamedTuple):
    """One vectorized env step, in the keywords of ``TrajectoryReplay.add``."""

    observations: np.ndarray  # [n_envs, *obs]: where the actions were chosen
    actions: np.ndarray  # [n_envs] int64
    rewards: np.ndarray  # [n_envs] float32
    root_values: np.ndarray  # [n_envs]: the search's value at each root
    search_policies: np.ndarray  # [n_envs, A]: the search's improved policy (the policy target)
    dones: np.ndarray  # [n_envs] bool: the episode ended after this step
    terminated: np.ndarray  # [n_envs] bool: ... in a true terminal (else truncated)
    final_observations: dict[int, np.ndarray]  # env -> observation after a done step
    final_values: dict[int, float]  # env -> value of a truncated episode's final observation
    legal_masks: np.ndarray | None  # [n_envs, A] bool, where the env gives action masks
    random_moves: np.ndarray  # [n_envs] bool: the action was a random opening move


class SelfPlayActor:
    """Plays every env of a VecEnv one step at a time with a batched search.

    :param planner: runs the search
    :param num_simulations: simulations per decision
    :param rng: the search's noise and the samples

    ``start`` takes the self-play settings (``self_play_kwargs``): the temperature, the moves
    sampled per episode (``sampling_moves``; later ones play the most visited action) and the
    random opening moves.
    """

    def __init__(self, planner: Planner, num_simulations: int, rng: np.random.Generator) -> None:
        self.planner = planner
        self.num_simulations = num_simulations
        self.rng = rng
        self.sampling_moves: int | None = None
        self.temperature_schedule: float | Callable[[float], float] = 1.0
        self.episode_moves = np.zeros(0, dtype=np.int64)
        self.openings = RandomOpenings(0, np.random.default_rng())
        self.last_prior_logits: np.ndarray | None = None  # the network's at the last search's roots

    def start(self, n_envs: int, self_play_kwargs: Mapping[str, Any], envs_reset: bool) -> bool:
        """Take the self-play settings of now; after a reset (``envs_reset``, or another number of
        envs) every env starts a fresh episode. Returns whether episodes started afresh."""
        self.sampling_moves = self_play_kwargs["sampling_moves"]
        self.temperature_schedule = self_play_kwargs["temperature"]
        opening_moves = self_play_kwargs["random_opening_moves"]
        fresh = envs_reset or self.episode_moves.shape != (n_envs,)
        if fresh:
            self.episode_moves = np.zeros(n_envs, dtype=np.int64)
            # its own stream, spawned only when used, so seeded runs without openings stay as they were
            rng = self.rng.spawn(1)[0] if opening_moves else np.random.default_rng()
            self.openings = RandomOpenings(opening_moves, rng)
            self.openings.start(n_envs)
        self.openings.limit(opening_moves)  # a value set between learns applies now
        return fresh

    def temperature(self, progress_remaining: float) -> float:
        """The visit-count temperature at this point of training (1 -> 0 remaining)."""
        label, schedule = 'self_play_kwargs["temperature"]', self.temperature_schedule
        return scheduled_value(label, schedule, progress_remaining)

    def choose(
        self,
        policy: MuZeroPolicy,
        observations: np.ndarray,
        legal_mask: np.ndarray | None,
        temperature: float,
    ) -> tuple[SearchResult, np.ndarray]:
        """Search every env's observation; returns the search (with the actions to play) and
        which actions are random opening moves."""
        result = self.planner.plan(
            policy,
            observations,
            legal_mask,
            num_simulations=self.num_simulations,
            explore=True,
            temperature=temperature,
            rng=self.rng,
        )
        result = self._greedy_after_sampling_moves(result)
        self.last_prior_logits = result.prior_logits  # for statistics()
        action_count = result.policy.shape[1]
        actions, random_moves = self.openings.choose(result.action, legal_mask, action_count)
        return result._replace(action=actions), random_moves

    def _greedy_after_sampling_moves(self, result: SearchResult) -> SearchResult:
        """Envs past ``sampling_moves`` moves of their episode take the most visited action.

        Ties in visits (common after Gumbel's sequential halving) go to the largest improved
        policy, which for Gumbel MuZero is its own noise-free choice.
        """
        if self.sampling_moves is None:
            return result
        late = self.episode_moves >= self.sampling_moves
        if not late.any():
            return result
        visits = result.visit_counts[late]  # masked actions have 0 visits
        most_visited = visits == visits.max(axis=1, keepdims=True)
        action = result.action.copy()
        action[late] = np.argmax(np.where(most_visited, result.policy[late], -1.0), axis=1)
        return result._replace(action=action)

    def record(
        self,
        policy: MuZeroPolicy,
        observations: np.ndarray,
        chosen: tuple[SearchResult, np.ndarray],
        step: tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]],
        legal_mask: np.ndarray | None,
    ) -> StepRecord:
        """The trajectory piece of one env step; a truncated episode's final observation is
        valued with ``policy`` so its return can bootstrap from it."""
        result, random_moves = chosen
        _, rewards, dones, infos = step
        terminated = np.array(
            [bool(done) and not info.get("TimeLimit.truncated", False) for done, info in zip(dones, infos)]
        )
        final_observations: dict[int, np.ndarray] = {}
        final_values: dict[int, float] = {}
        for index in np.flatnonzero(dones):
            final_obs = infos[index].get("terminal_observation")
            if final_obs is None:
                continue
            where = "self-play: the episode's final observation (infos' terminal_observation)"
            check_observations(
                np.asarray(final_obs)[None], policy.observation_space, where=where, first_env=index
            )
            final_observations[int(index)] = final_obs
            if not terminated[index]:
                _, value, _ = policy.initial_inference_numpy(np.asarray(final_obs)[None])
                final_values[int(index)] = float(value[0])
        return StepRecord(
            observations=observations,
            actions=result.action,
            rewards=np.asarray(rewards, dtype=np.float32),
            root_values=result.root_value,
            search_policies=result.policy,
            dones=np.asarray(dones, dtype=bool),
            terminated=terminated,
            final_observations=final_observations,
            final_values=final_values,
            legal_masks=legal_mask,
            random_moves=random_moves,
        )

    def advance(self, dones: np.ndarray) -> None:
        """Count the move in every env; envs whose episode ended start a new one."""
        self.episode_moves = np.where(dones, 0, self.episode_moves + 1)
        self.openings.advance(dones)

    @staticmethod
    def statistics(record: StepRecord, prior_logits: np.ndarray | None = None) -> dict[str, float]:
        """Over a step's envs: the search's mean root value and visit-policy entropy and, given
        the network's ``prior_logits`` at the roots, the prior's entropy and the KL divergence of
        the search's policy from it (how much the search changed the network's policy)."""
        policy = record.search_policies
        log_policy = np.log(np.clip(policy, 1e-12, 1.0))
        scalars = {
            "root_value": float(np.mean(record.root_values)),
            "visit_entropy": float(-(policy * log_policy).sum(axis=1).mean()),
        }
        if prior_logits is not None:
            legal = np.ones_like(policy, dtype=bool) if record.legal_masks is None else record.legal_masks
            logits = np.where(legal, prior_logits, -np.inf)
            log_prior = logits - logits.max(axis=1, keepdims=True)
            log_prior = log_prior - np.log(np.exp(log_prior).sum(axis=1, keepdims=True))
            prior = np.exp(log_prior)
            scalars["prior_entropy"] = float(-(prior * np.where(legal, log_prior, 0.0)).sum(axis=1).mean())
            kl = np.where(policy > 0, policy * (log_policy - np.where(legal, log_prior, 0.0)), 0.0)
            scalars["policy_kl"] = float(kl.sum(axis=1).mean())
        return scalars

    def step(
        self,
        env: VecEnv,
        policy: MuZeroPolicy,
        observations: np.ndarray,
        legal_mask: np.ndarray | None,
        temperature: float,
    ) -> tuple[StepRecord, np.ndarray, list[dict[str, Any]]]:
        """Search, act in every env, and return the step's record, the new observations and infos."""
        chosen = self.choose(policy, observations, legal_mask, temperature)
        new_obs, rewards, dones, infos = env.step(chosen[0].action)
        record = self.record(policy, observations, chosen, (new_obs, rewards, dones, infos), legal_mask)
        self.advance(record.dones)
        return record, new_obs, infos


def env_flag(env: VecEnv | None, name: str) -> bool:
    """True if every sub-env exposes attribute ``name`` set to True (e.g. two-player games)."""
    if env is None or not env.has_attr(name):
        return False
    return all(bool(value) for value in env.get_attr(name))


def env_action_masks(env: VecEnv, action_count: int) -> np.ndarray | None:
    """The sub-envs' legal-action masks (sb3-contrib's ``action_masks()``), checked; None if they
    have none."""
    if not env.has_attr("action_masks"):
        return None
    return check_action_masks(np.stack(env.env_method("action_masks")), env.num_envs, action_count)


def env_symmetries(env: VecEnv | None, observation_space, action_space, needed: bool) -> Symmetries | None:
    """The board symmetries the sub-envs declare (None where they declare none).

    They index the observations of the env that declares them, whose shape each may carry as
    ``obs_shape`` (``wrappers.symmetries.Symmetry`` does; else the sub-envs' observations are taken
    as those). A wrapper that reshapes them (frame stacking, a transpose) makes them wrong:
    refused where augmentation would use them (``needed``), with an error that names the fix,
    otherwise ignored.
    """
    if env is None or not env.has_attr("board_symmetries"):
        return None
    per_env = env.get_attr("board_symmetries")
    if not per_env[0]:
        return None
    symmetries = Symmetries.stack(per_env[0])
    same = all(s and Symmetries.stack(s).same_as(symmetries) for s in per_env[1:])
    declared = getattr(per_env[0][0], "obs_shape", None)  # the declaring env's own observations
    env_shape = tuple(declared if declared is not None else env.get_attr("observation_space")[0].shape)
    fits = (
        same
        and env_shape == tuple(observation_space.shape)
        and symmetries.obs_index.shape[1] == int(np.prod(observation_space.shape))
        and symmetries.action_map.shape[1] == int(action_space.n)
    )
    if fits:
        return symmetries
    if not needed:
        return None
    raise ValueError(
        "The env's board_symmetries do not match its observations or actions (a wrapper such as "
        "VecFrameStack, VecTransposeImage or an observation wrapper reshaped them, or the sub-envs "
        "differ). Pass "
        "learner_kwargs=dict(augment_symmetries=False), or give MuZero the board env unwrapped."
    )


def env_frame_stack(env: VecEnv | None, policy: MuZeroPolicy) -> tuple[int, int] | None:
    """``(frames, axis)`` where SB3's ``VecFrameStack`` stacks the observations ``policy`` sees
    (the axis as it is after any ``VecTransposeImage`` above the stacker), else None. A ValueError
    when a conv policy would find the frames side by side instead of in its channels.

    The replay stores each step's newest frame only and checks every step it is given, so a wrong
    guess here costs memory, never correctness.
    """
    observation_space = policy.observation_space
    transposed, wrapper = False, env
    while isinstance(wrapper, VecEnvWrapper) and not isinstance(wrapper, VecFrameStack):
        transposed = transposed or isinstance(wrapper, VecTransposeImage)
        wrapper = wrapper.venv
    stacked = getattr(wrapper, "stacked_obs", None) if isinstance(wrapper, VecFrameStack) else None
    shape = getattr(observation_space, "shape", None)
    if stacked is None or getattr(stacked, "repeat_axis", None) is None or not shape:
        return None
    axis = stacked.repeat_axis % len(shape)
    if transposed and len(shape) == 3:
        axis = (axis + 1) % 3  # (H, W, C) -> (C, H, W): the stacked channels become axis 0
    channels_last = getattr(policy, "channels_last", None)
    if channels_last is not None:
        inferred = getattr(policy, "requested_channels_last", None) is None and not is_vecenv_wrapped(
            env, VecTransposeImage
        )
        check_frame_stack_axis(axis, shape, channels_last, transposed=transposed, inferred=inferred)
    return int(stacked.n_stack), int(axis)

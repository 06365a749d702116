"""The shared evaluation protocol: every E env steps, N deterministic episodes on a separate env.

The clock that matters is training time: time spent inside evaluations is excluded, so an
algorithm whose ``predict`` is expensive (MuZero's search) is not charged for being measured.

One training run may be measured on several eval envs at once (a board-game learner against a
random and a minimax opponent): pass a ``{label: VecEnv}`` mapping and each record carries its
label. Board games pass ``use_masks=True`` so every model (MuZero, MaskablePPO) is handed the
legal-action masks, through sb3-contrib's maskable ``evaluate_policy``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from stable_baselines3.common.atari_wrappers import EpisodicLifeEnv
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization


@dataclass
class EvalRecord:
    env_steps: int
    wall_s: float
    eval_mean: float
    eval_std: float
    label: str = ""


@dataclass
class EvalHistory:
    records: list[EvalRecord] = field(default_factory=list)

    def first_reaching(self, threshold: float, label: str | None = None) -> EvalRecord | None:
        return next((r for r in self.of(label) if r.eval_mean >= threshold), None)

    def of(self, label: str | None) -> list[EvalRecord]:
        """Records of one eval env (all records when ``label`` is None)."""
        return [r for r in self.records if label is None or r.label == label]


class PeriodicEval(BaseCallback):
    """Evaluate every ``every`` env steps (whatever n_envs is); optionally stop at a threshold.

    ``eval_env`` should hold ``n_episodes`` envs so all episodes run as one batch (MuZero then
    searches them together); a ``{label: VecEnv}`` mapping evaluates on each. With
    ``final_eval`` the run also ends with an evaluation, so every run has a score at its budget.
    Observation normalization (VecNormalize) is copied to the eval envs before each evaluation.
    A stop threshold applies to the first eval env. With ``eval_seed``, every evaluation reseeds
    the eval envs with it (SB3's ``VecEnv.seed``: sub-env i gets ``eval_seed + i``), so each one
    plays the same episodes, whatever the evaluations before it played.
    """

    def __init__(
        self,
        eval_env: VecEnv | Mapping[str, VecEnv],
        every: int,
        n_episodes: int = 20,
        stop_threshold: float | None = None,
        history: EvalHistory | None = None,
        use_masks: bool = False,
        final_eval: bool = False,
        eval_seed: int | None = None,
    ) -> None:
        super().__init__()
        if every < 1:
            raise ValueError(f"PeriodicEval needs every >= 1 env steps, got {every}")
        self.eval_envs = dict(eval_env) if isinstance(eval_env, Mapping) else {"": eval_env}
        if not self.eval_envs:
            raise ValueError("PeriodicEval needs at least one eval env")
        self.eval_env = next(iter(self.eval_envs.values()))
        self.every, self.n_episodes = every, n_episodes
        self.stop_threshold = stop_threshold
        self.history = history if history is not None else EvalHistory()
        self.use_masks, self.final_eval, self.eval_seed = use_masks, final_eval, eval_seed
        self._next_eval = every
        self._eval_seconds = 0.0
        self._start = 0.0
        self._excluded_seconds = 0.0  # other seconds that are not training (see ``exclude``)
        self._seconds_before = 0.0  # seconds of earlier legs of a resumed run
        self._last_eval_step = -1

    def continue_from(self, env_steps: int, train_s: float, eval_s: float, excluded_s: float = 0.0) -> None:
        """Count on from a resumed run's checkpoint: ``train_s``, ``eval_s`` and ``excluded_s``
        seconds were spent before it, and its last evaluation was at ``env_steps`` (0: a fresh
        run, nothing to do)."""
        if env_steps > 0:
            self._seconds_before = train_s + eval_s + excluded_s
            self._eval_seconds, self._excluded_seconds = eval_s, excluded_s
            self._last_eval_step = env_steps

    def exclude(self, seconds: float) -> None:
        """Do not count ``seconds`` just spent (a checkpoint's writing) as training time."""
        self._excluded_seconds += seconds

    def excluded_seconds(self) -> float:
        return self._excluded_seconds

    def _on_training_start(self) -> None:
        self._start = time.perf_counter() - self._seconds_before
        self._next_eval = (self.num_timesteps // self.every + 1) * self.every

    def train_seconds(self) -> float:
        return time.perf_counter() - self._start - self._eval_seconds - self._excluded_seconds

    def eval_seconds(self) -> float:
        """Seconds spent in evaluations so far (excluded from ``train_seconds``)."""
        return self._eval_seconds

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        self._next_eval += self.every * max(1, (self.num_timesteps - self._next_eval) // self.every + 1)
        means = self._evaluate()
        return self.stop_threshold is None or means[0] < self.stop_threshold

    def _on_training_end(self) -> None:
        if self.final_eval and self._last_eval_step != self.num_timesteps:
            self._evaluate()

    def _evaluate(self) -> list[float]:
        """Evaluate on every eval env, record the results; returns the means in env order."""
        started = time.perf_counter()
        train_s = self.train_seconds()
        results = [(label, *self._evaluate_one(env)) for label, env in self.eval_envs.items()]
        self._eval_seconds += time.perf_counter() - started
        self._last_eval_step = self.num_timesteps
        for label, mean, std in results:
            self.history.records.append(EvalRecord(self.num_timesteps, train_s, mean, std, label))
            self.logger.record(f"eval/{label + '/' if label else ''}mean_reward", mean)
        return [mean for _, mean, _ in results]

    def _evaluate_one(self, env: VecEnv) -> tuple[float, float]:
        if self.eval_seed is not None:
            # SB3's EpisodicLifeEnv (Atari) resets for real only after a game over; a game left
            # running by the last evaluation would ignore the seed
            for index, episodic in enumerate(env.env_is_wrapped(EpisodicLifeEnv)):
                if episodic:
                    env.env_method("set_wrapper_attr", "was_real_done", True, indices=index)
            env.seed(self.eval_seed)  # the reset that starts the evaluation takes it
        if self.model.get_vec_normalize_env() is not None:
            sync_envs_normalization(self.training_env, env)
        if self.use_masks:
            from sb3_contrib.common.maskable.evaluation import evaluate_policy as evaluate_masked

            mean, std = evaluate_masked(self.model, env, n_eval_episodes=self.n_episodes, deterministic=True)
        else:
            mean, std = evaluate_policy(self.model, env, n_eval_episodes=self.n_episodes, deterministic=True)
        return float(mean), float(std)


class StepBudget(BaseCallback):
    """Stop training once ``budget`` env steps are collected, so no algorithm sees more than the others.

    SB3's on-policy algorithms otherwise finish their last rollout (PPO on 8 envs x 32 steps
    overshoots by up to 255 steps); stopped here, that partial rollout is dropped untrained.
    """

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget

    def _on_step(self) -> bool:
        return self.num_timesteps < self.budget

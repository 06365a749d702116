"""The shared evaluation protocol: every E env steps, N deterministic episodes on a separate env.

The clock that matters is training time: time spent inside evaluations is excluded, so an
algorithm whose ``predict`` is expensive (MuZero's search) is not charged for being measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv


@dataclass
class EvalRecord:
    env_steps: int
    wall_s: float
    eval_mean: float
    eval_std: float


@dataclass
class EvalHistory:
    records: list[EvalRecord] = field(default_factory=list)

    def first_reaching(self, threshold: float) -> EvalRecord | None:
        return next((r for r in self.records if r.eval_mean >= threshold), None)


class PeriodicEval(BaseCallback):
    """Evaluate every ``every`` env steps (whatever n_envs is); optionally stop at a threshold.

    ``eval_env`` should hold ``n_episodes`` envs so all episodes run as one batch (MuZero then
    searches them together).
    """

    def __init__(self, eval_env: VecEnv, every: int, n_episodes: int = 20,
                 stop_threshold: float | None = None, history: EvalHistory | None = None) -> None:
        super().__init__()
        self.eval_env, self.every, self.n_episodes = eval_env, every, n_episodes
        self.stop_threshold = stop_threshold
        self.history = history if history is not None else EvalHistory()
        self._next_eval = every
        self._eval_seconds = 0.0
        self._start = 0.0

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._next_eval = (self.num_timesteps // self.every + 1) * self.every

    def train_seconds(self) -> float:
        return time.perf_counter() - self._start - self._eval_seconds

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next_eval:
            return True
        self._next_eval += self.every
        started = time.perf_counter()
        mean, std = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.n_episodes, deterministic=True)
        self._eval_seconds += time.perf_counter() - started
        self.history.records.append(EvalRecord(self.num_timesteps, self.train_seconds(), float(mean), float(std)))
        self.logger.record("eval/mean_reward", float(mean))
        return self.stop_threshold is None or mean < self.stop_threshold

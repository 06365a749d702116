"""Aggregate statistics for few-seed RL results, after Agarwal et al. (2021), "Deep RL at the Edge
of the Statistical Precipice": the interquartile mean and stratified bootstrap confidence intervals.

IQM: the mean of the middle 50% of the scores. With n scores we take the empirical distribution
(each score carries mass 1/n) and average its quantile function over [0.25, 0.75]: scores that
straddle a quartile count with the fraction of their mass inside. When 4 divides n this is the
plain 25%-trimmed mean (what ``scipy.stats.trim_mean(x, 0.25)`` gives); for 3 seeds it weighs
the scores 1/6, 2/3, 1/6 instead of falling back to the plain mean.

Stratified bootstrap: resample runs with replacement within each task (stratum) separately,
keeping each task's number of runs, recompute the statistic on the pooled resample, and read
the percentile interval. Stratifying keeps every task represented in every resample, which
matters when a few tasks with different score scales are aggregated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]


def iqm(scores: np.ndarray | Sequence[float], axis: int = -1) -> np.ndarray | float:
    """Interquartile mean along ``axis`` (a float for 1-D input)."""
    values = np.sort(np.asarray(scores, dtype=float), axis=axis)
    n = values.shape[axis]
    if n == 0:
        raise ValueError("iqm of an empty set of scores")
    weights = _quantile_weights(n, 0.25, 0.75)
    shape = [1] * values.ndim
    shape[axis] = n
    result = np.sum(values * weights.reshape(shape), axis=axis)
    return float(result) if np.ndim(result) == 0 else result


def _quantile_weights(n: int, lower: float, upper: float) -> np.ndarray:
    """Weight of each sorted score: its mass inside [lower, upper], renormalized to sum to 1."""
    starts = np.arange(n) / n
    ends = (np.arange(n) + 1) / n
    overlap = np.clip(np.minimum(ends, upper) - np.maximum(starts, lower), 0.0, None)
    return overlap / (upper - lower)


def mean(scores: np.ndarray, axis: int = -1) -> np.ndarray | float:
    return np.mean(scores, axis=axis)


def stratified_bootstrap(
    scores_per_task: Sequence[Sequence[float]], statistic: Statistic = iqm, reps: int = 2_000, seed: int = 0
) -> np.ndarray:
    """``reps`` bootstrap replicates of ``statistic`` (applied along the last axis of the pooled runs).

    :param scores_per_task: one sequence of run scores per task; tasks may have different counts.
    """
    tasks = [np.asarray(task, dtype=float) for task in scores_per_task]
    if not tasks or any(task.size == 0 for task in tasks):
        raise ValueError("stratified_bootstrap needs at least one score in every task")
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    rng = np.random.default_rng(seed)
    resampled = [task[rng.integers(0, task.size, size=(reps, task.size))] for task in tasks]
    return np.asarray(statistic(np.concatenate(resampled, axis=1), axis=-1))


def confidence_interval(
    scores_per_task: Sequence[Sequence[float]],
    statistic: Statistic = iqm,
    confidence: float = 0.95,
    reps: int = 2_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the stratified bootstrap distribution of ``statistic``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    replicates = stratified_bootstrap(scores_per_task, statistic, reps, seed)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(replicates, [tail, 100.0 - tail])
    return float(low), float(high)


def point_and_interval(
    scores_per_task: Sequence[Sequence[float]],
    statistic: Statistic = iqm,
    confidence: float = 0.95,
    reps: int = 2_000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """(statistic of all runs pooled, interval low, interval high)."""
    pooled = np.concatenate([np.asarray(task, dtype=float) for task in scores_per_task])
    point = float(statistic(pooled, axis=-1))
    low, high = confidence_interval(scores_per_task, statistic, confidence, reps, seed)
    return point, low, high


def normalize(scores: np.ndarray | Sequence[float], low: float, high: float) -> np.ndarray:
    """Scores rescaled so that ``low`` (random play) is 0 and ``high`` (solved) is 1."""
    if high == low:
        raise ValueError("normalize needs distinct low and high reference scores")
    return (np.asarray(scores, dtype=float) - low) / (high - low)

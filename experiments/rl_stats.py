"""Aggregate metrics with bootstrap confidence intervals for few-run RL comparisons
(Agarwal et al. 2021, "Deep RL at the Edge of the Statistical Precipice", NeurIPS).

Scores are arrays ``[runs, tasks]`` (normalised, so tasks are comparable). Point estimates
follow ``rliable.metrics`` exactly (the tests check against it when it is installed):

- mean: mean over tasks of the per-task mean over runs;
- median: median over tasks of the per-task mean over runs;
- IQM: interquartile mean of all ``runs x tasks`` scores (trim 25% at each end, as
  ``scipy.stats.trim_mean(x, 0.25)``: ``floor(0.25 n)`` values cut from each side);
- optimality gap: ``gamma - mean(min(score, gamma))``.

Intervals: the stratified bootstrap (resample runs with replacement, independently within
each task) with percentile intervals, vectorised over replicates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = [
    "AGGREGATES",
    "bootstrap_mean_ci",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "performance_profile",
    "stratified_bootstrap_ci",
]


def _check(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or 0 in scores.shape:
        raise ValueError(f"scores must be a non-empty array [runs, tasks], got shape {scores.shape}")
    return scores


def mean(scores: np.ndarray) -> float:
    """Mean over tasks of the per-task mean score."""
    return float(np.mean(np.mean(_check(scores), axis=0)))


def median(scores: np.ndarray) -> float:
    """Median over tasks of the per-task mean score."""
    return float(np.median(np.mean(_check(scores), axis=0)))


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores (25% trimmed from each end)."""
    flat = np.sort(_check(scores), axis=None)
    cut = int(0.25 * flat.size)
    return float(np.mean(flat[cut : flat.size - cut]))


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> float:
    """How far the scores fall short of ``gamma`` on average (above-``gamma`` scores count as ``gamma``)."""
    return float(gamma - np.mean(np.minimum(_check(scores), gamma)))


AGGREGATES: dict[str, Callable[[np.ndarray], float]] = {
    "IQM": iqm,
    "median": median,
    "mean": mean,
    "optimality gap": optimality_gap,
}


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)


def stratified_bootstrap_ci(
    scores: np.ndarray,
    fn: Callable[[np.ndarray], float],
    reps: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile interval of ``fn`` under the stratified bootstrap of ``scores [runs, tasks]``."""
    scores = _check(scores)
    rng = np.random.default_rng(0) if rng is None else rng
    runs, tasks = scores.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = np.take_along_axis(np.broadcast_to(scores, (reps, runs, tasks)), idx, axis=1)
    values = np.array([fn(sample) for sample in resampled])
    return _percentiles(values, confidence)


def bootstrap_mean_ci(
    values: np.ndarray, reps: int = 2000, confidence: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the mean over seeds, for ``values [seeds, ...]`` (each trailing
    position separately, e.g. every point of a curve). Returns ``(low, high)`` of shape ``[...]``."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim < 1 or values.shape[0] == 0:
        raise ValueError("bootstrap_mean_ci needs at least one seed")
    rng = np.random.default_rng(0) if rng is None else rng
    n = values.shape[0]
    idx = rng.integers(0, n, size=(reps, n))
    means = values[idx].mean(axis=1)  # [reps, ...]
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail], axis=0)
    return lo, hi


def bootstrap_difference_ci(
    a: np.ndarray, b: np.ndarray, reps: int = 2000, confidence: float = 0.95, rng: np.random.Generator | None = None
) -> tuple[float, float]:
    """Percentile interval of ``mean(a) - mean(b)`` for two independent groups of seeds
    (``a [seeds_a]``, ``b [seeds_b]``): each group is resampled with replacement on its own,
    as for two agents run on different seeds."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.size == 0 or b.size == 0:
        raise ValueError(f"bootstrap_difference_ci needs two non-empty 1-d arrays, got shapes {a.shape}, {b.shape}")
    rng = np.random.default_rng(0) if rng is None else rng
    diffs = a[rng.integers(0, a.size, size=(reps, a.size))].mean(1) - b[rng.integers(0, b.size, size=(reps, b.size))].mean(1)
    return _percentiles(diffs, confidence)


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Fraction of all runs (over tasks) scoring above each threshold ``tau``: ``[len(taus)]``."""
    scores = _check(scores)
    return np.array([np.mean(scores > tau) for tau in np.asarray(taus, dtype=np.float64)])

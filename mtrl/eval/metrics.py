"""Per-task normalisation and aggregate statistics over tasks.

Normalised score of a task: human-normalised score (HNS) for Atari, ``return / max_score`` for
tasks with a known maximum (DMC: 1000, text games: their maximum score). Tasks with neither
(classic control) have no normalised score and are left out of aggregates, said in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mtrl.envs.registry import get_task
from mtrl.envs.spec import TaskSpec


def human_normalized(score: float, random: float, human: float) -> float:
    """HNS = (score - random) / (human - random), the DQN Zoo / rliable definition."""
    return (score - random) / (human - random)


def normalization_kind(spec: TaskSpec) -> str | None:
    """``"hns"``, ``"max"`` or ``None``: how a task's return is put on a common scale."""
    if spec.random_score is not None and spec.human_score is not None:
        return "hns"
    if spec.max_score:
        return "max"
    return None


def normalized_score(spec: TaskSpec, score: float) -> float | None:
    """The task's score on the common scale, or ``None`` when the task has none."""
    kind = normalization_kind(spec)
    if kind == "hns":
        return human_normalized(score, spec.random_score, spec.human_score)  # type: ignore[arg-type]
    if kind == "max":
        return score / spec.max_score  # type: ignore[operator]
    return None


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: drop the lowest and highest 25 % and average the rest.

    Same trimming rule as ``scipy.stats.trim_mean(x, 0.25)`` (what rliable uses): ``int(0.25 n)``
    values are cut from each end.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if x.size == 0:
        raise ValueError("IQM of no values")
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


def optimality_gap(values: Sequence[float] | np.ndarray, gamma: float = 1.0) -> float:
    """Mean shortfall below ``gamma`` (rliable's definition; scores above it count as gamma)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    return float(np.mean(gamma - np.minimum(x, gamma)))


def aggregate(name: str, scores: np.ndarray) -> float:
    """rliable's aggregates of a ``[runs, tasks]`` score matrix.

    mean / median: of the per-task means; IQM and optimality gap: over all runs of all tasks.
    """
    if name == "mean":
        return float(np.mean(scores.mean(axis=0)))
    if name == "median":
        return float(np.median(scores.mean(axis=0)))
    if name == "iqm":
        return iqm(scores)
    if name == "optimality_gap":
        return optimality_gap(scores)
    raise ValueError(f"unknown aggregate {name!r}; valid: {', '.join(AGGREGATES)}")


AGGREGATES = ("mean", "median", "iqm", "optimality_gap")


def _replicate_values(name: str, resampled: np.ndarray) -> np.ndarray:
    """``aggregate(name, r)`` of every ``r`` in ``resampled [reps, runs, tasks]``, in one pass."""
    reps = resampled.shape[0]
    if name in ("mean", "median"):
        task_means = resampled.mean(axis=1)
        return task_means.mean(axis=1) if name == "mean" else np.median(task_means, axis=1)
    flat = resampled.reshape(reps, -1)
    if name == "iqm":
        cut = int(0.25 * flat.shape[1])  # iqm()'s trimming rule
        return np.sort(flat, axis=1)[:, cut : flat.shape[1] - cut].mean(axis=1)
    if name == "optimality_gap":
        return np.mean(1.0 - np.minimum(flat, 1.0), axis=1)
    raise ValueError(f"unknown aggregate {name!r}; valid: {', '.join(AGGREGATES)}")


def stratified_bootstrap(
    scores: np.ndarray, name: str, reps: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Point estimate and percentile CI of an aggregate, resampling runs within each task.

    The stratified bootstrap of rliable (Agarwal et al. 2021): each replicate draws, for every
    task independently, as many runs as it has, with replacement. mtrl.eval does not import
    rliable (it pulls pandas < 3, arch and seaborn); tests/eval/test_ev_metrics.py checks these
    numbers against rliable 1.2.0's on fixed data.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.size == 0:
        raise ValueError(f"scores must be a non-empty [runs, tasks] matrix, got {scores.shape}")
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, runs, size=(reps, runs, tasks))
    values = _replicate_values(name, scores[picks, np.arange(tasks)])
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return aggregate(name, scores), float(low), float(high)


def task_stats(values: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """Mean, sample std and the Student-t confidence interval of the mean of one task."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "std": 0.0, "ci_low": mean, "ci_high": mean}
    from scipy.stats import t

    std = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, x.size - 1)) * std / np.sqrt(x.size)
    return {"mean": mean, "std": std, "ci_low": float(mean - half), "ci_high": float(mean + half)}


def _task_means(returns_by_task: Mapping[str, float | Sequence[float]]) -> dict[str, float]:
    return {t: float(np.mean(np.asarray(r, dtype=np.float64))) for t, r in returns_by_task.items()}


def aggregate_scalars(returns_by_task: Mapping[str, float | Sequence[float]]) -> dict[str, float]:
    """TensorBoard aggregates for one point of a run, keyed by their tag.

    ``returns_by_task`` maps task ids to a return or a list of episode returns (averaged per
    task). Gives ``aggregate/hns_mean|hns_median|hns_iqm`` over the Atari tasks present and
    ``aggregate/normalized_mean`` over every task with a normalised score; a key is missing when
    no task feeds it, so a run without Atari logs no HNS curve rather than a fake zero.
    """
    hns: list[float] = []
    normalized: list[float] = []
    for task_id, mean in _task_means(returns_by_task).items():
        spec = get_task(task_id)
        value = normalized_score(spec, mean)
        if value is None:
            continue
        normalized.append(value)
        if normalization_kind(spec) == "hns":
            hns.append(value)
    out: dict[str, float] = {}
    if hns:
        out["aggregate/hns_mean"] = float(np.mean(hns))
        out["aggregate/hns_median"] = float(np.median(hns))
        out["aggregate/hns_iqm"] = iqm(hns)
    if normalized:
        out["aggregate/normalized_mean"] = float(np.mean(normalized))
    return out

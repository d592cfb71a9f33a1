"""Per-task statistics, baselines and aggregates of one evaluation, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mtrl.envs.registry import get_task
from mtrl.eval.baselines import Baseline, resolve_baseline
from mtrl.eval.metrics import (
    AGGREGATES,
    normalization_kind,
    normalized_score,
    stratified_bootstrap,
    task_stats,
)

CSV_COLUMNS = (
    "task",
    "episodes",
    "mean",
    "std",
    "ci95_low",
    "ci95_high",
    "baseline",
    "baseline_score",
    "ratio_to_baseline",
    "hns",
    "normalized_score",
    "baseline_source",
)


@dataclass(frozen=True)
class Episode:
    task: str
    seed: int
    index: int  # environment row of the task within its seed's batch
    episode_return: float


def _normalization_text(kind: str | None, max_score: float | None) -> str | None:
    if kind == "hns":
        return "HNS"
    return f"return / {max_score:g}" if kind == "max" and max_score else None


def task_row(task: str, episodes: list[Episode], baseline: Baseline | None) -> dict[str, Any]:
    returns = [e.episode_return for e in episodes]
    stats = task_stats(returns)
    spec = get_task(task)
    base = baseline.score if baseline else None
    ratio = stats["mean"] / base if base not in (None, 0.0) else None
    kind = normalization_kind(spec)
    return {
        "task": task,
        "episodes": len(returns),
        "mean": stats["mean"],
        "std": stats["std"],
        "ci95_low": stats["ci_low"],
        "ci95_high": stats["ci_high"],
        "baseline": baseline.name if baseline else None,
        "baseline_score": base,
        "ratio_to_baseline": ratio,
        "hns": normalized_score(spec, stats["mean"]) if kind == "hns" else None,
        "normalized_score": normalized_score(spec, stats["mean"]),
        "normalization": _normalization_text(kind, spec.max_score),
        "baseline_source": baseline.source if baseline else None,
        "episode_returns": returns,
        "episode_seeds": [e.seed for e in episodes],
    }


def _matrix(rows: list[dict[str, Any]]) -> np.ndarray:
    """Normalised episode scores as ``[runs, tasks]`` (every task has the same episode count)."""
    columns = [
        [normalized_score(get_task(r["task"]), x) for x in r["episode_returns"]] for r in rows
    ]
    return np.asarray(columns, dtype=np.float64).T


def aggregates(rows: list[dict[str, Any]], reps: int = 2000) -> dict[str, Any]:
    """HNS (Atari) and normalised-score aggregates with stratified bootstrap 95% CIs."""
    groups = {
        "hns": [r for r in rows if r["hns"] is not None],
        "normalized": [r for r in rows if r["normalized_score"] is not None],
    }
    out: dict[str, Any] = {}
    for group, members in groups.items():
        if not members:
            continue
        scores = _matrix(members)
        out[group] = {
            "tasks": [r["task"] for r in members],
            **{
                name: dict(
                    zip(
                        ("point", "ci95_low", "ci95_high"),
                        stratified_bootstrap(scores, name, reps),
                        strict=True,
                    )
                )
                for name in AGGREGATES
            },
        }
    return out


def build_results(
    episodes: list[Episode], chosen: dict[str, Baseline], meta: dict[str, Any]
) -> dict[str, Any]:
    """Everything ``results.json`` holds; ``meta`` says what was evaluated and how."""
    tasks = list(dict.fromkeys(e.task for e in episodes))
    rows = [
        task_row(t, [e for e in episodes if e.task == t], resolve_baseline(t, chosen))
        for t in tasks
    ]
    left_out = [r["task"] for r in rows if r["normalized_score"] is None]
    return {**meta, "tasks": rows, "aggregates": aggregates(rows), "not_in_aggregates": left_out}

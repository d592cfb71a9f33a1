"""PNG plots of an evaluation: per-task returns against the baseline, aggregates with CIs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # after choosing the backend

LABELS = {"mean": "Mean", "median": "Median", "iqm": "IQM", "optimality_gap": "Optimality gap"}
GROUPS = {"hns": "human-normalised score (Atari)", "normalized": "normalised score (all tasks)"}


def plot_tasks(rows: list[dict[str, Any]], path: Path) -> Path:
    """One panel per task: this checkpoint's mean return (95% CI) next to its baseline."""
    cols = min(4, len(rows))
    lines = math.ceil(len(rows) / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(3.0 * cols, 2.6 * lines), squeeze=False)
    for ax, row in zip(axes.flat, rows, strict=False):
        error = [[row["mean"] - row["ci95_low"]], [row["ci95_high"] - row["mean"]]]
        ax.bar([0], [row["mean"]], yerr=error, color="tab:blue", capsize=4)
        if row["baseline_score"] is not None:
            ax.bar([1], [row["baseline_score"]], color="tab:gray")
        ax.set_xticks([0, 1], ["this", _short(row["baseline"] or "no baseline")], fontsize=7)
        ax.set_title(row["task"], fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(rows) :]:
        ax.axis("off")
    fig.suptitle("mean return per task (error bar: 95% CI over episodes) vs baseline", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _short(name: str) -> str:
    return name if len(name) <= 14 else name[:13] + "…"


def plot_aggregates(aggregates: dict[str, Any], path: Path) -> Path | None:
    """rliable-style interval estimates: point and stratified bootstrap 95% CI per metric."""
    if not aggregates:
        return None
    groups = list(aggregates)
    fig, axes = plt.subplots(
        len(groups),
        len(LABELS),
        figsize=(2.6 * len(LABELS), 1.3 * len(groups) + 0.6),
        squeeze=False,
    )
    for g, group in enumerate(groups):
        for m, (metric, label) in enumerate(LABELS.items()):
            ax, est = axes[g][m], aggregates[group][metric]
            ax.plot([est["ci95_low"], est["ci95_high"]], [0, 0], lw=8, alpha=0.5, color=f"C{g}")
            ax.plot([est["point"]], [0], "k|", ms=14)
            ax.set_yticks([0], [GROUPS[group]] if m == 0 else [""], fontsize=7)
            ax.set_title(label if g == 0 else "", fontsize=9)
            ax.tick_params(axis="x", labelsize=7)
            ax.margins(x=0.3)
    fig.suptitle("aggregates with stratified bootstrap 95% CIs", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path

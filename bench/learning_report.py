"""The learning benchmark's report: per-seed results of multi-task and single-task runs, read
from the ``result.json`` every run writes into its folder, put on one scale, aggregated over
seeds with confidence intervals, and drawn.

Folder layout (``bench/learning.py run`` makes it): ``OUT/multi/seed<S>/``,
``OUT/single-steps/<task>/seed<S>/`` (each task alone for the multi-task run's per-task env
steps) and ``OUT/single-time/<task>/seed<S>/`` (alone for the same wall time). Any folder
holding a ``result.json`` below those is a run.

Statistics are over runs (seeds), never over evaluation episodes: a seed's score on a task is
the mean return of its last evaluation. Aggregates are ``mtrl.eval.metrics``' (IQM and mean
with rliable's stratified bootstrap). The multi/single ratio of a task is the ratio of the
seed means, its CI a bootstrap that resamples the seeds of each side independently.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from machine import gflops_range

from mtrl.envs.registry import get_task
from mtrl.eval.metrics import normalized_score, stratified_bootstrap
from mtrl.runtime.results import RESULT_NAME

MODES = ("multi", "single-steps", "single-time")
Runs = Mapping[str, Mapping[str, list[dict[str, Any]]]]  # {mode: {task or "all": [records]}}


@dataclass(frozen=True)
class Bar:
    """What a task must hold at the last evaluation: a mean return of at least ``value``
    (``"mean"``), or that share of evaluation episodes reaching ``value`` (``"solved"``)."""

    value: float
    kind: str = "mean"
    share: float = 0.8

    def held(self, episodes: list[float]) -> bool:
        x = np.asarray(episodes, dtype=np.float64)
        if self.kind == "solved":
            return bool(np.mean(x >= self.value) >= self.share)
        return bool(x.mean() >= self.value)


def task_folder(task: str) -> str:
    return task.replace("/", "_")


def load_runs(out: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``{mode: {task or "all": [run records, by seed]}}``; a multi-task run is under "all"."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for mode in MODES:
        for path in sorted((out / mode).glob(f"**/{RESULT_NAME}")):
            record = json.loads(path.read_text())
            record["seed"] = int(record["config"]["seed"])
            record["path"] = str(path.parent)
            tasks = record["config"]["tasks"]
            key = "all" if mode == "multi" else tasks[0]
            runs.setdefault(mode, {}).setdefault(key, []).append(record)
    if "multi" not in runs:
        raise SystemExit(f"no multi-task run (multi/**/result.json) under {out}")
    return runs


def last_episodes(record: dict[str, Any], task: str) -> list[float]:
    """The last evaluation's episode returns of ``task`` (the run's final score)."""
    for evaluation in reversed(record["evaluations"]):
        if task in evaluation["episodes"]:
            return [float(r) for r in evaluation["episodes"][task]]
    raise ValueError(f"{record['path']}: no evaluation of {task}")


def final_scores(records: list[dict[str, Any]], task: str) -> np.ndarray:
    """One score per seed: the mean return of the last evaluation."""
    return np.array([np.mean(last_episodes(r, task)) for r in records])


def scale(task: str, single_mean: float | None) -> tuple[str, Any]:
    """How a task's return goes on the common scale, as (description, function): the task's
    normalised score where it has one (HNS, or return / maximum), else return / its solved
    threshold, else (return - random) / (single-task mean - random), which needs a single-task
    mean above random (without one the task has no scale: it stays out of the aggregates)."""
    spec = get_task(task)
    if normalized_score(spec, 1.0) is not None:
        return "mtrl.eval normalised score", lambda r: normalized_score(spec, r)
    if spec.target_score:
        return f"return / {spec.target_score:g} (solved threshold)", lambda r: r / spec.target_score
    low = spec.random_score
    if low is not None and single_mean is not None and single_mean > low:
        return (
            "(return - random) / (single-task - random)",
            lambda r: (r - low) / (single_mean - low),
        )
    return "none", None


def two_sample_ci(
    a: np.ndarray, b: np.ndarray, how: str = "ratio", reps: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a) / mean(b) (``how="ratio"``) or mean(a) - mean(b) (``"difference"``), with a 95 %
    percentile CI from a bootstrap that resamples each side's seeds independently."""
    rng = np.random.default_rng(seed)
    m = a[rng.integers(0, a.size, (reps, a.size))].mean(axis=1)
    s = b[rng.integers(0, b.size, (reps, b.size))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = m / s if how == "ratio" else m - s
    low, high = np.nanpercentile(values, [2.5, 97.5])
    point = a.mean() / b.mean() if how == "ratio" else a.mean() - b.mean()
    return float(point), float(low), float(high)


def compare(first: Runs, second: Runs) -> str:
    """Two configurations' multi-task runs (e.g. SAM and no SAM, at equal wall time): per task
    each one's mean final return over seeds and their difference with its CI."""
    a, b = first["multi"]["all"], second["multi"]["all"]
    lines = [
        f"| task | first ({len(a)} seeds) | second ({len(b)} seeds) | first - second [95% CI] |"
    ]
    lines.append("|---|---|---|---|")
    for task in a[0]["config"]["tasks"]:
        x, y = final_scores(a, task), final_scores(b, task)
        diff, low, high = two_sample_ci(x, y, "difference")
        lines.append(
            f"| {task} | {x.mean():.1f} | {y.mean():.1f} | {diff:+.1f} [{low:+.1f}, {high:+.1f}] |"
        )
    return "\n".join(lines)


def summarise(runs: Runs, bars: Mapping[str, Bar]) -> dict[str, Any]:
    """Everything the report states, as plain numbers (written as report.json)."""
    multi = runs["multi"]["all"]
    tasks = multi[0]["config"]["tasks"]
    report: dict[str, Any] = {"tasks": tasks, "seeds": [r["seed"] for r in multi], "per_task": {}}
    report["multi_runs"] = [
        {
            "seed": r["seed"],
            "env_steps": r["env_steps"],
            "updates": r["updates"],
            "seconds": r["seconds"],
            "box_gflops": gflops_range(Path(r["path"])),
            "final": {t: float(np.mean(last_episodes(r, t))) for t in tasks},
            "held": {t: bars[t].held(last_episodes(r, t)) for t in tasks if t in bars},
        }
        for r in multi
    ]
    if bars:
        held_all = [all(run["held"].values()) for run in report["multi_runs"]]
        report["seeds_holding_every_bar"] = int(sum(held_all))
    normalised: dict[str, dict[str, np.ndarray]] = {}
    for task in tasks:
        entry: dict[str, Any] = {
            "multi": final_scores(multi, task).tolist(),
            "random": get_task(task).random_score,
            "bar": bars[task].value if task in bars else None,
        }
        for mode in ("single-steps", "single-time"):
            records = runs.get(mode, {}).get(task)
            if not records:
                continue
            entry[mode] = final_scores(records, task).tolist()
            ratio = two_sample_ci(final_scores(multi, task), np.array(entry[mode]))
            entry[f"ratio_{mode}"] = ratio
        single = entry.get("single-steps")
        how, fn = scale(task, float(np.mean(single)) if single else None)
        entry["scale"] = how
        if fn is not None:
            for mode in ("multi", "single-steps", "single-time"):
                if mode in entry:
                    values = np.array([fn(r) for r in entry[mode]], dtype=np.float64)
                    normalised.setdefault(mode, {})[task] = values
        report["per_task"][task] = entry
    report["aggregates"] = aggregates(normalised)
    return report


def aggregates(normalised: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    """IQM and mean of normalised scores with 95 % stratified-bootstrap CIs, per mode, over
    the tasks every run of that mode has (seeds as rows; missing seeds make it ragged, so the
    rows are the fewest seeds any task has)."""
    out: dict[str, Any] = {}
    for mode, by_task in normalised.items():
        if not by_task:
            continue
        runs = min(v.size for v in by_task.values())
        matrix = np.stack([v[:runs] for v in by_task.values()], axis=1)  # [seeds, tasks]
        out[mode] = {
            "tasks": list(by_task),
            "seeds": runs,
            **{name: stratified_bootstrap(matrix, name) for name in ("iqm", "mean")},
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    """The tables for bench/learning.md: every seed, then per task, then the aggregates."""
    tasks = report["tasks"]
    head = "| seed | env steps | updates | min | box GFLOP/s | "
    lines = [head + " | ".join(tasks) + " | all bars |", "|" + "---|" * (len(tasks) + 6)]
    for run in report["multi_runs"]:
        cells = [f"{run['final'][t]:.1f}" + (" ✓" if run["held"].get(t) else "") for t in tasks]
        every = all(run["held"].values()) if run["held"] else None
        lines.append(
            f"| {run['seed']} | {run['env_steps']:,} | {run['updates']:,} | "
            f"{run['seconds'] / 60:.1f} | {_speed(run.get('box_gflops'))} | "
            + " | ".join(cells)
            + f" | {_yes(every)} |"
        )
    lines += [
        "",
        "| task | random | bar | multi (mean of seeds) | single, equal steps | "
        "multi/single [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for task, entry in report["per_task"].items():
        single, ratio = entry.get("single-steps"), entry.get("ratio_single-steps")
        cells = [
            _number(entry.get("random")),
            _number(entry.get("bar")),
            _number(np.mean(entry["multi"])),
            _number(np.mean(single) if single else None),
            f"{ratio[0]:.2f} [{ratio[1]:.2f}, {ratio[2]:.2f}]" if ratio else "-",
        ]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    lines += ["", "| runs | seeds | IQM [95% CI] | mean [95% CI] |", "|---|---|---|---|"]
    for mode, agg in report["aggregates"].items():
        iqm, mean = agg["iqm"], agg["mean"]
        lines.append(
            f"| {mode} | {agg['seeds']} | {iqm[0]:.2f} [{iqm[1]:.2f}, {iqm[2]:.2f}] | "
            f"{mean[0]:.2f} [{mean[1]:.2f}, {mean[2]:.2f}] |"
        )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def _speed(gflops: Sequence[float] | None) -> str:
    """A run's matmul throughput, slowest-fastest (``bench/machine.py``); "-": not recorded."""
    if not gflops:
        return "-"
    low, high = gflops
    return f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("**yes**" if value else "no")


def plot(runs: Runs, bars: Mapping[str, Bar], path: Path) -> None:
    """Per task (columns), for the multi-task runs and each single-task mode: evaluation
    returns against env steps of that task (top) and training returns, the mean of the last
    10 episodes, against wall time (bottom); the mean over seeds as a line, the range over
    seeds as a band, the bar as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    multi = runs["multi"]["all"]
    tasks = multi[0]["config"]["tasks"]
    fig, axes = plt.subplots(2, len(tasks), figsize=(5 * len(tasks), 7), squeeze=False)
    for column, task in enumerate(tasks):
        # A one-task launcher (launch/dmc100k.py) is the "multi" side of its own benchmark.
        label = "multi-task" if len(tasks) > 1 else "single-task (launcher)"
        sides = [(label, multi, len(tasks), "C0")]
        for i, mode in enumerate(("single-steps", "single-time")):
            if runs.get(mode, {}).get(task):
                sides.append((f"single ({mode[7:]})", runs[mode][task], 1, f"C{i + 1}"))
        top, bottom = axes[0][column], axes[1][column]
        for label, records, share, color in sides:
            name = f"{label}, {len(records)} seeds"
            steps, mean, low, high = band(records, task, share)
            top.plot(steps, mean, color=color, marker="o", markersize=3, label=name)
            top.fill_between(steps, low, high, color=color, alpha=0.2)
            minutes, mean, low, high = training_band(records, task)
            bottom.plot(minutes, mean, color=color, label=name)
            bottom.fill_between(minutes, low, high, color=color, alpha=0.2)
        for ax, x, y in ((top, "env steps of this task", "evaluation return"),
                         (bottom, "wall time (min)", "training return (last 10)")):  # fmt: skip
            if task in bars:
                ax.axhline(bars[task].value, color="grey", linestyle="--", linewidth=1)
            ax.set_title(task)
            ax.set_xlabel(x)
            ax.set_ylabel(y)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def training_band(
    records: list[dict[str, Any]], task: str, window: int = 10, points: int = 200
) -> tuple[np.ndarray, ...]:
    """Seeds' training returns (the mean of the last ``window`` episodes at each episode's
    end) on a common grid of wall minutes, where every seed has episodes (from the latest
    first episode to the shortest run): mean, min and max."""
    curves = []
    for record in records:
        ends = [(s / 60, r) for s, t, r in record["train_episodes"] if t == task]
        if not ends:
            continue
        minutes, returns = np.array(ends).T
        kernel = np.ones(window)
        means = (
            np.convolve(returns, kernel)[: returns.size]
            / np.convolve(np.ones_like(returns), kernel)[: returns.size]
        )
        curves.append((minutes, means))
    if not curves:
        return (np.zeros(0),) * 4
    grid = np.linspace(max(m[0] for m, _ in curves), min(m[-1] for m, _ in curves), points)
    values = np.stack([np.interp(grid, m, v) for m, v in curves])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def band(records: list[dict[str, Any]], task: str, share: int) -> tuple[np.ndarray, ...]:
    """Seeds' evaluation curves on a common grid of per-task env steps, up to the shortest
    run's last evaluation (each run's curve interpolated): mean, min and max over seeds."""
    curves = []
    for record in records:
        points = [(e["env_steps"] / share, e["returns"][task]) for e in record["evaluations"]]
        curves.append(np.array(sorted(points)))
    end = min(c[-1, 0] for c in curves)
    grid = np.unique(np.concatenate([c[:, 0] for c in curves]))
    grid = grid[grid <= end]
    values = np.stack([np.interp(grid, c[:, 0], c[:, 1]) for c in curves])
    return grid, values.mean(axis=0), values.min(axis=0), values.max(axis=0)

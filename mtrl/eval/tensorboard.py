"""The TensorBoard layout of a run (custom scalars) and the tag scheme it groups.

The runtime writes scalars under a fixed tag scheme (``TAGS``); ``write_layout`` writes, once per
run, a custom-scalars layout that groups them: per-suite return charts, aggregate curves,
gradient conflict, expert load per task, DPS stage, losses and throughput. The gradient-conflict
*image* (``gradients/conflict_matrix``) appears in TensorBoard's Images tab: custom scalars can
only chart scalars.

The layout is written with torch's ``SummaryWriter.add_custom_scalars`` (no TensorFlow needed).
Its layout format has no "closed" flag, so every category opens expanded; TensorBoard pages
long categories (the per-task expert-load and loss charts) rather than drawing them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from mtrl.eval.metrics import aggregate_scalars
from mtrl.run_folder import latest_checkpoint

__all__ = ["TAGS", "Layout", "aggregate_scalars", "build_layout", "write_layout"]

LAYOUT_SUFFIX = ".mtrl-layout"

# The tag scheme shared with the runtime; ``{task}`` is a task id such as ``atari/Pong``.
TAGS = {
    "return": "{task}/return",
    "episode_length": "{task}/episode_length",
    "eval_return": "{task}/eval_return",
    "expert_load": "{task}/expert_load/{k}",
    "loss": "loss/{name}",
    "task_loss": "loss/{task}/{name}",
    "mean_cosine": "gradients/mean_cosine",
    "conflict_matrix": "gradients/conflict_matrix",  # an image
    "dps_stage": "dps/stage",
    "dps_solved": "dps/solved_tasks",
    "throughput": "throughput/{name}",
    "aggregate": "aggregate/{name}",
}
AGGREGATE_TAGS = ("hns_mean", "hns_median", "hns_iqm", "normalized_mean")
THROUGHPUT_TAGS = ("env_steps_per_s", "searches_per_s", "updates_per_s", "samples_per_s")

# SummaryWriter.add_custom_scalars' format: {category: {chart: ["Multiline", [tag regexes]]}}.
Charts = dict[str, list]
Layout = dict[str, Charts]


def _chart(patterns: Iterable[str]) -> list:
    # Custom-scalar tags are regular expressions matched against the whole tag.
    return ["Multiline", list(patterns)]


def _exact(tag: str) -> str:
    return re.escape(tag)


def _by_suite(task_ids: Iterable[str]) -> dict[str, list[str]]:
    suites: dict[str, list[str]] = {}
    for task_id in task_ids:
        suite, sep, _ = task_id.partition("/")
        if not sep:
            raise ValueError(f"task id {task_id!r} is not of the form <suite>/<name>")
        suites.setdefault(suite, []).append(task_id)
    return suites


def _suite_charts(suite: str, tasks: list[str]) -> Charts:
    return {
        f"{suite}: {kind.replace('_', ' ')}": _chart(_exact(f"{t}/{kind}") for t in tasks)
        for kind in ("return", "eval_return", "episode_length")
    }


def _monitoring_categories(task_ids: list[str]) -> Layout:
    hns = [_exact(f"aggregate/{n}") for n in AGGREGATE_TAGS[:3]]
    return {
        "aggregate": {
            "HNS (Atari): mean, median, IQM": _chart(hns),
            "normalised return: mean": _chart([_exact("aggregate/normalized_mean")]),
        },
        "gradient conflict (matrix image: Images tab, gradients/conflict_matrix)": {
            "mean pairwise cosine": _chart([_exact(TAGS["mean_cosine"])]),
        },
        "MoE expert load per task": {
            t: _chart([_exact(f"{t}/expert_load/") + r"\d+"]) for t in task_ids
        },
        "DPS": {
            "stage": _chart([_exact(TAGS["dps_stage"])]),
            "solved tasks": _chart([_exact(TAGS["dps_solved"])]),
        },
    }


def _training_categories(task_ids: list[str]) -> Layout:
    losses = {"total losses": _chart([r"loss/[^/]+"])}
    losses |= {f"{t} losses": _chart([_exact(f"loss/{t}/") + r"[^/]+"]) for t in task_ids}
    throughput = {n.replace("_", " "): _chart([_exact(f"throughput/{n}")]) for n in THROUGHPUT_TAGS}
    return {"losses": losses, "throughput": throughput}


def build_layout(task_ids: Iterable[str]) -> Layout:
    """The custom-scalars layout for a run over ``task_ids`` (``<suite>/<name>`` each), in
    ``SummaryWriter.add_custom_scalars``' format; categories and charts keep this order."""
    tasks = list(dict.fromkeys(task_ids))
    if not tasks:
        raise ValueError("a TensorBoard layout needs at least one task id")
    layout = {f"returns / {s}": _suite_charts(s, ts) for s, ts in _by_suite(tasks).items()}
    return layout | _monitoring_categories(tasks) | _training_categories(tasks)


def _layout_files(logdir: Path) -> list[Path]:
    return sorted(logdir.glob(f"events.out.tfevents.*{LAYOUT_SUFFIX}"))


def write_layout(logdir: str | Path, task_ids: Iterable[str]) -> Path:
    """Write the layout as an event file in ``logdir`` (created if needed); return its path.

    Call once at run start, with the run's event files in the same ``logdir``. Earlier layout
    files written by this function in ``logdir`` are removed first (a resumed run with more tasks
    must not keep two layouts, which TensorBoard would merge).
    """
    layout = build_layout(task_ids)
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in _layout_files(logdir):
        old.unlink()
    # Its own file (the suffix), so a rewrite never touches the run's scalar events.
    writer = SummaryWriter(str(logdir), filename_suffix=LAYOUT_SUFFIX)
    try:
        writer.add_custom_scalars(layout)
    finally:
        writer.close()
    (path,) = _layout_files(logdir)  # the writer has no public name for its file
    return path


def ensure_layout(run_dir: Path) -> Path | None:
    """Write a layout into ``run_dir`` if it has none, from the tasks of its checkpoint."""
    existing = _layout_files(run_dir)
    if existing:
        return existing[-1]
    latest = latest_checkpoint(run_dir)
    if latest is None:
        return None  # TensorBoard still shows every scalar, without the grouped layout
    import torch

    tasks = torch.load(latest, map_location="cpu", weights_only=True).get("tasks")
    return write_layout(run_dir, tasks) if tasks else None

"""The TensorBoard layout of a run (custom scalars) and the tag scheme it groups.

The runtime writes scalars under a fixed tag scheme (``TAGS``); ``write_layout`` writes, once per
run, a custom-scalars layout that groups them: per-suite return charts, aggregate curves,
gradient conflict, expert load per task, DPS stage, losses and throughput. The gradient-conflict
*image* (``gradients/conflict_matrix``) appears in TensorBoard's Images tab: custom scalars can
only chart scalars.

Built with ``tensorboard``'s own protos, not ``tensorboard.summary.v1.custom_scalar_pb.pb``:
that helper imports TensorFlow, which mtrl does not depend on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from mtrl.eval.metrics import aggregate_scalars

__all__ = ["TAGS", "aggregate_scalars", "build_layout", "write_layout"]

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


def _chart(title: str, patterns: Iterable[str]) -> layout_pb2.Chart:
    # Custom-scalar tags are regular expressions matched against the whole tag.
    content = layout_pb2.MultilineChartContent(tag=list(patterns))
    return layout_pb2.Chart(title=title, multiline=content)


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


def _suite_category(suite: str, tasks: list[str]) -> layout_pb2.Category:
    charts = [
        _chart(f"{suite}: {kind.replace('_', ' ')}", [_exact(f"{t}/{kind}") for t in tasks])
        for kind in ("return", "eval_return", "episode_length")
    ]
    return layout_pb2.Category(title=f"returns / {suite}", chart=charts)


def _monitoring_categories(task_ids: list[str]) -> list[layout_pb2.Category]:
    aggregate = layout_pb2.Category(
        title="aggregate",
        chart=[
            _chart(
                "HNS (Atari): mean, median, IQM",
                [_exact(f"aggregate/{n}") for n in AGGREGATE_TAGS[:3]],
            ),
            _chart("normalised return: mean", [_exact("aggregate/normalized_mean")]),
        ],
    )
    gradients = layout_pb2.Category(
        title="gradient conflict (matrix image: Images tab, gradients/conflict_matrix)",
        chart=[_chart("mean pairwise cosine", [_exact(TAGS["mean_cosine"])])],
    )
    experts = layout_pb2.Category(
        title="MoE expert load per task",
        chart=[_chart(t, [_exact(f"{t}/expert_load/") + r"\d+"]) for t in task_ids],
        closed=True,
    )
    dps = layout_pb2.Category(
        title="DPS",
        chart=[
            _chart("stage", [_exact(TAGS["dps_stage"])]),
            _chart("solved tasks", [_exact(TAGS["dps_solved"])]),
        ],
    )
    return [aggregate, gradients, experts, dps]


def _training_categories(task_ids: list[str]) -> list[layout_pb2.Category]:
    losses = layout_pb2.Category(
        title="losses",
        chart=[_chart("total losses", [r"loss/[^/]+"])]
        + [_chart(f"{t} losses", [_exact(f"loss/{t}/") + r"[^/]+"]) for t in task_ids],
        closed=True,
    )
    throughput = layout_pb2.Category(
        title="throughput",
        chart=[_chart(n.replace("_", " "), [_exact(f"throughput/{n}")]) for n in THROUGHPUT_TAGS],
    )
    return [losses, throughput]


def build_layout(task_ids: Iterable[str]) -> layout_pb2.Layout:
    """The custom-scalars layout for a run over ``task_ids`` (``<suite>/<name>`` each)."""
    tasks = list(dict.fromkeys(task_ids))
    if not tasks:
        raise ValueError("a TensorBoard layout needs at least one task id")
    categories = [_suite_category(s, ts) for s, ts in _by_suite(tasks).items()]
    categories += _monitoring_categories(tasks) + _training_categories(tasks)
    return layout_pb2.Layout(category=categories)


def _layout_summary(layout: layout_pb2.Layout) -> summary_pb2.Summary:
    # The same summary that custom_scalar_pb.pb builds, without TensorFlow.
    tensor = tensor_pb2.TensorProto(
        dtype="DT_STRING",
        string_val=[layout.SerializeToString()],
        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
    )
    value = summary_pb2.Summary.Value(
        tag=metadata.CONFIG_SUMMARY_TAG, tensor=tensor, metadata=metadata.create_summary_metadata()
    )
    return summary_pb2.Summary(value=[value])


def write_layout(logdir: str | Path, task_ids: Iterable[str]) -> Path:
    """Write the layout as an event file in ``logdir`` (created if needed); return its path.

    Call once at run start, with the run's event files in the same ``logdir``. Earlier layout
    files written by this function in ``logdir`` are removed first (a resumed run with more tasks
    must not keep two layouts, which TensorBoard would merge).
    """
    layout = build_layout(task_ids)
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob(f"events.out.tfevents.*{LAYOUT_SUFFIX}"):
        old.unlink()
    writer = EventFileWriter(str(logdir), filename_suffix=LAYOUT_SUFFIX)
    writer.add_event(
        event_pb2.Event(wall_time=time.time(), step=0, summary=_layout_summary(layout))
    )
    writer.close()
    return Path(writer._file_name)  # the writer has no public name for it


def ensure_layout(run_dir: Path) -> Path | None:
    """Write a layout into ``run_dir`` if it has none, from the tasks of its checkpoint."""
    existing = sorted(run_dir.glob(f"events.out.tfevents.*{LAYOUT_SUFFIX}"))
    if existing:
        return existing[-1]
    found = sorted(run_dir.glob("checkpoints/ckpt-*.pt")) or sorted(run_dir.glob("checkpoint.pt"))
    if not found:
        return None  # TensorBoard still shows every scalar, without the grouped layout
    import torch

    tasks = torch.load(found[-1], map_location="cpu", weights_only=True).get("tasks")
    return write_layout(run_dir, tasks) if tasks else None

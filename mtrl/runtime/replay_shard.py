"""Replay shards (per-task ``TaskReplay``s, tasks split over shards) and replay snapshots.

A snapshot keeps a task's newest ``max_rows`` rows as tensors and plain lists (safe for
``torch.load(weights_only=True)``), renumbered to start at row 0 so that a restored replay
holds exactly those rows. Episodes still open when the snapshot was taken stay unfinished
(their newest row bootstraps like any unfinished episode); no restarted worker continues them.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch

from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.batch import TaskSet
from mtrl.runtime.transport import ReplaySlice, apply_records

log = logging.getLogger(__name__)
ARRAYS = (
    "obs",
    "action_index",
    "action_vector",
    "reward",
    "root_value",
    "policy",
    "sampled",
    "legal",
    "next_row",
    "is_last",
    "terminated",
    "priority",
)


def replay_snapshot(replay: TaskReplay, max_rows: int) -> dict[str, Any]:
    rows = min(len(replay), max_rows)
    shift = replay.total_added - rows
    slots = (shift + np.arange(rows)) % replay.config.capacity
    out: dict[str, Any] = {"task": replay.spec.id, "rows": rows}
    for name in ARRAYS:
        array = getattr(replay, name)
        picked = array[slots] if array.shape[0] else array
        if name == "next_row":
            picked = picked - shift
        out[name] = torch.from_numpy(np.ascontiguousarray(picked))
    if replay.text:
        out["text"] = [replay.text[s] for s in slots]
        out["commands"] = [list(replay.commands[s]) for s in slots]
    return out


def restore_snapshot(replay: TaskReplay, snapshot: dict[str, Any]) -> None:
    """Fill an empty ``replay`` with a snapshot (its newest rows if the capacity is smaller)."""
    if snapshot["task"] != replay.spec.id:
        raise ValueError(f"replay snapshot of {snapshot['task']} given to {replay.spec.id}")
    rows = int(snapshot["rows"])
    keep = min(rows, replay.config.capacity)
    drop = rows - keep
    for name in ARRAYS:
        array = getattr(replay, name)
        if not array.shape[0]:
            continue
        values = snapshot[name].numpy()[drop:]
        if values.shape[1:] != array.shape[1:]:
            raise ValueError(
                f"replay snapshot of {replay.spec.id}: {name} has shape {values.shape[1:]}, "
                f"this run stores {array.shape[1:]}"
            )
        array[:keep] = values - drop if name == "next_row" else values
    if replay.text:
        replay.text[:keep] = snapshot["text"][drop:]
        replay.commands[:keep] = [tuple(c) for c in snapshot["commands"][drop:]]
    replay.total_added = keep
    replay._open = {}  # writers of the snapshot's episodes are gone


class ReplayShard:
    """The replays of some of the run's tasks; a restarted shard reloads the newest checkpoint.

    ``restore_from`` (a checkpoint path) fills the shard on a resume; after a crash the shard
    restores from the newest checkpoint in ``run_dir`` instead, so it loses only what was
    collected since then.
    """

    def __init__(
        self,
        run_tasks: TaskSet,
        task_ids: list[int],
        config: ReplayConfig,
        run_dir: str,
        restore_from: str = "",
    ) -> None:
        torch.set_num_threads(1)
        self.replays = {t: TaskReplay(run_tasks[t], config) for t in task_ids}
        self.added = 0
        if _reconstructed():
            from mtrl.runtime.checkpoint import latest_checkpoint

            latest = latest_checkpoint(Path(run_dir))
            restore_from = str(latest) if latest else ""
        if restore_from:
            self._restore_file(restore_from)

    def _restore_file(self, path: str) -> None:
        from mtrl.runtime.checkpoint import read_checkpoint

        snapshots = read_checkpoint(Path(path)).get("replay", {})
        self.restore(snapshots)
        log.info("replay shard restored %d tasks from %s", len(snapshots), path)

    def add(self, records: dict[int, list]) -> int:
        added = sum(apply_records(self.replays[t], r) for t, r in records.items())
        self.added += added
        return added

    def lengths(self) -> dict[int, int]:
        """Rows per task that can start a sequence (0 tasks left out)."""
        return {t: len(r) for t, r in self.replays.items() if _sampleable(r)}

    def sample(self, sizes: dict[int, int], seed: int) -> dict[int, ReplaySlice]:
        rng = np.random.default_rng(seed)
        return {
            t: ReplaySlice(self.replays[t], self.replays[t].sample(n, rng))
            for t, n in sizes.items()
            if _sampleable(self.replays[t])
        }

    def set_priorities(self, updates: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        """Per task: new priorities of absolute start rows (rows overwritten since are skipped)."""
        for task, (rows, priorities) in updates.items():
            self.replays[task].set_priorities(rows, priorities)

    def snapshot(self, max_rows: int) -> dict[str, dict[str, Any]]:
        return {r.spec.id: replay_snapshot(r, max_rows) for r in self.replays.values()}

    def restore(self, snapshots: dict[str, dict[str, Any]]) -> None:
        for replay in self.replays.values():
            if replay.spec.id in snapshots:
                restore_snapshot(replay, snapshots[replay.spec.id])

    def stats(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "added": self.added, "rows": self.lengths()}


def _sampleable(replay: TaskReplay) -> bool:
    size = len(replay)
    return size > 0 and not bool(replay.is_last[:size].all())


def _reconstructed() -> bool:
    if not ray.is_initialized():
        return False
    with warnings.catch_warnings():  # Ray warns about an API it uses internally here
        warnings.simplefilter("ignore")
        try:
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)
        except Exception:  # not inside an actor
            return False

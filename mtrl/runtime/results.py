"""What a run hands back: its result, or ``RunLost`` when it cannot go on."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtrl.runtime import checkpoint as ckpt

TRAIN_EPISODES_KEPT = 200_000  # newest training episodes a result keeps: ~25 MB of tuples
RESULT_NAME = "result.json"  # in the run folder: the raw results of the run


class RunLost(RuntimeError):
    """An actor the run cannot do without is gone for good (the learner, whose state lives
    in the checkpoints, or an actor out of restarts): the run stops, to be resumed."""


@dataclass
class RunResult:
    env_steps: int
    updates: int
    run_dir: Path
    checkpoints: list[Path]
    # One record per evaluation: env_steps, updates, seconds, returns {task: mean},
    # episodes {task: [returns]}, solved [tasks].
    evaluations: list[dict[str, Any]]
    # Training episodes in the order they ended, the newest TRAIN_EPISODES_KEPT of them:
    # (seconds since start, task, return). Every one is in scalars.csv and TensorBoard.
    train_episodes: list[ckpt.TrainEpisode]
    worker_pids: dict[int, set[int]]
    seconds: float
    stopped_by: str = ""
    targets: dict[str, float | None] = field(default_factory=dict)  # per task: DPS's solved mark


def lost_message(role: str, error: Any, run_dir: Path) -> str:
    """One line: which actor died, Ray's reason, and how to go on."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = next((line for line in lines if "because" in line), lines[0] if lines else "")
    last = ckpt.latest_checkpoint(run_dir)
    kept = f"the newest checkpoint is {last}" if last else "no checkpoint was written yet"
    return (
        f"{role} died and cannot be restarted ({reason}); {kept}: continue with --resume {run_dir}"
    )


def write_result(result: RunResult, config_json: str) -> Path:
    """The run's raw results as JSON in its folder (the config, counters, every evaluation's
    episodes and the training episodes), so that anyone can redraw its figures. A resumed run's
    evaluations and seconds go back to its start (they travel in the checkpoints), its training
    episodes to the resume; it keeps the earlier file as ``result-<env steps>.json``."""
    record = {
        "config": json.loads(config_json),
        "env_steps": result.env_steps,
        "updates": result.updates,
        "seconds": result.seconds,
        "stopped_by": result.stopped_by,
        # JSON has no infinity: an unreachable target is written as null.
        "targets": {
            task: value if value is not None and math.isfinite(value) else None
            for task, value in result.targets.items()
        },
        "evaluations": result.evaluations,
        "train_episodes": result.train_episodes,
    }
    path = result.run_dir / RESULT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        try:
            earlier = int(json.loads(path.read_text())["env_steps"])
        except (ValueError, KeyError, TypeError):
            earlier = 0  # unreadable: kept under a name of its own all the same
        path.replace(path.with_name(f"result-{earlier:012d}.json"))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)
    return path

"""What a run hands back: its result, or ``RunLost`` when it cannot go on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtrl.runtime import checkpoint as ckpt

TRAIN_EPISODES_KEPT = 200_000  # newest training episodes a result keeps: ~25 MB of tuples


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
    train_episodes: list[tuple[float, str, float]]
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

"""Where a run keeps its checkpoints: the one definition that training (``mtrl.runtime``) and
evaluation (``mtrl.eval``: ``mtrl eval RUN_DIR``, the TensorBoard layout) both read. A leaf
module: it imports nothing of mtrl.

    <run_dir>/checkpoints/ckpt-<env steps, 12 digits>.pt
"""

from __future__ import annotations

from pathlib import Path

PATTERN = "ckpt-*.pt"  # temporary files (".ckpt-....tmp") never match


def checkpoint_dir(run_dir: Path | str) -> Path:
    return Path(run_dir) / "checkpoints"


def checkpoint_name(env_steps: int) -> str:
    return f"ckpt-{env_steps:012d}.pt"


def list_checkpoints(run_dir: Path | str) -> list[Path]:
    """Complete checkpoint files of a run, oldest first."""
    return sorted(checkpoint_dir(run_dir).glob(PATTERN))


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None

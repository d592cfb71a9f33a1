"""Run metrics: TensorBoard events plus a CSV twin; the progress display is
``mtrl.eval.display.Progress``.

Tags (fixed; the TensorBoard layout is built on them): per task ``{task}/return``,
``{task}/episode_length``, ``{task}/eval_return``, ``{task}/expert_load/{k}``; ``loss/{name}``,
``loss/{task}/{name}``; ``gradients/mean_cosine``, ``gradients/conflict_matrix`` (image);
``dps/stage``, ``dps/solved_tasks``; ``throughput/{env_steps,searches,updates,samples}_per_s``.
The step of every point is the run's env-step counter, so a resumed run continues its curves.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from mtrl.eval.display import MAX_WIDTH, Progress

__all__ = ["CSV_NAME", "MAX_WIDTH", "MetricsWriter", "Progress", "Rates"]

CSV_NAME = "scalars.csv"


class MetricsWriter:
    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        # purge_step: TensorBoard drops the old events at or after it (a resumed run's
        # steps past its checkpoint were never saved, so they are redone).
        self.tb = SummaryWriter(str(run_dir), purge_step=purge_step)
        path = run_dir / CSV_NAME
        if purge_step is not None and path.exists():
            _truncate_csv(path, purge_step)
        fresh = not path.exists()
        self.file = path.open("a", newline="")
        self.csv = csv.writer(self.file)
        if fresh:
            self.csv.writerow(["step", "tag", "value", "wall_time"])

    def scalar(self, tag: str, value: float, step: int) -> None:
        if value is None or not math.isfinite(value):
            return
        now = time.time()
        self.tb.add_scalar(tag, value, step, walltime=now)
        self.csv.writerow([step, tag, f"{value:.6g}", f"{now:.3f}"])

    def scalars(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.scalar(tag, value, step)

    def conflict_matrix(self, cosine: np.ndarray, step: int, cell: int = 16) -> None:
        """Pairwise gradient cosines as an image: blue agrees (+1), red conflicts (-1)."""
        c = np.clip(cosine, -1.0, 1.0)
        rgb = np.stack([np.clip(-c, 0, 1), np.zeros_like(c), np.clip(c, 0, 1)], axis=-1)
        image = np.kron(rgb, np.ones((cell, cell, 1)))
        self.tb.add_image("gradients/conflict_matrix", image, step, dataformats="HWC")

    def learner_result(
        self, result: dict[str, Any], names: list[str], step: int, conflict_image: bool
    ) -> None:
        """One learner call's metrics: losses and gradient scalars, the conflict image (when
        asked and measured) and each task's share of every expert."""
        for key, value in result["scalars"].items():
            self.scalar(_loss_tag(key), value, step)
        if conflict_image and result["cosine"] is not None:
            self.conflict_matrix(result["cosine"], step)
        load = result["expert_load"]
        for task, row in enumerate(load if load is not None else []):
            if row.sum() > 0:
                for k, share in enumerate(row):
                    self.scalar(f"{names[task]}/expert_load/{k}", float(share), step)

    def flush(self) -> None:
        self.tb.flush()
        self.file.flush()

    def close(self) -> None:
        self.tb.close()
        self.file.close()


def _truncate_csv(path: Path, purge_step: int) -> None:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    # A driver killed with -9 can leave the file empty (header still buffered) or a row cut short.
    if not rows:
        path.unlink()  # written afresh, header first
        return
    whole = [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit()]
    kept = [rows[0]] + [r for r in whole if int(r[0]) < purge_step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)


def _loss_tag(key: str) -> str:
    """Learner metric names -> the run's tag scheme."""
    if key.startswith("loss/task/"):
        return f"loss/{key.removeprefix('loss/task/')}/total"
    if key.startswith("grad/"):
        return "gradients/" + key.removeprefix("grad/")
    return key


@dataclass
class Rates:
    """Counts since the last report, turned into per-second rates."""

    since: float = field(default_factory=time.perf_counter)
    counts: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.counts[name] = self.counts.get(name, 0.0) + value

    def take(self) -> dict[str, float]:
        now = time.perf_counter()
        seconds = max(now - self.since, 1e-9)
        rates = {f"{k}_per_s": v / seconds for k, v in self.counts.items()}
        self.since, self.counts = now, {}
        return rates

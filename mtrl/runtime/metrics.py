"""Run metrics: TensorBoard events plus a CSV twin, and the console progress display.

Tags (fixed; the TensorBoard layout is built on them): per task ``{task}/return``,
``{task}/episode_length``, ``{task}/eval_return``, ``{task}/expert_load/{k}``; ``loss/{name}``,
``loss/{task}/{name}``; ``gradients/mean_cosine``, ``gradients/conflict_matrix`` (image);
``dps/stage``, ``dps/solved_tasks``; ``throughput/{env_steps,searches,updates,samples}_per_s``.
The step of every point is the run's env-step counter, so a resumed run continues its curves.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from collections import deque
from pathlib import Path
from typing import TextIO

import numpy as np
from torch.utils.tensorboard import SummaryWriter

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

    def flush(self) -> None:
        self.tb.flush()
        self.file.flush()

    def close(self) -> None:
        self.tb.close()
        self.file.close()


def _truncate_csv(path: Path, purge_step: int) -> None:
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < purge_step]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(kept)


class Progress:
    """Env steps against the budget, per-task recent return, throughput and ETA.

    On a terminal the block redraws in place; otherwise it prints one plain line per call.
    """

    def __init__(self, budget: int, tasks: tuple[str, ...], stream: TextIO | None = None):
        self.budget, self.tasks = budget, tasks
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.recent: dict[str, deque] = {t: deque(maxlen=20) for t in tasks}
        self.drawn = 0

    def episode(self, task: str, episode_return: float) -> None:
        self.recent[task].append(episode_return)

    def show(self, env_steps: int, updates: int, rates: dict[str, float]) -> None:
        speed = rates.get("env_steps_per_s", 0.0)
        eta = max(self.budget - env_steps, 0) / speed if speed > 0 else math.inf
        head = (
            f"env steps {env_steps:,}/{self.budget:,} ({100 * env_steps / self.budget:.0f}%)"
            f"  updates {updates:,}  {speed:.0f} steps/s"
            f"  {rates.get('searches_per_s', 0.0):.1f} searches/s"
            f"  {rates.get('updates_per_s', 0.0):.1f} updates/s  ETA {_duration(eta)}"
        )
        returns = {t: f"{np.mean(v):.1f}" if v else "-" for t, v in self.recent.items()}
        if not self.tty:
            tail = " ".join(f"{t}={r}" for t, r in returns.items())
            print(f"[mtrl] {head} | return {tail}", file=self.stream, flush=True)
            return
        width = max(len(t) for t in self.tasks)
        lines = [head] + [f"  {t:<{width}}  recent return {r}" for t, r in returns.items()]
        up = f"\x1b[{self.drawn}F\x1b[J" if self.drawn else ""
        print(up + "\n".join(lines), file=self.stream, flush=True)
        self.drawn = len(lines)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

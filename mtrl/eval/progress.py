"""A progress bar over evaluation episodes: redrawn in place on a terminal, plain lines else."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30


class Progress:
    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self.per_task: dict[str, int] = {}

    def episode(self, task: str, seed: int, index: int, episode_return: float) -> None:
        self.done += 1
        self.per_task[task] = self.per_task.get(task, 0) + 1
        elapsed = time.perf_counter() - self.started
        what = f"{task} seed {seed} episode {index}: return {episode_return:g}"
        if self.tty:  # logs and CI get one line per episode, terminals one redrawn bar
            filled = WIDTH * self.done // max(self.total, 1)
            bar = "#" * filled + "." * (WIDTH - filled)
            tasks = f"{len(self.per_task)} tasks started"
            line = f"\r[{bar}] {self.done}/{self.total} episodes, {tasks}, {elapsed:.0f}s | {what}"
            self.stream.write(line[:160].ljust(160))
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {elapsed:.1f}s {what}\n")
        self.stream.flush()

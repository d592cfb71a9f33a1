"""``mtrl eval``'s progress: the training driver's display, ``mtrl.eval.display.Progress``,
counting evaluation episodes instead of env steps.

On a terminal the live display (a bar and one table per suite) redraws after every episode; in
a log each episode is one line, and the per-suite summary follows the last one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from mtrl.eval.display import Progress

__all__ = ["Progress", "episode_callback", "evaluation_progress"]


def evaluation_progress(
    total: int, tasks: Sequence[str], stream: TextIO | None = None, width: int | None = None
) -> Progress:
    """The display for ``total`` episodes over ``tasks``, on stderr (stdout is for results)."""
    return Progress(total, tasks, stream or sys.stderr, unit="episodes", width=width)


def episode_callback(progress: Progress) -> Callable[[str, int, int, float], None]:
    """``run_units``' ``on_episode`` hook (task, seed, episode index, return) for ``progress``."""

    def on_episode(task: str, seed: int, index: int, episode_return: float) -> None:
        progress.episode(task, episode_return)
        done = progress.episodes
        if not progress.tty:
            what = f"{task} seed {seed} episode {index}: return {episode_return:g}"
            progress.line(f"[{done}/{progress.total}] {what}")
        if progress.tty or done >= progress.total:
            progress.show(done)

    return on_episode

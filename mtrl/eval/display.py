"""The progress display of a run or an evaluation (rich): a live bar and one table per suite
on a terminal, plain ``[mtrl]`` lines elsewhere (CI, ``ray job submit`` logs).

It lives in ``mtrl.eval`` (monitoring) so that both the training driver (``mtrl.runtime``) and
``mtrl eval`` use it without ``mtrl.eval`` importing the runtime.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TextIO

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

# Progress display: mtrl's lines stay readable in a 100-column terminal or log viewer.
MAX_WIDTH = 100
RECENT = 20  # a task's "return" is the mean of its last RECENT episodes
NAME, RETURN, COUNT = 24, 8, 5  # widths in a suite's table: longest name shown, return, count
NEVER = "-"  # a task without episodes yet


class Progress:
    """Progress of a run or of an evaluation: a count against its total, and per-task recent
    returns grouped by suite (the part of a task id before ``/``).

    On a terminal a rich live display (a bar, then one table per suite with the tasks side by
    side) redraws in place; elsewhere (CI, ``ray job submit`` logs) each ``show`` prints plain
    lines. No line is wider than ``width`` (at most ``MAX_WIDTH``). The training driver and
    ``mtrl eval`` both use it; ``unit`` names what is counted.
    """

    def __init__(
        self,
        total: int,
        tasks: Sequence[str],
        stream: TextIO | None = None,
        *,
        unit: str = "env steps",
        width: int | None = None,
    ) -> None:
        self.total, self.unit = max(total, 1), unit
        self.stream = stream or sys.stdout
        self.tty = _is_terminal(self.stream)
        self.recent: dict[str, deque[float]] = {t: deque(maxlen=RECENT) for t in tasks}
        self.counts: dict[str, int] = dict.fromkeys(tasks, 0)
        self.started = time.monotonic()
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False)
        self.width = min(width or (self.console.width if self.tty else MAX_WIDTH), MAX_WIDTH)
        self.console.width = self.width
        self.live: Live | None = None
        self.handlers: list[tuple[logging.StreamHandler, TextIO]] = []

    @property
    def episodes(self) -> int:
        return sum(self.counts.values())

    def episode(self, task: str, episode_return: float) -> None:
        self.recent.setdefault(task, deque(maxlen=RECENT)).append(episode_return)
        self.counts[task] = self.counts.get(task, 0) + 1

    def show(
        self, done: int, updates: int | None = None, rates: Mapping[str, float] | None = None
    ) -> None:
        """Redraw (terminal) or print (elsewhere) the display at ``done`` of ``total``."""
        fields = self._status(done, updates, rates or {})
        if not self.tty:
            self._write(_pack("[mtrl] ", fields, self.width))
            for suite, tasks in _by_suite(self.recent).items():
                cells = [f"{_short(t)} {self._return(t)}" for t in tasks]
                cells[0] = f"{self._suite_title(suite, tasks)}, recent return: {cells[0]}"
                self._write(_pack("[mtrl]   ", cells, self.width))
            return
        head = Table.grid()  # a grid row ends its line: a bare bar would run into the next
        head.add_row(Text("\n".join(_pack("", fields, self.width))))
        head.add_row(ProgressBar(total=self.total, completed=done, width=self.width))
        suites = _by_suite(self.recent).items()
        view = Group(head, *(self._table(suite, tasks) for suite, tasks in suites))
        if self.live is None:
            self._start(view)
        else:
            self.live.update(view, refresh=True)

    def _start(self, view: Group) -> None:
        # On the process's own stdout / stderr, prints to either (Ray's forwarded worker output
        # and log records included) go above the display through rich's proxies.
        own = self.stream in (sys.stdout, sys.stderr)
        originals = (sys.stdout, sys.stderr)
        self.live = Live(
            view,
            console=self.console,
            auto_refresh=False,  # no refresh thread: show() redraws
            redirect_stdout=own,
            redirect_stderr=own,
        )
        self.live.start(refresh=True)
        if own:
            self.handlers = _redirect_log_handlers(originals, (sys.stdout, sys.stderr))
        atexit.register(self.close)  # a run that never calls close still gets its cursor

    def line(self, text: str) -> None:
        """One line of log: above the live display on a terminal, a plain line elsewhere."""
        if self.tty:
            self.console.print(text, markup=False, overflow="ellipsis", no_wrap=True)
        else:
            self._write(_pack("[mtrl] ", [text], self.width))

    def close(self) -> None:
        """Leave the last live display on screen and give the terminal back."""
        if self.live is not None:
            for handler, stream in self.handlers:
                handler.setStream(stream)
            self.handlers = []
            self.live.stop()
            self.live = None
            atexit.unregister(self.close)

    def _status(self, done: int, updates: int | None, rates: Mapping[str, float]) -> list[str]:
        speed = rates.get("env_steps_per_s")
        if speed is None:  # no rate given (mtrl eval): the average since this display began
            speed = done / max(time.monotonic() - self.started, 1e-9)
        eta = max(self.total - done, 0) / speed if speed > 0 else math.inf
        fields = [f"{self.unit} {done:,}/{self.total:,} ({100 * done / self.total:.0f}%)"]
        fields.append(f"ETA {_duration(eta)}")
        if updates is not None:
            fields.append(f"updates {updates:,}")
        fields += [
            f"{v:.1f} {k.removesuffix('_per_s').replace('_', ' ')}/s" for k, v in rates.items()
        ]
        return fields

    def _count(self, tasks: Sequence[str]) -> int:
        return sum(self.counts.get(t, 0) for t in tasks)

    def _return(self, task: str) -> str:
        values = self.recent[task]
        return _number(sum(values) / len(values)) if values else NEVER

    def _suite_title(self, suite: str, tasks: Sequence[str]) -> str:
        count = len(tasks)
        return f"{suite} ({count} task{'s' * (count != 1)}, {self._count(tasks):,} episodes)"

    def _table(self, suite: str, tasks: list[str]) -> Group:
        # Tasks fill the columns top to bottom, as many task cells side by side as fit; names
        # are as wide as the suite's longest, so "cartpole-swingup[_sparse]" stay apart.
        name = min(max(len("task"), *(len(_short(t)) for t in tasks)), NAME)
        across = max(1, (self.width + 1) // (name + RETURN + COUNT + 3))
        rows = math.ceil(len(tasks) / across)
        across = math.ceil(len(tasks) / rows)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
        for _ in range(across):
            table.add_column("task", width=name, no_wrap=True, overflow="ellipsis")
            table.add_column("return", width=RETURN, justify="right", no_wrap=True)
            table.add_column("eps", width=COUNT, justify="right", no_wrap=True, style="dim")
        cells = [(_short(t), self._return(t), f"{self.counts.get(t, 0):,}") for t in tasks]
        cells += [("", "", "")] * (rows * across - len(cells))
        for r in range(rows):
            table.add_row(*(part for c in range(across) for part in cells[c * rows + r]))
        title = f"{self._suite_title(suite, tasks)}; return = mean of the last {RECENT}"
        return Group(Text(title, style="bold", no_wrap=True, overflow="ellipsis"), table)

    def _write(self, lines: list[str]) -> None:
        self.stream.write("".join(f"{line}\n" for line in lines))
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    """A terminal that moves its cursor: a live display; anything else gets plain lines."""
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False
    return tty and os.environ.get("TERM", "").lower() not in ("dumb", "unknown")


def _redirect_log_handlers(
    originals: tuple[TextIO, TextIO], proxies: tuple[TextIO, TextIO]
) -> list[tuple[logging.StreamHandler, TextIO]]:
    """Point the root logger's console handlers at rich's stdout / stderr proxies; return what
    to restore. They hold the streams from before the live display, and a record written there
    directly would be erased by the next redraw (and leave a stale line of the display)."""
    moved = []
    for handler in logging.getLogger().handlers:
        stream = getattr(handler, "stream", None)
        if isinstance(handler, logging.StreamHandler) and stream in originals:
            handler.setStream(proxies[originals.index(stream)])
            moved.append((handler, stream))
    return moved


def _by_suite(tasks: Iterable[str]) -> dict[str, list[str]]:
    suites: dict[str, list[str]] = {}
    for task in tasks:
        suite, sep, _ = task.partition("/")
        suites.setdefault(suite if sep else "tasks", []).append(task)
    return suites


def _short(task: str) -> str:
    return task.partition("/")[2] or task


def _number(value: float) -> str:
    # Returns run from -21 (Pong) to 10^5 (Atari): at most RETURN characters.
    if abs(value) >= 1e6:
        return f"{value:.2g}"  # "-1.2e+06"
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:,.1f}"


def _pack(prefix: str, fields: Sequence[str], width: int, sep: str = " · ") -> list[str]:
    """``fields`` joined by ``sep`` in lines of at most ``width`` characters, each ``prefix``ed;
    a field longer than a line is cut with an ellipsis."""
    room = width - len(prefix)
    lines: list[str] = []
    line = ""
    for field in fields:
        field = field if len(field) <= room else field[: room - 1] + "…"
        if line and len(line) + len(sep) + len(field) <= room:
            line += sep + field
        else:
            if line:
                lines.append(prefix + line)
            line = field
    return [*lines, prefix + line] if line else lines


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"

"""Jericho's candidate-command filter split over threads, each with its own emulator copy.

Trying candidates is interpreter work in C, and ctypes releases the GIL while it runs, so
threads can share it. Each ``FrotzEnv`` loads its own copy of Jericho's C library (its own
globals), so a thread per copy is safe, with one exception: Jericho's C loop
(``filter_candidate_actions``, ``use_ctypes=True``) splits the candidate list with ``strtok``,
whose position is shared by the whole process; two threads in it lose or mix commands (seen:
"take all from bucket" missing). The threads therefore run that loop's steps from Python,
one ``step`` per command (:func:`try_commands`), for about 15% more CPU. Contiguous chunks,
merged in order, keep each group's commands in candidate order, so the command chosen per
group, and the result, equal the serial C loop's.

Jericho's own ``use_parallel`` forks a ``multiprocessing.Pool`` of ``cpu_count()`` processes
per environment and never closes it; this keeps the copies in the process and closes them with
the environment.
"""

from __future__ import annotations

import os
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.ctypeslib import as_ctypes

THREADS_ENV = "MTRL_JERICHO_THREADS"
MAX_DEFAULT_THREADS = 4


def default_threads() -> int:
    """``$MTRL_JERICHO_THREADS``, else the usable CPUs up to 4 (1 means no threads)."""
    if os.environ.get(THREADS_ENV):
        value = os.environ[THREADS_ENV]
        if not value.isdigit():
            raise ValueError(f"bad ${THREADS_ENV} {value!r}: expected an integer >= 0")
        return int(value)
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(1)
    return min(MAX_DEFAULT_THREADS, len(usable))


class ThreadedFilter:
    """``FrotzEnv._filter_candidate_actions`` for ``env``'s state, over ``threads`` copies."""

    def __init__(self, story_file: str, threads: int) -> None:
        if threads < 2:
            raise ValueError(f"bad threads {threads}: a threaded filter needs at least 2")
        import jericho

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # same warnings as the main copy already gave
            self._copies = [jericho.FrotzEnv(story_file, seed=1) for _ in range(threads)]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="jericho-filter")

    def __call__(self, env: Any, candidates: list[str]) -> dict[Any, list[str]]:
        if env.game_over() or env.victory() or env._emulator_halted():
            return {}  # as Jericho's filter: nothing is valid once the game is over
        state = env.get_state()
        size = -(-len(candidates) // len(self._copies))
        chunks = [candidates[i : i + size] for i in range(0, len(candidates), size)]
        jobs = [
            self._pool.submit(try_commands, copy, state, chunk)
            for copy, chunk in zip(self._copies, chunks, strict=False)
        ]
        changes: defaultdict[Any, list[str]] = defaultdict(list)
        for job in jobs:  # in chunk order: each group keeps candidate order
            for change, commands in job.result().items():
                changes[change].extend(commands)
        return changes

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for copy in self._copies:
            copy.close()


def try_commands(copy: Any, state: Any, candidates: list[str]) -> dict[Any, list[str]]:
    """Jericho's C loop (``filter_candidate_actions``) command by command from Python: the same
    test (score, end or world changed, no "(Taken)") and the same change keys (the raw 64+64
    cleaned world diff; Jericho's Python loop parses it and stops at an object moved to 0, which
    can merge different changes). One difference: a command that halts the emulator is skipped
    (the copy restarts), where the C loop stops and Jericho restarts the game being played."""
    copy.set_state(state)
    score = copy.get_score()
    changes: defaultdict[Any, list[str]] = defaultdict(list)
    for command in candidates:
        copy.set_state(state)
        text, _, done, info = copy.step(command)
        if copy._emulator_halted():
            copy.reset()
            continue
        changed = info["score"] != score or done or copy._world_changed()
        if changed and "(Taken)" not in text:  # Jericho: ignore taking as a side effect
            changes[_change_key(copy)].append(command)
    copy.set_state(state)
    return changes


def _change_key(copy: Any) -> tuple[int, ...]:
    moved = np.zeros(64, dtype=np.uint16)
    values = np.zeros(64, dtype=np.uint16)
    copy.frotz_lib.get_cleaned_world_diff(as_ctypes(moved), as_ctypes(values))
    return (*moved.tolist(), *values.tolist())

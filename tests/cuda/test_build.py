"""The native-kernel loader survives a process killed mid-build: torch's build lock left
behind must not make later processes wait forever."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from mtrl.cuda import build


def test_a_finished_build_loads_while_a_dead_process_holds_the_lock(tmp_path) -> None:
    """A copy of the built kernels, marked complete, next to a lock nobody will release:
    loading it must not wait on the lock (run in a fresh process, with a deadline)."""
    built = build.load_cpu_extension()  # the real build (cached after the first test session)
    folder = tmp_path / "build"
    folder.mkdir()
    shutil.copy(built.__file__, folder / "mtrl_search_cpu.so")
    (folder / "complete").touch()
    (folder / "lock").touch()  # as a SIGKILLed builder leaves it: fresh, never released
    code = (
        "import sys; from pathlib import Path; from mtrl.cuda.build import _load; "
        "m = _load('mtrl_search_cpu', Path(sys.argv[1])); print(m.__file__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder / "mtrl_search_cpu.so")


def test_only_an_old_lock_is_removed(tmp_path) -> None:
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    fresh.touch()
    old.touch()
    past = time.time() - build.STALE_LOCK_S - 60
    os.utime(old, (past, past))
    build._clear_stale_lock(fresh)  # a build may be running: leave it
    with pytest.warns(UserWarning, match="stale build lock"):
        build._clear_stale_lock(old)
    assert fresh.exists() and not old.exists()
    build._clear_stale_lock(tmp_path / "missing")  # no lock: nothing to do

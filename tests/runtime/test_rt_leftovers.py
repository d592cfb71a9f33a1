"""Defect 5: a SIGKILLed ``launch/tiny.py`` driver left ``ray::DashboardAgent`` and
``ray::RuntimeEnvAgent`` running (Ray's agents hang reporting the raylet's death to the dead
GCS, until their GCS client gives up after 60 s). Here a real tiny run is killed with ``kill -9``
twice: once with its watcher frozen, so Ray's own leftovers stay, and ``--resume`` must work
beside them; then the resumed run, whose Ray must be gone well within those 60 s. Processes are
told apart by the session folder they hold open; other tests' Ray instances are never signalled.
"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mtrl.runtime import local_ray
from mtrl.runtime.metrics import CSV_NAME, MetricsWriter

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "env_steps=100000000",  # never finishes: the test kills it
    "checkpoint_minutes=0.01",  # a checkpoint within a second of the first updates
    "warmup_env_steps=50",
    "eval_episodes=0",
]
STARTUP_S = 300  # a loaded 2-core machine: Ray, actors, the first checkpoint
# The watcher polls every 0.5 s and gives SIGTERM 3 s before SIGKILL; Ray alone takes 60 s.
GONE_S = 30
FIRST = "ckpt-000000000000.pt"  # written as the run starts


def wait_for(
    what: str, check: Callable[[], object], timeout: float, runs: "Runs | None" = None
) -> object:
    """Poll ``check`` until it returns something true; fail naming ``what`` after timeout, or
    at once with its log when the newest driver of ``runs`` exits meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if runs and runs.drivers[-1].poll() is not None:
            raise AssertionError(f"the driver exited waiting for {what}:\n{runs.log(-1)[-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def session_of(driver: int) -> Path | None:
    """The driver's Ray session folder, from its raylet's command line."""
    for pid in local_ray.descendants(driver):
        for arg in cmdline(pid):
            if arg.startswith("--session_dir="):
                return Path(arg.split("=", 1)[1])
    return None


def watcher_of(session: Path) -> int | None:
    for pid in local_ray.session_processes(session):
        if any(arg.endswith("local_ray.py") for arg in cmdline(pid)):
            return pid
    return None


def newest(run_dir: Path) -> str:
    """The newest checkpoint's name ("" if none); names sort by env steps."""
    return max((p.name for p in (run_dir / "checkpoints").glob("ckpt-*.pt")), default="")


class Runs:
    """Starts tiny runs and, at the end, ends whatever of them is left (and only that)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.drivers: list[subprocess.Popen] = []
        self.sessions: list[Path] = []
        self.stopped: list[int] = []
        self.logs: list[Path] = []

    def start(self, *args: str) -> tuple[subprocess.Popen, Path]:
        self.logs.append(self.run_dir.parent / f"driver-{len(self.drivers)}.log")
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        command = [sys.executable, "launch/tiny.py", "--num-cpus", "2", *args]
        with open(self.logs[-1], "wb") as log:
            driver = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, env=env)
        self.drivers.append(driver)
        session = wait_for("the driver's Ray", lambda: session_of(driver.pid), STARTUP_S, self)
        assert isinstance(session, Path)
        self.sessions.append(session)
        return driver, session

    def log(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")

    def close(self) -> None:
        for pid in self.stopped:
            if local_ray.start_time(pid):
                os.kill(pid, signal.SIGCONT)
        for driver in self.drivers:
            driver.kill()
            driver.wait()
        for session in self.sessions:
            local_ray.end_session(session)


@pytest.fixture
def runs(tmp_path: Path, mtrl_cache: Path) -> Iterator[Runs]:
    (tmp_path / "tiny").mkdir()
    made = Runs(tmp_path / "tiny")
    try:
        yield made
    finally:
        made.close()


def test_a_sigkilled_driver_leaves_no_process_and_resume_works_beside_leftovers(
    runs: Runs,
) -> None:
    settings = [arg for pair in OVERRIDES for arg in ("--set", pair)]
    first, session = runs.start(*settings, "--set", f"run_dir={runs.run_dir}")
    wait_for(
        "a checkpoint after some training",  # (resuming at step 0 is not what is tested here)
        lambda: newest(runs.run_dir) > FIRST,
        STARTUP_S,
        runs,
    )
    assert first.poll() is None, runs.log(0)

    # Ray's own fate-sharing, without the watcher: what it leaves is what users saw.
    watcher = watcher_of(session)
    if watcher:
        os.kill(watcher, signal.SIGSTOP)
        runs.stopped.append(watcher)
    first.kill()
    first.wait()
    wait_for("Ray's GCS to die with the driver", lambda: not session_of_gcs(session), GONE_S)
    leftovers = [p for p in local_ray.session_processes(session) if p != watcher]

    # --resume beside the leftovers: it starts its own Ray and trains on from the checkpoint.
    resumed_from = newest(runs.run_dir)
    second, new_session = runs.start("--resume", str(runs.run_dir))
    wait_for(
        f"a checkpoint after {resumed_from} ({len(leftovers)} leftover(s) around)",
        lambda: newest(runs.run_dir) > resumed_from,
        STARTUP_S,
        runs,
    )
    assert "resumed at" in runs.log(1)

    # Killing the resumed driver leaves nothing of its Ray, sooner than Ray alone would.
    second.kill()
    second.wait()
    wait_for("no process of the resumed run's Ray", ray_gone(new_session), GONE_S)
    # The first run's leftovers: ended by the resumed run's watcher as it started.
    wait_for("no process of the first run's Ray", ray_gone(session), GONE_S)


def ray_gone(session: Path) -> Callable[[], bool]:
    return lambda: not local_ray.session_processes(session)


def session_of_gcs(session: Path) -> list[int]:
    return [
        pid
        for pid in local_ray.session_processes(session)
        if any(arg.endswith("/gcs_server") for arg in cmdline(pid))
    ]


@pytest.mark.parametrize(
    "left", ["", "step,tag,value,wall_time\n5,a,1,2\n9,a,1,2\n8,a,0.", "step,tag,value,wall_time\n"]
)
def test_resume_reads_the_scalars_file_a_killed_driver_left(tmp_path: Path, left: str) -> None:
    """``kill -9`` right after the first checkpoint left ``scalars.csv`` empty (the header was
    still buffered), or a row cut short; ``--resume`` then crashed opening it."""
    (tmp_path / CSV_NAME).write_text(left)
    MetricsWriter(tmp_path, purge_step=9).close()
    rows = (tmp_path / CSV_NAME).read_text().splitlines()
    assert rows[0] == "step,tag,value,wall_time"
    assert [row.split(",")[:2] for row in rows[1:]] == ([["5", "a"]] if "5,a" in left else [])

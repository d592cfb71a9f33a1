"""A local Ray for one run: reachable only from this machine, and gone when its driver is.

Ray 2.60 does neither by itself:

* **Loopback.** ``ray.init(_node_ip_address="127.0.0.1")`` is rewritten to the machine's own
  address (``ray._private.services.resolve_ip_for_localhost``) unless Ray's
  ``ENABLE_RAY_CLUSTER`` constant is false (it is only on Windows and macOS, where Ray never
  forms clusters). Ray binds its servers to the node's address, so with the rewrite the GCS,
  raylet, object manager, every worker's gRPC server and the agents listened on the machine's
  address or on all interfaces. :func:`start` keeps the constant false during ``ray.init``
  only, and the node's address stays 127.0.0.1: every socket of the run is then on loopback
  (``tests/runtime/test_rt_exposure.py`` checks the process table).
* **Fate-sharing.** Ray's GCS and raylet die with the driver, but after a ``kill -9`` of the
  driver the dashboard and runtime-env agents hang while reporting the raylet's death to the
  dead GCS, until its client gives up a minute later. :func:`start` therefore starts a
  watcher: this file run as a script (standard library only), in its own session so that a
  Ctrl-C or a group kill does not reach it. When the driver is gone, however it died, the
  watcher ends every process of the driver's Ray session, found by the session folder they
  hold open (their logs), so other Ray instances on the machine are never touched. It also
  ends the leftovers of earlier local runs whose watcher was killed too (their session folder
  carries :data:`MARKER`). Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
MARKER = "mtrl-driver.json"  # written into the session folder of every local run
POLL_S = 0.5  # how often the watcher looks at the driver
TERM_GRACE_S = 3.0  # between SIGTERM and SIGKILL when ending leftovers

log = logging.getLogger(__name__)
_watcher: subprocess.Popen | None = None


def start(num_cpus: int | None, env_vars: dict[str, str], log_to_driver: bool) -> None:
    """``ray.init`` of a new local instance on loopback only, watched for the driver's death."""
    import ray

    if "GLOO_SOCKET_IFNAME" not in os.environ:
        # Several learner ranks talk over gloo, which binds the address the hostname resolves
        # to (often the LAN's) unless given an interface: the loopback one, here.
        env_vars = {"GLOO_SOCKET_IFNAME": "lo", **env_vars}
    # Ray's start-up lines are not mtrl's: its INFO banner, and the notice that token
    # authentication is on (it stays on; README "Security").
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
        logging.ERROR
    )
    with loopback_node_address():
        ray.init(
            address="local",  # a new instance, never a cluster some `ray start` left running
            logging_level=logging.WARNING,
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address=LOOPBACK,
            runtime_env={"env_vars": env_vars},
            log_to_driver=log_to_driver,
        )
    node_address = ray.util.get_node_ip_address()
    if node_address != LOOPBACK:
        log.warning("local Ray runs on %s, not %s: see Security in README", node_address, LOOPBACK)
    # Private, but the only way to the session folder; its name alone is public.
    session_dir = Path(ray._private.worker._global_node.get_session_dir_path())
    _start_watcher(session_dir)


def shutdown() -> None:
    """``ray.shutdown`` and stop the watcher (nothing is left for it to end)."""
    import ray

    global _watcher
    ray.shutdown()
    if _watcher is not None:
        _watcher.terminate()
        _watcher.wait()
        _watcher = None


@contextlib.contextmanager
def loopback_node_address() -> Iterator[None]:
    from ray._private import ray_constants

    if not hasattr(ray_constants, "ENABLE_RAY_CLUSTER"):
        log.warning("this Ray has no ENABLE_RAY_CLUSTER: the run may listen on all interfaces")
        yield
        return
    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # read at call time by services.get_node_ip_address
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _start_watcher(session_dir: Path) -> None:
    global _watcher
    if not Path("/proc/self/stat").exists():  # not Linux: the watcher reads /proc
        log.warning("no /proc here: a killed driver may leave Ray processes behind")
        return
    pid, started = os.getpid(), start_time(os.getpid())
    (session_dir / MARKER).write_text(json.dumps({"pid": pid, "start": started}))
    with open(session_dir / "logs" / "mtrl_watcher.log", "ab") as out:
        _watcher = subprocess.Popen(
            # -I: the script's folder is not put on sys.path (nothing here shadows stdlib).
            [sys.executable, "-I", __file__, str(session_dir), str(pid), str(started)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


# --- processes, from /proc (Linux) --------------------------------------------------------


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, None when it is gone or a zombie;
    with the pid it names one process (pids are reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the name in (...) may hold spaces
    return None if fields[0] in "ZX" else int(fields[19])


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def descendants(root: int) -> list[int]:
    """The live processes below ``root`` (children, their children, ...)."""
    parents = {}
    for pid in _pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            parents[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found = [root]
    for pid in found:
        found += [child for child, parent in parents.items() if parent == pid]
    return found[1:]


def _open_paths(pid: int) -> Iterator[str]:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return
    for fd in fds:
        with contextlib.suppress(OSError):
            yield os.readlink(f"/proc/{pid}/fd/{fd}")


def session_processes(session_dir: Path) -> list[int]:
    """Live processes with a file open in the session folder (every Ray process of a session
    writes its logs there) or naming it on their command line; this process excluded."""
    folder = str(session_dir.resolve())
    found = []
    for pid in _pids():
        if pid == os.getpid() or start_time(pid) is None:
            continue
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        named = any(a.endswith(folder) or folder + "/" in a for a in args)
        if named or any(p.startswith(folder + "/") for p in _open_paths(pid)):
            found.append(pid)
    return found


def end_session(session_dir: Path, rounds: int = 5) -> list[int]:
    """SIGTERM, then SIGKILL after a grace period, every process of the session, until none is
    left; returns the pids ended."""
    ended: list[int] = []
    for _ in range(rounds):
        pids = session_processes(session_dir)
        if not pids:
            break
        ended += pids
        _signal(pids, signal.SIGTERM)
        deadline = time.monotonic() + TERM_GRACE_S
        while time.monotonic() < deadline and any(start_time(p) for p in pids):
            time.sleep(0.1)
        _signal([p for p in pids if start_time(p)], signal.SIGKILL)
    return ended


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def driver_gone(record: dict) -> bool:
    start = start_time(record["pid"])
    return start is None or start != record["start"]


def end_orphaned_sessions(temp_dir: Path, keep: Path) -> None:
    """End what is left of earlier local runs in ``temp_dir`` whose driver is gone."""
    for marker in temp_dir.glob(f"session_*/{MARKER}"):
        if marker.parent.resolve() == keep.resolve():
            continue
        with contextlib.suppress(OSError, ValueError, KeyError):
            if driver_gone(json.loads(marker.read_text())):
                ended = end_session(marker.parent)
                if ended:
                    print(f"ended {len(ended)} leftover(s) of {marker.parent.name}", flush=True)
                marker.unlink()


def listening_sockets(pids: Iterable[int]) -> list[tuple[int, str, int]]:
    """``(pid, address, port)`` of every listening TCP socket the processes hold."""
    table = _listening_table()
    found = []
    for pid in pids:
        for path in _open_paths(pid):
            if path.startswith("socket:["):
                inode = int(path[len("socket:[") : -1])
                if inode in table:
                    found.append((pid, *table[inode]))
    return found


def _listening_table() -> dict[int, tuple[str, int]]:
    table = {}
    for family, path in ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6")):
        with contextlib.suppress(OSError), open(path) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] != "0A":  # TCP_LISTEN
                    continue
                host, port = fields[1].split(":")
                raw = bytes.fromhex(host)  # 32-bit words in host (little-endian) order
                raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                table[int(fields[9])] = (socket.inet_ntop(family, raw), int(port, 16))
    return table


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


# --- the watcher ----------------------------------------------------------------------------


def watch(session_dir: Path, driver: dict) -> None:
    end_orphaned_sessions(session_dir.parent, keep=session_dir)
    while not driver_gone(driver):
        time.sleep(POLL_S)
    ended = end_session(session_dir)
    print(f"driver {driver['pid']} gone; ended {len(ended)} process(es) of its Ray", flush=True)
    with contextlib.suppress(OSError):
        (session_dir / MARKER).unlink()


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="end a local Ray session with its driver")
    parser.add_argument("session_dir", type=Path)
    parser.add_argument("driver_pid", type=int)
    parser.add_argument("driver_start", type=int)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed terminal must not stop the watch
    watch(args.session_dir, {"pid": args.driver_pid, "start": args.driver_start})


if __name__ == "__main__":
    _main(sys.argv[1:])

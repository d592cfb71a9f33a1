"""Memory over long runs (issue 21): run a launcher for a while and sample the RSS of every
process of the run from /proc: the driver, Ray's gcs_server and raylet, its agents and each
actor. At the end, a table of each process's RSS at the start of the last half, at the end, and
its least-squares slope over the last half, against the bar of 1 MB/minute.

    python bench/soak.py                                   # launch/tiny.py for 60 minutes
    python bench/soak.py --minutes 2 --every-s 5 --out /tmp/soak-check
    python bench/soak.py --launcher mixed --set smoke=true  # extra --set go to the launcher

Linux only (reads /proc). Samples go to OUT/samples.csv as they are taken, the table to
OUT/summary.json, the run's own output to OUT/run.log.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BAR_MB_PER_MIN = 1.0
SESSION = re.compile(r"(/\S*?/session_[\w.-]+)")  # Ray's session folder on a command line


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a for a in raw.decode(errors="replace").split("\0") if a]


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None  # a zombie has no VmRSS


def name_of(pid: int, driver: int) -> str:
    """A short name from the command line: Ray sets an actor's title to ``ray::ClassName``."""
    args = cmdline(pid)
    if pid == driver:
        return "driver"
    if not args:
        return "?"
    if args[0].startswith("ray::"):  # ray::Class.method while it runs one: keep the class
        return args[0].split()[0].split(".")[0]
    exe = Path(args[0].split()[0]).name
    if exe.startswith("python"):  # a Python helper: name it by its script or module
        script = next((a for a in args[1:] if a.endswith(".py")), None)
        module = args[args.index("-m") + 1] if "-m" in args[:-1] else None
        return f"python {Path(script).parent.name}/{Path(script).name}" if script else str(module)
    return exe


def parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            found[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found


def run_processes(driver: int, session: str | None) -> tuple[list[int], str | None]:
    """The driver, its descendants, and processes naming the run's Ray session folder (in case
    one was re-parented); also the session folder, once a descendant names it."""
    tree = parents()
    found = [driver]
    for pid in found:
        found += [child for child, parent in tree.items() if parent == pid]
    for pid in tree:
        args = " ".join(cmdline(pid))
        if session is None and pid in found:
            match = SESSION.search(args)
            session = match.group(1) if match else None
        if session and pid not in found and pid != os.getpid() and session in args:
            found.append(pid)
    return found, session


def sample(driver: subprocess.Popen, every_s: float, out: Path, rows: list[dict]) -> None:
    """Append a row per process per sample to ``rows`` (and the CSV) until the driver ends."""
    session = None
    start = time.monotonic()
    with open(out / "samples.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["t_s", "pid", "name", "rss_mb"])
        while driver.poll() is None:
            pids, session = run_processes(driver.pid, session)
            t = round(time.monotonic() - start, 2)
            for pid in pids:
                mb, name = rss_mb(pid), name_of(pid, driver.pid)
                if mb is not None:
                    rows.append({"t_s": t, "pid": pid, "name": name, "rss_mb": round(mb, 2)})
                    writer.writerow([t, pid, name, f"{mb:.2f}"])
            f.flush()
            time.sleep(every_s)


def summarize(rows: list[dict]) -> list[dict]:
    """Per process, over the last half of the sampled span: first and last RSS and the slope."""
    if not rows:
        return []
    half = max(r["t_s"] for r in rows) / 2
    table = []
    for pid in sorted({r["pid"] for r in rows}):
        mine = [r for r in rows if r["pid"] == pid and r["t_s"] >= half]
        if len(mine) < 2:
            continue  # gone before the last half (a worker Ray recycled, a start-up helper)
        t = np.array([r["t_s"] / 60 for r in mine])
        mb = np.array([r["rss_mb"] for r in mine])
        slope = float(np.polyfit(t, mb, 1)[0]) if np.ptp(t) > 0 else 0.0
        name = mine[-1]["name"]  # Ray renames a worker once it hosts an actor
        table.append(
            {"pid": pid, "name": name, "start_mb": mb[0], "end_mb": mb[-1], "slope": slope}
        )
    return sorted(table, key=lambda r: -r["slope"])


def print_table(table: list[dict], minutes: float) -> None:
    print(f"\nRSS, last half of {minutes:.1f} minutes sampled (bar {BAR_MB_PER_MIN} MB/min)")
    print(f"{'process':<34}{'pid':>8}{'start MB':>10}{'end MB':>9}{'MB/min':>9}")
    for r in table:
        flag = "  > bar" if r["slope"] > BAR_MB_PER_MIN else ""
        print(
            f"{r['name'][:33]:<34}{r['pid']:>8}{r['start_mb']:>10.1f}{r['end_mb']:>9.1f}"
            f"{r['slope']:>9.2f}{flag}"
        )
    if any(r["slope"] > BAR_MB_PER_MIN for r in table):
        print("(a replay shard may grow until it holds its stated capacity: that is allowed)")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--launcher", default="tiny", help="a launch/NAME.py")
    p.add_argument("--minutes", type=float, default=60.0, help="the run's max_seconds / 60")
    p.add_argument("--every-s", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "soak")
    p.add_argument("--set", action="append", default=[], help="more launcher overrides")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    script = ROOT / "launch" / f"{args.launcher}.py"
    if not script.is_file():
        sys.exit(f"soak: no launcher {script}")
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = [f"max_seconds={args.minutes * 60:g}", f"run_dir={args.out / 'run'}", *args.set]
    command = [sys.executable, str(script)] + [x for o in overrides for x in ("--set", o)]
    with open(args.out / "run.log", "wb") as log:
        driver = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        rows: list[dict] = []
        try:
            sample(driver, args.every_s, args.out, rows)
        except KeyboardInterrupt:  # stop the run too, and report what was sampled
            driver.terminate()
            driver.wait()
    table = summarize(rows)
    span = max((r["t_s"] for r in rows), default=0.0) / 60
    summary = {"command": command, "minutes": span, "exit": driver.returncode, "table": table}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    print_table(table, span)
    print(f"samples: {args.out / 'samples.csv'}  run log: {args.out / 'run.log'}")
    return driver.returncode


if __name__ == "__main__":
    raise SystemExit(main())

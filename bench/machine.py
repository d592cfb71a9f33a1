"""How fast the box is, recorded beside every benchmark run. On a shared or virtual machine the
same CPUs deliver a fifth or more less at one time than at another, with nothing else running
(fp32 matmul on 2 threads: 260 GFLOP/s in session 9, 204 in session 12, 172 and 281 on session
13's day), so a run budgeted in wall time gets a different number of updates at another time.
``machine.json`` in a run's folder says how fast the box was when the run started and ended (one
pair per session of a resumed run), so a reader can tell drift between runs from the effect of a
change."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

MACHINE_NAME = "machine.json"


def matmul_gflops(size: int = 1024, seconds: float = 0.5) -> float:
    """fp32 matmul throughput with the process's torch threads: repeated ``size``-square
    products for about ``seconds`` (the size behind the figures above)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):  # warm the allocator and the BLAS thread pool
        a @ b
    products, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        a @ b
        products += 1
    return 2 * size**3 * products / elapsed / 1e9


def snapshot() -> dict[str, Any]:
    """The box now: its matmul throughput, its load, what it is."""
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "matmul_gflops": round(matmul_gflops(), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }


def record(run_dir: Path, when: str) -> None:
    """Append a snapshot taken ``when`` ("start" or "end") to the run's ``machine.json``."""
    path = run_dir / MACHINE_NAME
    history = json.loads(path.read_text()) if path.exists() else []
    history.append({"when": when, **snapshot()})
    path.write_text(json.dumps(history, indent=1))


def gflops_range(run_dir: Path) -> tuple[float, float] | None:
    """The slowest and fastest matmul throughput recorded for a run (None: not recorded)."""
    path = run_dir / MACHINE_NAME
    if not path.exists():
        return None
    values = [float(entry["matmul_gflops"]) for entry in json.loads(path.read_text())]
    return (min(values), max(values)) if values else None

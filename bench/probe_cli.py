"""The command line the checkpoint probes share (``gaussian_policy``, ``search_policy``,
``value_probe``): checkpoints, one task, a step count; one report per checkpoint."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import torch

Probe = Callable[[str, str, int], dict[str, Any]]  # (checkpoint, task, steps) -> report


def json_line(path: str, report: dict[str, Any]) -> None:
    print(json.dumps({"checkpoint": path, **report}))


def probe_main(
    doc: str,
    probe: Probe,
    task: str | None = None,  # None: --task is required
    steps: int = 300,
    show: Callable[[str, dict[str, Any]], None] = json_line,
) -> None:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--task", default=task, required=task is None)
    parser.add_argument("--steps", type=int, default=steps)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as one actor thread of a run
    for path in args.checkpoints:
        show(path, probe(path, args.task, args.steps))

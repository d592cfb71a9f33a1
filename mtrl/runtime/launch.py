"""What every ``launch/*.py`` script runs: parse overrides, connect to Ray, drive the run.

Under ``ray job submit`` (``RAY_ADDRESS`` is set) or with a cluster started by ``ray start``
on this machine, the script connects to it; otherwise it starts a local Ray bound to
127.0.0.1. Mistakes in the command line or a bad checkpoint print one line and exit with 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

import ray

from mtrl.runtime import local_ray
from mtrl.runtime.checkpoint import CheckpointError, read_checkpoint, resolve_resume
from mtrl.runtime.config import RunConfig, apply_overrides, from_json, to_json
from mtrl.runtime.driver import Driver, RunLost, RunResult
from mtrl.runtime.smoke import smoke_overrides
from mtrl.runtime.topology import demand

# Forwarded to a Ray started here, so every actor sees the same caches and offline settings.
ENV_VARS = ("MTRL_CACHE", "MTRL_BUILD_DIR", "MUJOCO_GL", "HF_HUB_OFFLINE", "MTRL_JERICHO_DIR")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set env_steps=5000 --set learner.lr=3e-4",
    )
    parser.add_argument("--resume", default="", metavar="RUN_DIR", help="continue a run")
    parser.add_argument("--print-config", action="store_true", help="print the config and exit")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="scale down to a 2-core CPU (tiny model, small budget), same tasks; --set wins",
    )
    parser.add_argument("--num-cpus", type=int, default=0, help="local Ray only (0: all)")
    return parser.parse_args(argv)


def build_config(cls: type[RunConfig], args: argparse.Namespace) -> RunConfig:
    """The script's defaults, or the resumed run's own config, then the overrides."""
    config = cls()
    if args.resume:
        path = resolve_resume(args.resume)
        config = from_json(cls, read_checkpoint(path)["config"])
        # The run continues in the folder it was resumed from (it may have been moved).
        config = replace(config, run_dir=str(path.parent.parent))
    smoke = smoke_overrides(config, resumed=bool(args.resume)) if args.smoke else []
    return apply_overrides(config, [*smoke, *args.set])  # validated once, the user's last


def connect(num_cpus: int = 0) -> bool:
    """Connect to Ray; True when that started a local Ray of this machine alone."""
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address="auto")  # ray job submit, or a user pointing at a cluster
        return False
    env = {k: os.environ[k] for k in ENV_VARS if k in os.environ}
    # A new instance on 127.0.0.1 only, whose processes end with this one (local_ray.py).
    local_ray.start(num_cpus or None, env, log_to_driver=True)
    return True


def check_fits(config: RunConfig) -> None:
    """A local Ray gains no nodes: a run asking for more than it has would wait for ever for
    room for its actors, so it is refused at once, naming what to change."""
    have = ray.cluster_resources()
    for kind, need in demand(config).items():
        if need > have.get(kind, 0.0) + 1e-9:
            raise ValueError(
                f"the run's actors ask for {need:g} {kind}s (resources.*_{kind.lower()}s, "
                f"num_workers, num_search_servers, num_learners) but this local Ray has "
                f"{have.get(kind, 0.0):g}: raise --num-cpus (0: all of the machine's), lower "
                "those settings, or submit the run to a cluster"
            )


def run(config: RunConfig, resume: str = "", inline: bool = False) -> RunResult:
    """One run of the driver: on the connected Ray, or ``inline`` in this process."""
    driver = Driver(config, resume=resume, inline=inline)
    try:
        return driver.run()
    finally:
        driver.shutdown()


def train_local(config: RunConfig, resume: str = "") -> RunResult:
    """The single-process mode: the same driver, rules and checkpoints as a Ray run, with
    every actor in this process (no Ray started). For notebooks, tests and debuggers."""
    return run(config, resume=resume, inline=True)


def summary(result: RunResult) -> str:
    """The closing table: per task, the first and last evaluation against its target."""
    rows = [f"{'task':32} {'first eval':>10} {'last eval':>10} {'target':>8}"]
    first = result.evaluations[0]["returns"] if result.evaluations else {}
    last = result.evaluations[-1]["returns"] if result.evaluations else {}
    for task, target in result.targets.items():
        cells = [f"{r[task]:10.1f}" if task in r else f"{'-':>10}" for r in (first, last)]
        reachable = target is not None and math.isfinite(target)  # inf: never marked solved
        mark = f"{target:8g}" if reachable else f"{'-':>8}"
        rows.append(f"{task:32} {' '.join(cells)} {mark}")
    return "\n".join(rows)


def main(cls: type[RunConfig], argv: Sequence[str] | None = None) -> int:
    # mtrl's own INFO lines; third-party libraries (MuJoCo's absl, PyOpenGL, Ray) only warn.
    logging.basicConfig(level=logging.WARNING, format="[mtrl] %(message)s")
    logging.getLogger("mtrl").setLevel(logging.INFO)
    args = parse_args(argv)
    try:
        if args.resume:  # a folder's newest readable checkpoint, chosen (and checked) once
            args.resume = str(resolve_resume(args.resume))
        config = build_config(cls, args)
        if args.print_config:
            print(to_json(config))
            return 0
        if connect(args.num_cpus):
            check_fits(config)
        result = run(config, resume=args.resume)
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RunLost as error:  # e.g. the learner's node died: resume from the checkpoint
        print(f"error: {error}", file=sys.stderr)
        return 1
    last = result.checkpoints[-1] if result.checkpoints else None
    how = f"stopped by {result.stopped_by}" if result.stopped_by else "done"
    print(
        f"[mtrl] {how}: {result.env_steps:,} env steps, {result.updates:,} updates in "
        f"{result.seconds:.0f}s ({result.env_steps / max(result.seconds, 1e-9):.1f} env steps/s)"
    )
    print(summary(result))
    print(f"checkpoint: {last}")
    print(f"curves:     mtrl tensorboard {result.run_dir}  (or {result.run_dir}/scalars.csv)")
    return 0

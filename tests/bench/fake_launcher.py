"""A stand-in for a ``launch/*.py`` script in the bench tests: the launchers' own options and
config checks (``mtrl.runtime.launch``; ``--resume`` only leaves a note), and a
``result.json`` whose returns follow from the config (each task scores 100 * (seed + 1) /
number of tasks), without training."""

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mtrl.agents.replay import ReplayConfig
from mtrl.envs.registry import resolve_tasks
from mtrl.runtime import RunConfig
from mtrl.runtime.config import to_json
from mtrl.runtime.launch import build_config, parse_args
from mtrl.runtime.results import RunResult, write_result


@dataclass(frozen=True)
class FakeConfig(RunConfig):
    tasks: tuple[str, ...] = ("classic/CartPole", "dmc/cartpole-balance")
    env_steps: int = 1_000
    eval_every: int = 500
    # Marks never reached, one per task: a run of fewer tasks ignores the others.
    targets: tuple[tuple[str, float], ...] = (
        ("classic/CartPole", math.inf),
        ("dmc/cartpole-balance", math.inf),
    )
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(task_discounts=(("dmc", 0.99), ("classic", 0.98)))
    )
    run_dir: str = "runs/fake"


def main() -> None:
    args = parse_args(sys.argv[1:])
    resumed, args.resume = args.resume, ""  # no real checkpoint to read: say it was asked
    config = build_config(FakeConfig, args)
    if resumed:
        (Path(config.run_dir) / "resumed").write_text(resumed)
    if args.print_config:
        print(to_json(config))
        return
    specs = resolve_tasks(config.tasks)
    config.task_targets(specs)  # the driver's checks of targets and discounts
    config.replay.discounts(specs)
    score = 100.0 * (config.seed + 1) / len(config.tasks)
    # 100 env steps per second of the budget: wall time ends a run as env steps do.
    steps = min(config.env_steps, int(config.max_seconds * 100) or config.env_steps)
    evaluations = [
        {
            "env_steps": steps,
            "updates": at // 4,
            "seconds": at / 100,
            "returns": {task: score * at / steps for task in config.tasks},
            "episodes": {task: [score * at / steps] * 2 for task in config.tasks},
            "solved": [],
        }
        for at in range(0, steps + 1, config.eval_every)
    ]
    result = RunResult(
        steps, steps // 4, Path(config.run_dir), [], evaluations, [], {}, steps / 100
    )
    write_result(result, to_json(config))


if __name__ == "__main__":
    main()

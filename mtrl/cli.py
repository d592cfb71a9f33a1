"""The ``mtrl`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mtrl.envs.registry import get_suite, list_suites, list_tasks, resolve_tasks
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec


class UserError(Exception):
    """A mistake in the command line or its inputs: reported without a traceback."""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _action_text(spec: TaskSpec) -> str:
    action = spec.action
    if action.is_continuous:
        return f"continuous[{action.dim}] in [{action.low:g}, {action.high:g}]"
    return f"{action.kind}[{action.n}]"


def cmd_tasks(args: argparse.Namespace) -> int:
    specs = get_suite(args.suite) if args.suite else resolve_tasks(list_tasks())
    header = ("task", "modality", "obs", "action", "max steps", "random", "human", "max", "target")
    rows = [
        (
            s.id,
            s.modality.value,
            "x".join(map(str, s.obs_shape)) or "str",
            _action_text(s),
            str(s.max_episode_steps),
            _fmt(s.random_score),
            _fmt(s.human_score),
            _fmt(s.max_score),
            _fmt(s.target_score),
        )
        for s in specs
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"{len(rows)} tasks" + (f" in suite {args.suite}" if args.suite else ""))
    return 0


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UserError(f"bad --set {pair!r}: expected KEY=VALUE, e.g. atari.size=84")
        overrides[key] = value
    return overrides


def cmd_check_envs(args: argparse.Namespace) -> int:
    from mtrl.envs.check import check_task

    settings = EnvSettings().with_overrides(parse_overrides(args.set))
    specs = resolve_tasks(args.suites)
    if args.steps < 1:
        raise UserError(f"bad --steps {args.steps}: expected a positive integer")
    failures = 0
    print(f"{'task':34} {'steps':>6} {'steps/s':>9} {'episodes':>8}  status", flush=True)
    for spec in specs:
        result = check_task(spec, args.steps, settings, seed=args.seed)
        failures += not result.ok
        status = "ok" if result.ok else f"FAILED {result.error}"
        print(
            f"{result.task_id:34} {result.steps:>6} {result.steps_per_second:>9.0f} "
            f"{result.episodes:>8}  {status}",
            flush=True,
        )
    print(f"{len(specs) - failures} of {len(specs)} tasks ran clean")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mtrl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    tasks = commands.add_parser("tasks", help="print the task table")
    tasks.add_argument("--suite", help=f"one of: {', '.join(list_suites())}")
    tasks.set_defaults(run=cmd_tasks)
    check = commands.add_parser("check-envs", help="step every task of some suites")
    check.add_argument("suites", nargs="+", help="suite names or task ids")
    check.add_argument("--steps", type=int, default=100)
    check.add_argument("--seed", type=int, default=0)
    check.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment setting, e.g. atari.size=84 or dmc.action_repeat=2",
    )
    check.set_defaults(run=cmd_check_envs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UserError, ValueError, FileNotFoundError) as error:
        print(f"mtrl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

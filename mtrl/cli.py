"""The ``mtrl`` command line. User errors print one line and exit with status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mtrl.envs.registry import get_suite, list_suites, list_tasks, resolve_tasks
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec
from mtrl.overrides import apply_overrides


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


def cmd_check_envs(args: argparse.Namespace) -> int:
    from mtrl.envs.check import check_task

    settings = apply_overrides(EnvSettings(), args.set)
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


def cmd_eval(args: argparse.Namespace) -> int:
    from mtrl.eval.run import EvalOptions, evaluate_checkpoint

    options = EvalOptions(
        tasks=tuple(args.tasks or ()),
        episodes=args.episodes,
        seeds=tuple(args.seeds),
        temperature=args.temperature,
        baselines=args.baselines,
        out=args.out,
        video=args.video,
        workers=args.workers,
        noop_max=args.noop_max,
    )
    evaluate_checkpoint(args.checkpoint, options)
    return 0


def tensorboard_command(run_dir: str, port: int) -> list[str]:
    """The TensorBoard command line, bound to loopback (a run's data stays on this machine)."""
    where = ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, "-m", "tensorboard.main", "--logdir", run_dir, *where]


def cmd_tensorboard(args: argparse.Namespace) -> int:
    import subprocess
    from pathlib import Path

    from mtrl.eval.tensorboard import ensure_layout

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory {run_dir} does not exist")
    ensure_layout(run_dir)
    print(f"TensorBoard on http://127.0.0.1:{args.port} (Ctrl-C stops it)", flush=True)
    try:
        return subprocess.call(tensorboard_command(str(run_dir), args.port))
    except KeyboardInterrupt:
        return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mtrl.runtime.merge import MergeConfig, merge

    config = apply_overrides(MergeConfig(method=args.method), args.set)
    experts = [Path(p) for p in args.experts]
    path = merge(Path(args.base), experts, Path(args.out), config)
    print(f"merged {len(experts)} experts ({config.method}) into {path}")
    return 0


def _add_set(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set KEY=VALUE``, repeatable: overrides read by ``mtrl.overrides``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def _add_merge(commands: argparse._SubParsersAction) -> None:
    merge = commands.add_parser(
        "merge", help="merge experts fine-tuned from one base into one checkpoint"
    )
    merge.add_argument("base", help="the checkpoint the experts were fine-tuned from")
    merge.add_argument("experts", nargs="+", help="expert checkpoints (init_from the base)")
    merge.add_argument("--out", required=True, help="run folder of the merged checkpoint")
    merge.add_argument(
        "--method", default="ties", help="task_arithmetic, ties, consensus or adamerging"
    )
    _add_set(merge, "a MergeConfig field, e.g. scale=0.5, ties_keep=0.3, ada_steps=200")
    merge.set_defaults(run=cmd_merge)


def _add_eval(commands: argparse._SubParsersAction) -> None:
    ev = commands.add_parser("eval", help="evaluate a checkpoint and write a report")
    ev.add_argument("checkpoint", help="a checkpoint.pt written by training")
    ev.add_argument(
        "--tasks", nargs="+", help="task ids or suites (default: all of the checkpoint)"
    )
    ev.add_argument("--episodes", type=int, default=10, help="episodes per task and seed")
    ev.add_argument(
        "--seeds", type=int, nargs="+", default=[10_000], help="env seeds (row r: seed+r)"
    )
    ev.add_argument("--temperature", type=float, default=0.0, help="visit-count temperature")
    ev.add_argument(
        "--baselines",
        metavar="FILE_OR_NAME",
        help="bundled column (e.g. BBF_RR8, tdmpc2@100k), CSV task,score,seed, or results.json",
    )
    ev.add_argument("--out", default="eval", help="report folder")
    ev.add_argument("--video", action="store_true", help="a short clip (or transcript) per task")
    ev.add_argument("--workers", type=int, default=1, help="processes, one seed each at a time")
    ev.add_argument(
        "--noop-max",
        type=int,
        metavar="N",
        help="Atari: 1..N random no-ops start each episode (default: the run's "
        "atari.eval_noop_max, 30; 0: none)",
    )
    ev.set_defaults(run=cmd_eval)
    tb = commands.add_parser("tensorboard", help="TensorBoard on 127.0.0.1 for a run")
    tb.add_argument("run_dir")
    tb.add_argument("--port", type=int, default=6006)
    tb.set_defaults(run=cmd_tensorboard)


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
    _add_set(check, "environment setting, e.g. atari.size=84 or dmc.action_repeat=2")
    check.set_defaults(run=cmd_check_envs)
    _add_eval(commands)
    _add_merge(commands)
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

"""Merging against joint training (issue 22's benchmark): a base model trained jointly for a short
budget, one expert per task fine-tuned from it, the experts merged by every method, and each
result evaluated beside the experts, the base and joint training from the same base for the
experts' total env steps.

Per seed, into ``OUT/seed<S>/``: ``base/`` (``launch/<launcher>.py`` for ``--base-minutes``),
``experts/<task>/`` (the task alone, ``init_from`` the base, ``--expert-minutes``), ``joint/``
(all tasks, ``init_from`` the base, the experts' env steps summed), ``merged/<method>/``
(``mtrl merge``) and ``eval/<model>/`` (``mtrl eval``'s report: ``results.json``). Every step
whose output exists is kept, so an interrupted benchmark continues. The report is per task
and method, the mean over seeds with the range over seeds, and ``report.json`` with every
number. A benchmark: it reports, it does not pass or fail.

    python bench/merging.py run --launcher proxy3 --seeds 0 1 --out bench/results/merging
    python bench/merging.py run --methods ties task_arithmetic:scale=0.3 --out ...  # settings
    python bench/merging.py report bench/results/merging
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from learning import alone, launch, launcher_config
from learning_report import task_folder

from mtrl.run_folder import list_checkpoints

METHODS = ("task_arithmetic", "ties", "consensus", "adamerging")


def newest(run_dir: Path) -> Path:
    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        raise SystemExit(f"{run_dir} holds no checkpoint")
    return checkpoints[-1]


def mtrl(*args: str, log: Path) -> None:
    """One ``mtrl`` command, its output in ``log``; a failure stops the benchmark."""
    command = [str(Path(sys.executable).parent / "mtrl"), *args]  # the installed CLI
    print(f"[bench] mtrl {' '.join(args)}", flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise SystemExit(f"mtrl {args[0]} failed ({done.returncode}): see {log}")


def evaluate(checkpoint: Path, out: Path, episodes: int, tasks: Sequence[str] = ()) -> dict:
    if not (out / "results.json").exists():
        chosen = ["--tasks", *tasks] if tasks else []
        command = ["eval", str(checkpoint), "--episodes", str(episodes), *chosen]
        # Not with_suffix: "task_arithmetic_scale0.3" would log to "task_arithmetic_scale0.log".
        mtrl(*command, "--out", str(out), log=out.parent / f"{out.name}.log")
    rows = json.loads((out / "results.json").read_text())["tasks"]
    return {row["task"]: row["mean"] for row in rows}


def one_seed(args: argparse.Namespace, seed: int, out: Path) -> dict[str, dict[str, float]]:
    """Every model of one seed and its evaluation: {model: {task: mean return}}."""
    common = [*args.set, f"seed={seed}"]
    config = launcher_config(args.launcher, args.set)
    tasks = config["tasks"]
    budget = f"max_seconds={args.base_minutes * 60}"
    base_run = launch(args.launcher, out / "base", [*common, budget], args.cpus)
    base = newest(out / "base")
    experts, steps = {}, 0
    for task in tasks:
        folder = out / "experts" / task_folder(task)
        expert = [*common, *alone(task), f"init_from={base}"]
        expert.append(f"max_seconds={args.expert_minutes * 60}")
        steps += launch(args.launcher, folder, expert, args.cpus)["env_steps"]
        experts[task] = newest(folder)
    joint = [*common, f"init_from={base}", f"env_steps={steps}", "max_seconds=0"]
    launch(args.launcher, out / "joint", joint, args.cpus)
    scores = {
        "base": evaluate(base, out / "eval" / "base", args.episodes),
        "joint": evaluate(newest(out / "joint"), out / "eval" / "joint", args.episodes),
        "experts": {
            task: evaluate(path, out / "eval" / f"expert-{task_folder(task)}", args.episodes)[task]
            for task, path in experts.items()
        },
    }
    for spec in args.methods:
        method, options = variant(spec)
        name = folder_of(spec)
        merged = out / "merged" / name
        if not list_checkpoints(merged):
            sets = [a for key in [*args.merge_set, *options] for a in ("--set", key)]
            command = ["merge", str(base), *map(str, experts.values()), "--method", method]
            mtrl(*command, "--out", str(merged), *sets, log=out / "merged" / f"{name}.log")
        scores[spec] = evaluate(newest(merged), out / "eval" / name, args.episodes)
    print(f"[bench] seed {seed}: base {base_run['env_steps']:,} env steps, experts {steps:,}")
    return scores


def variant(spec: str) -> tuple[str, list[str]]:
    """``method`` or ``method:key=value,...`` (``MergeConfig`` fields, e.g.
    ``task_arithmetic:scale=0.3``): the method and its options. The spec names the model in
    the report, so one seed holds several settings of a method side by side."""
    method, _, options = spec.partition(":")
    if method not in METHODS:
        raise argparse.ArgumentTypeError(
            f"unknown merge method {method!r} in {spec!r}; valid: {', '.join(METHODS)}"
        )
    pairs = [pair for pair in options.split(",") if pair]
    bad = [pair for pair in pairs if "=" not in pair]
    if bad:
        raise argparse.ArgumentTypeError(f"options of {spec!r} must be key=value, got {bad}")
    return method, pairs


def folder_of(spec: str) -> str:
    return spec.replace(":", "_").replace(",", "_").replace("=", "")


def checked(spec: str) -> str:
    variant(spec)
    return spec


def report(out: Path) -> None:
    """Per task and model: the mean over seeds [min, max], and each model's mean over tasks
    of (return / expert's return), of the means over seeds and per seed (against that seed's
    experts: the seeds' bases differ, so the per-seed shares show whether a ranking holds)."""
    files = sorted(out.glob("seed*/scores.json"))
    seeds = {path.parent.name: json.loads(path.read_text()) for path in files}
    if not seeds:
        raise SystemExit(f"no seed*/scores.json under {out}")
    first = next(iter(seeds.values()))
    tasks = list(first["experts"])
    # Models every seed has (a method setting added later may cover fewer seeds).
    models = [m for m in first if m != "experts" and all(m in s for s in seeds.values())]
    table = {m: {t: [s[m][t] for s in seeds.values()] for t in tasks} for m in ["experts", *models]}
    lines = ["| model | " + " | ".join(tasks) + " | mean of return / expert's | per seed |"]
    lines.append("|" + "---|" * (len(tasks) + 3))
    experts = {t: np.asarray(table["experts"][t]) for t in tasks}
    for model, by_task in table.items():
        cells = [f"{np.mean(v):.1f} [{min(v):.1f}, {max(v):.1f}]" for v in by_task.values()]
        share = np.mean([np.mean(by_task[t]) / experts[t].mean() for t in tasks])
        per_seed = np.mean([np.asarray(by_task[t]) / experts[t] for t in tasks], axis=0)
        shares = " / ".join(f"{x:.2f}" for x in per_seed)
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {share:.2f} | {shares} |")
    (out / "report.json").write_text(json.dumps({"seeds": list(seeds), "scores": table}, indent=1))
    plot(table, out / "merging.png")
    print("\n".join(lines) + f"\n\n{len(seeds)} seeds: {', '.join(seeds)}; raw: {out}")
    print(f"figure: {out}/merging.png")


def plot(table: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One panel per task: each model's mean return over seeds as a bar, the range over seeds
    as its error bar, the experts' mean as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models, tasks = list(table), list(table["experts"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        values = [np.asarray(table[m][task], dtype=np.float64) for m in models]
        means = np.array([v.mean() for v in values])
        spread = np.array([[m - v.min(), v.max() - m] for m, v in zip(means, values, strict=True)])
        colors = plt.get_cmap("tab20").colors[: len(models)]  # up to 20 models, no repeats
        ax.bar(range(len(models)), means, yerr=spread.T, color=colors)
        ax.axhline(means[0], color="k", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(models)), models, rotation=45, ha="right")
        ax.set_title(task)
        ax.set_ylabel("evaluation return")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("run", help="make what is missing, then report")
    make.add_argument("--launcher", default="proxy3", help="a script in launch/, without .py")
    make.add_argument("--seeds", type=int, nargs="+", default=[0])
    make.add_argument("--base-minutes", type=float, default=10.0)
    make.add_argument("--expert-minutes", type=float, default=5.0)
    make.add_argument(
        "--methods",
        nargs="+",
        type=checked,
        default=list(METHODS),
        help=f"of {', '.join(METHODS)}, each as METHOD or METHOD:key=value,... (MergeConfig)",
    )
    make.add_argument("--episodes", type=int, default=8, help="evaluation episodes per task")
    make.add_argument("--set", action="append", default=[], help="for every training run")
    make.add_argument("--merge-set", action="append", default=[], help="for every merge")
    make.add_argument("--cpus", type=int, default=2, help="CPUs of each run's local Ray")
    make.add_argument("--out", default="bench/results/merging")
    again = commands.add_parser("report", help="the report of seeds made before")
    again.add_argument("out")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    if args.command == "run":
        for seed in args.seeds:
            scores = one_seed(args, seed, out / f"seed{seed}")
            (out / f"seed{seed}" / "scores.json").write_text(json.dumps(scores, indent=1))
    report(out)


if __name__ == "__main__":
    main()

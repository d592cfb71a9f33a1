"""Does the agent learn? One multi-task run against single-task runs of the same wall budget.

Each run is the run every ``launch/*.py`` script makes: ``mtrl.runtime.run`` (the one driver)
on a local Ray bound to 127.0.0.1, or with ``--inline`` the same driver with its actors in this
process. It trains for ``--minutes`` of wall time (or until every task reaches its threshold),
evaluating every ``--eval-every`` env steps with the acting path (temperature 0). It prints
the final evaluation per task against the thresholds, writes
``curves.png`` (return vs wall time per task, multi-task and single-task) and ``runs.json``
into ``--out``. A benchmark: it reports, it does not pass or fail.

    python bench/learning.py --minutes 30 --single --out bench/results/learning
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from mtrl.agents.acting import ActingConfig
from mtrl.agents.gradients import GradientConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.registry import resolve_tasks
from mtrl.runtime import Resources, RunConfig, connect, run
from mtrl.search import SearchConfig

# The bar: CartPole >= 400, cartpole-balance >= 600, the text game solved in >= 80%
# of evaluation episodes. tw-simple-dense is used because random play never solves it
# (the level-1 coin/treasure games are solved by random play most of the time).
THRESHOLDS = {"classic/CartPole": 400.0, "dmc/cartpole-balance": 600.0, "text/tw-simple-dense": 8.0}


def run_name(tasks: tuple[str, ...], seed: int) -> str:
    return f"seed{seed}-" + "-".join(t.replace("/", "_") for t in tasks)


def train(tasks: tuple[str, ...], args: argparse.Namespace) -> dict:
    overrides = (
        ("support_size", 50),
        ("policy_entropy_coef", args.entropy),
        ("discrete_entropy_coef", args.discrete_entropy),
    )
    config = RunConfig(
        tasks=tasks,
        envs_per_task=args.envs,
        env_steps=10**9,
        max_seconds=args.minutes * 60,
        model_overrides=overrides,
        acting=ActingConfig(
            SearchConfig(
                algorithm=args.algorithm,
                num_simulations=args.sims,
                max_num_considered_actions=args.considered,
            ),
            sampled_actions=args.samples,
            mean_candidate=args.mean_candidate,
            explore_epsilon=args.epsilon,
        ),
        replay=ReplayConfig(
            capacity=50_000,
            priority_exponent=args.priority,
            # Only the overrides for this run's tasks (a single-task run drops the others).
            task_discounts=tuple(
                (key, gamma)
                for key, gamma in args.discounts
                if any(key in (spec.id, spec.suite) for spec in resolve_tasks(tasks))
            ),
        ),
        learner=LearnerConfig(
            batch_size=args.batch,
            reanalyse_fraction=args.reanalyse,
            batch_policy=args.batch_policy,
            lr=args.lr,
            # Conflict metrics need per-task Jacobians (~35% of an update with "sum"): log them
            # every 50 updates, not every update.
            gradients=GradientConfig(metrics_every=args.metrics_every),
        ),
        # Learner updates per env step (over all environments), kept by the driver.
        replay_ratio=args.replay_ratio,
        warmup_env_steps=500,
        eval_every=args.eval_every,
        eval_episodes=args.episodes,
        # The untrained model's score is known (random play) and its evaluation costs ~50 s
        # of the budget; the curves come from the training episodes anyway.
        eval_at_start=args.eval_at_start,
        # The thresholds are what the report measures against. As DPS targets (--dps) a task
        # that reaches one stops being collected (and, with DpsSchedule's default, trains from
        # its replay until the next stage switch; session 4, when it left training at once,
        # measured CartPole falling 500 -> ~10 within 8 minutes, bench/learning.md). By default
        # no task is ever "solved", so every task is collected and trained for the whole run.
        targets=tuple(
            (t, THRESHOLDS[t] if args.dps else math.inf) for t in tasks if t in THRESHOLDS
        ),
        seed=args.seed,
        # Every run writes its folder (TensorBoard, scalars.csv, checkpoints) under --out.
        run_dir=str(Path(args.out) / run_name(tasks, args.seed)),
        checkpoint_minutes=args.minutes,  # the final checkpoint (and at most one more)
        log_every_s=30.0,
        # One worker, one search server and the learner share the machine's cores.
        resources=Resources(worker_cpus=0.5, search_cpus=0.5, learner_cpus=1.0),
    )
    result = run(config, inline=args.inline)
    return {
        "tasks": list(tasks),
        "env_steps": result.env_steps,
        "updates": result.updates,
        "seconds": result.seconds,
        "evaluations": result.evaluations,
        "train_episodes": result.train_episodes,
    }


def final_scores(record: dict) -> dict[str, tuple[float, float]]:
    """Per task: the last evaluation's mean return and share of episodes at the threshold."""
    last = record["evaluations"][-1]
    out = {}
    for task, values in last["episodes"].items():
        threshold = THRESHOLDS.get(task, float("inf"))
        out[task] = (float(np.mean(values)), float(np.mean(np.array(values) >= threshold)))
    return out


def training_curve(record: dict, task: str, window: int = 10) -> tuple[list, list]:
    """(minutes, mean return of the last ``window`` training episodes) at each episode end."""
    episodes = [(s, r) for s, t, r in record.get("train_episodes", []) if t == task]
    minutes = [s / 60 for s, _ in episodes]
    returns = [r for _, r in episodes]
    means = [float(np.mean(returns[max(0, i + 1 - window) : i + 1])) for i in range(len(returns))]
    return minutes, means


def plot(runs: dict[str, dict], path: Path) -> None:
    """Per task: training returns (lines, 10-episode means, with exploration) and the
    evaluations (markers, temperature 0) against wall time. Labels starting with "multi" are
    multi-task runs (e.g. one per seed); any other label is a single-task run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    multi = [label for label in runs if label.startswith("multi")]
    tasks = runs[multi[0]]["tasks"]
    colors = {label: f"C{i}" for i, label in enumerate(multi)}
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6))
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        for label, record in runs.items():
            if task not in record["tasks"]:
                continue
            name = label.replace("multi", "multi-task") if label in colors else "single-task"
            color = colors.get(label, "C7")
            ax.plot(*training_curve(record, task), color=color, alpha=0.6, label=f"{name} train")
            minutes = [e["seconds"] / 60 for e in record["evaluations"]]
            ax.plot(
                minutes,
                [e["returns"][task] for e in record["evaluations"]],
                color=color,
                label=f"{name} eval",
                marker="o",
                linestyle="none",
            )
        if task in THRESHOLDS:
            ax.axhline(THRESHOLDS[task], color="grey", linestyle="--", linewidth=1)
        ax.set_title(task)
        ax.set_xlabel("wall time (min)")
        ax.set_ylabel("episode return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def load_runs(pairs: list[str]) -> dict[str, dict]:
    runs = {}
    for pair in pairs:
        label, sep, path = pair.rpartition("=")
        if not sep or not label:
            raise SystemExit(f"--plot-only takes LABEL=RUNS_JSON, got {pair!r}")
        records = json.loads(Path(path).read_text())
        runs[label] = (
            records["multi"] if label.startswith("multi") else next(iter(records.values()))
        )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(THRESHOLDS))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--single", action="store_true", help="also run each task alone")
    parser.add_argument("--envs", type=int, default=4, help="environments per task")
    parser.add_argument("--sims", type=int, default=16)
    parser.add_argument("--algorithm", default="gumbel_muzero")
    parser.add_argument(
        "--considered", type=int, default=16, help="Gumbel: actions considered at the root"
    )
    parser.add_argument("--samples", type=int, default=8, help="K sampled actions (continuous)")
    parser.add_argument("--entropy", type=float, default=0.0, help="policy entropy coefficient")
    parser.add_argument(
        "--discrete-entropy", type=float, default=0.0, help="discrete policy entropy coefficient"
    )
    parser.add_argument("--metrics-every", type=int, default=50)
    parser.add_argument("--epsilon", type=float, default=0.0, help="random-action share")
    parser.add_argument(
        "--priority", type=float, default=0.0, help="prioritized replay exponent (0: uniform)"
    )
    parser.add_argument(
        "--dps", action="store_true", help="thresholds as DPS targets (solved: not collected)"
    )
    parser.add_argument("--mean-candidate", action="store_true", help="policy mean as sample 0")
    parser.add_argument(
        "--replay-ratio", type=float, default=0.25, help="learner updates per env step"
    )
    parser.add_argument(
        "--inline", action="store_true", help="the driver's actors in this process, no Ray"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--batch-policy", default="equal", choices=("equal", "by_need"), help="per-task shares"
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--discount",
        dest="discounts",
        nargs=2,
        action="append",
        default=[],
        metavar=("TASK_OR_SUITE", "GAMMA"),
        type=str,
        help="a task's or a suite's discount (others: 0.997), e.g. --discount text 0.9",
    )
    parser.add_argument(
        "--reanalyse", type=float, default=0.0, help="share of sequences with fresh search targets"
    )
    parser.add_argument("--eval-every", type=int, default=3000)
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument(
        "--eval-at-start", action="store_true", help="also evaluate the untrained model"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results/learning")
    parser.add_argument(
        "--plot-only",
        nargs="+",
        metavar="LABEL=RUNS_JSON",
        help="only plot earlier runs into --out/curves.png: 'multi seed 0=a/runs.json' takes "
        "the multi-task run of a/runs.json, 'classic/CartPole=b/runs.json' its first run",
    )
    args = parser.parse_args()
    args.discounts = [(task, float(gamma)) for task, gamma in args.discounts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        plot(load_runs(args.plot_only), out / "curves.png")
        return
    torch.set_num_threads(args.threads)
    if not args.inline:
        connect(args.threads)
    runs = {"multi": train(tuple(args.tasks), args)}
    if args.single:
        for task in args.tasks:
            runs[task] = train((task,), args)
    (out / "runs.json").write_text(json.dumps(runs, indent=1))
    plot(runs, out / "curves.png")
    print(f"{'task':28} {'threshold':>9} {'multi':>16} {'single':>16}")
    multi = final_scores(runs["multi"])
    for task in args.tasks:
        single = final_scores(runs[task])[task] if task in runs else None
        cells = [f"{m:8.1f} ({s:4.0%})" for m, s in [multi[task], *([single] if single else [])]]
        print(f"{task:28} {THRESHOLDS.get(task, float('nan')):>9g} " + " ".join(cells))
    print(
        f"multi-task: {runs['multi']['env_steps']} env steps, {runs['multi']['updates']} "
        f"updates in {runs['multi']['seconds'] / 60:.1f} min; curves: {out / 'curves.png'}"
    )


if __name__ == "__main__":
    main()

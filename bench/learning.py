"""Does the agent learn? A launcher's multi-task run over several seeds, against each task alone
at the same per-task env steps and at the same wall time, then a report with CIs over seeds.

Every run is ``python launch/<launcher>.py`` in a subprocess (the path users run: its own local
Ray on 127.0.0.1, its config class, ``--set`` overrides), writing its raw results to
``result.json`` in its folder. ``run`` makes the runs (``--parallel`` runs at once on a bigger
machine, ``--cpus`` each) and then the report; ``report`` redraws it from the folders alone.
Runs go seed by seed (a seed's multi-task run, then its tasks alone). Runs that already have
a ``result.json`` are not made again and a run stopped part way continues from its newest
checkpoint, so an interrupted benchmark continues where it stopped. Each run's folder also gets
``machine.json``: the box's matmul speed when the run started and ended (``bench/machine.py``),
since wall-time budgets buy fewer updates on a slower day. A benchmark: it reports, it does not
pass or fail.

    python bench/learning.py run --launcher proxy3 --seeds 0 1 2 3 --out bench/results/proxy3
    python bench/learning.py run --launcher minatar5 --seeds 0 1 2 --single steps \\
        --set 'tasks=["minatar/Breakout","minatar/Freeway","minatar/Asterix"]' --out runs/ma
    python bench/learning.py report bench/results/proxy3
    python bench/learning.py run --launcher dmc100k --seeds 0 --bars dreamerv3@100k --out runs/d
    python bench/learning.py compare runs/sam runs/no-sam   # per task: difference with its CI
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import learning_report as lr
import machine

from mtrl.envs.registry import get_task
from mtrl.eval.baselines import load_baselines
from mtrl.runtime.checkpoint import latest_checkpoint
from mtrl.runtime.results import RESULT_NAME

ROOT = Path(__file__).resolve().parents[1]

# launch/proxy3.py's bars (issue 20): CartPole >= 400 and cartpole-balance >= 600 as the last
# evaluation's mean return, the text game solved (all 8 points) in >= 80 % of its episodes.
BARS = {
    "classic/CartPole": lr.Bar(400.0),
    "dmc/cartpole-balance": lr.Bar(600.0),
    "text/tw-simple-dense": lr.Bar(8.0, kind="solved"),
}
# MinAtar (issue 20): every game at >= 5x the return of the uniform random policy (measured by
# bench/minatar_random.py; the lowest, Seaquest's 0.111, is still well above 0, so 5x random is
# the bar for all five rather than a threshold of the game's own).
RANDOM_MULTIPLE = 5.0


def bars(tasks: Sequence[str], published: str = "") -> dict[str, lr.Bar]:
    """The bar of each task of a run that has one; with ``published`` (a column of the bundled
    tables, e.g. ``dreamerv3@100k`` for launch/dmc100k.py), that column's score instead for the
    tasks it has."""
    out = {task: BARS[task] for task in tasks if task in BARS}
    for task in tasks:
        spec = get_task(task)
        if spec.suite == "minatar" and spec.random_score:
            out[task] = lr.Bar(RANDOM_MULTIPLE * spec.random_score)
    if published:
        table = load_baselines(published)
        out.update({task: lr.Bar(table[task].score) for task in tasks if task in table})
    return out


def script(launcher: str) -> Path:
    """``launch/<launcher>.py``, or the path of a script that takes the launchers' options."""
    path = Path(launcher) if launcher.endswith(".py") else ROOT / "launch" / f"{launcher}.py"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in (ROOT / "launch").glob("*.py")))
        raise SystemExit(f"no launcher {launcher!r} ({path}); launch/ has: {known}")
    return path


def launcher_config(launcher: str, overrides: Sequence[str]) -> dict:
    """The launcher's config with the overrides, as its ``--print-config`` gives it."""
    command = [sys.executable, str(script(launcher)), "--print-config"]
    for override in overrides:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{script(launcher)} refused the config: {done.stderr.strip()}")
    return json.loads(done.stdout)


def alone(task: str) -> list[str]:
    """Overrides that make a launcher's run one of ``task`` alone (its targets and discounts
    of the other tasks are ignored by the run)."""
    return [f"tasks={json.dumps([task])}"]


def finished(run_dir: Path) -> dict | None:
    """The run's result when it ran to its budget. A run stopped by a signal (SIGTERM: a
    session ending, a job cancelled) writes a ``result.json`` too, with ``stopped_by`` set: it
    is not finished, and continues from its checkpoint."""
    result = run_dir / RESULT_NAME
    if not result.exists():
        return None
    record = json.loads(result.read_text())
    return None if record.get("stopped_by") else record


def launch(launcher: str, run_dir: Path, overrides: Sequence[str], cpus: int) -> dict:
    """One run of the launcher into ``run_dir``: skipped when it has its result already, and
    continued from its newest checkpoint when an earlier call was stopped part way."""
    if (record := finished(run_dir)) is not None:
        print(f"[bench] kept {run_dir}", flush=True)
        return record
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(script(launcher)), "--num-cpus", str(cpus)]
    if latest_checkpoint(run_dir) is not None:
        command += ["--resume", str(run_dir)]
    for override in [*overrides, f"run_dir={run_dir}"]:
        command += ["--set", override]
    print(f"[bench] {' '.join(command[1:])}", flush=True)
    machine.record(run_dir, "start")
    started = time.perf_counter()
    with open(run_dir / "launcher.log", "a") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    if code.returncode or not (run_dir / RESULT_NAME).exists():
        raise SystemExit(f"run {run_dir} failed ({code.returncode}): see {run_dir}/launcher.log")
    machine.record(run_dir, "end")
    if (record := finished(run_dir)) is None:
        raise SystemExit(f"run {run_dir} was stopped by a signal; run again to continue it")
    print(f"[bench] done {run_dir} in {time.perf_counter() - started:.0f}s", flush=True)
    return record


@dataclass(frozen=True)
class Job:
    folder: Path
    overrides: tuple[str, ...]
    after: Path | None = None  # the multi-task run whose result sets this run's budget
    mode: str = ""  # a single-task run's budget: "steps" or "time" (see _budget)


def jobs(args: argparse.Namespace, config: dict) -> list[Job]:
    """Every run, seed by seed: a seed's multi-task run, then its tasks alone (so a benchmark
    stopped part way has whole seeds to report)."""
    out = Path(args.out).resolve()
    every: list[Job] = []
    for seed in args.seeds:
        overrides = (*args.set, f"seed={seed}")
        multi = out / "multi" / f"seed{seed}"
        every.append(Job(multi, overrides))
        for mode in args.single:
            for task in config["tasks"]:
                folder = out / f"single-{mode}" / lr.task_folder(task) / f"seed{seed}"
                single = (*overrides, *alone(task))
                every.append(Job(folder, single, after=multi, mode=mode))
    return every


def run(args: argparse.Namespace) -> None:
    config = launcher_config(args.launcher, args.set)
    if len(config["tasks"]) < 2 and args.single:
        raise SystemExit(f"one task ({config['tasks']}): nothing to compare single runs against")
    waiting, done = jobs(args, config), {}
    running: dict[Future, Job] = {}
    with ThreadPoolExecutor(args.parallel) as pool:
        while waiting or running:
            # In order, as many as --parallel allows of the runs whose multi-task run is done.
            for job in [j for j in waiting if j.after is None or j.after in done]:
                if len(running) == args.parallel:
                    break
                waiting.remove(job)
                budget = _budget(job.mode, done[job.after]) if job.after else []
                args_ = (args.launcher, job.folder, [*job.overrides, *budget], args.cpus)
                running[pool.submit(launch, *args_)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                done[running.pop(future).folder] = future.result()
    report(Path(args.out).resolve(), args.bars)


def _budget(mode: str, multi: dict) -> list[str]:
    """A single-task run's budget: the multi-task run's env steps per task (and no wall-time
    limit), or its wall time (and no env-step limit worth the name). It evaluates at the same
    per-task env steps as the multi-task run."""
    share = len(multi["config"]["tasks"])
    every = [f"eval_every={multi['config']['eval_every'] // share}"]
    if mode == "steps":
        return [f"env_steps={multi['env_steps'] // share}", "max_seconds=0", *every]
    return [f"max_seconds={multi['seconds']:.0f}", "env_steps=1000000000", *every]


def report(out: Path, published: str = "") -> None:
    runs = lr.load_runs(out)
    every = bars(runs["multi"]["all"][0]["config"]["tasks"], published)
    summary = lr.summarise(runs, every)
    (out / "report.json").write_text(json.dumps(summary, indent=1))
    lr.plot(runs, every, out / "curves.png")
    print(lr.markdown(summary))
    print(f"\nraw: {out}/**/result.json; summary: {out}/report.json; figure: {out}/curves.png")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("run", help="make the runs (those not made yet), then report")
    make.add_argument(
        "--launcher", default="proxy3", help="a script in launch/ (without .py), or a path"
    )
    make.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    make.add_argument(
        "--single",
        nargs="*",
        choices=("steps", "time"),
        default=[],
        help="also each task alone: at the multi-task run's per-task env steps, its wall time",
    )
    make.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="for every run"
    )
    make.add_argument("--parallel", type=int, default=1, help="runs at once")
    make.add_argument(
        "--cpus",
        type=int,
        default=2,
        help="CPUs of each run's local Ray: at least what the launcher's resources ask for "
        "(2 for tiny, proxy3, minatar5; with fewer the launcher refuses the run)",
    )
    make.add_argument("--out", default="bench/results/learning")
    again = commands.add_parser("report", help="the report of runs made before")
    again.add_argument("out")
    for command in (make, again):
        command.add_argument(
            "--bars",
            default="",
            metavar="COLUMN",
            help="bars from a published column (dreamerv3@100k, ...) for the tasks it has",
        )
    versus = commands.add_parser("compare", help="two run folders' multi-task runs, per task")
    versus.add_argument("first")
    versus.add_argument("second")
    args = parser.parse_args(argv)
    if args.command == "run":
        run(args)
    elif args.command == "report":
        report(Path(args.out), args.bars)
    else:
        first, second = (lr.load_runs(Path(p)) for p in (args.first, args.second))
        print(lr.compare(first, second))


if __name__ == "__main__":
    main()

"""Multi-task toy benchmark of the gradient aggregators against the plain sum. Prints only.

A small shared trunk with an 8-wide bottleneck feeds one head per task. Tasks are synthetic
regressions (``scale * sin(2 u.x)`` along different directions ``u``, so they compete for
the bottleneck) and 3-class classifications of a random linear teacher; regression scales span
10^-2..10^2, so a plain sum is dominated by a few tasks.

Two tables:
1. quality: each task's final held-out loss divided by its loss at initialisation (scale-free),
   per aggregator: the mean and the worst task, the geometric mean of the per-task final loss
   ratios to the plain sum's (< 1: better than the sum), and how many tasks end more than 5%
   better / worse than with the sum;
2. cost: time per update (forward + ``MultiTaskUpdate.backward`` + Adam step, no metrics) for
   2, 8 and 26 tasks, as a ratio to the plain sum's time.

    python bench/gradients.py                        # defaults: ~1 min, 1 thread
    python bench/gradients.py --steps 1000 --aggregators sum upgrad famo
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    available_aggregators,
    by_prefix,
    split_parameters,
)

IN_DIM = 16
BOTTLENECK = 8
NUM_CLASSES = 3


@dataclass(frozen=True)
class BenchConfig:
    steps: int = 300
    batch: int = 256
    lr: float = 1e-2
    quality_tasks: int = 8
    timing_tasks: tuple[int, ...] = (2, 8, 26)
    timing_updates: int = 20
    seed: int = 0


@dataclass(frozen=True)
class TaskSet:
    """Teacher parameters: regression directions/scales, classification teachers."""

    directions: Tensor  # [T, IN_DIM]
    scales: Tensor  # [T]
    is_classification: Tensor  # [T] bool
    teachers: Tensor  # [T, IN_DIM, NUM_CLASSES]

    @property
    def num_tasks(self) -> int:
        return self.directions.shape[0]


def make_tasks(num_tasks: int, seed: int) -> TaskSet:
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(num_tasks, IN_DIM, generator=gen)
    directions = directions / directions.norm(dim=1, keepdim=True)
    scales = 10 ** torch.linspace(-2, 2, num_tasks)
    scales = scales[torch.randperm(num_tasks, generator=gen)]
    return TaskSet(
        directions=directions,
        scales=scales,
        is_classification=torch.arange(num_tasks) % 3 == 2,
        teachers=torch.randn(num_tasks, IN_DIM, NUM_CLASSES, generator=gen),
    )


class MultiTaskNet(nn.Module):
    """Shared trunk with a narrow bottleneck; one linear head per task."""

    def __init__(self, num_tasks: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Linear(IN_DIM, 64), nn.Tanh(), nn.Linear(64, BOTTLENECK), nn.Tanh()
        )
        self.heads = nn.ModuleList(nn.Linear(BOTTLENECK, NUM_CLASSES) for _ in range(num_tasks))

    def task_losses(self, x: Tensor, tasks: TaskSet) -> Tensor:
        features = self.trunk(x)
        return torch.stack(
            [task_loss(head(features), x, tasks, t) for t, head in enumerate(self.heads)]
        )


def task_loss(output: Tensor, x: Tensor, tasks: TaskSet, t: int) -> Tensor:
    if bool(tasks.is_classification[t]):
        labels = (x @ tasks.teachers[t]).argmax(dim=1)
        return nn.functional.cross_entropy(output, labels)
    target = tasks.scales[t] * torch.sin(2.0 * x @ tasks.directions[t])
    return (output[:, 0] - target).pow(2).mean()


def build(num_tasks: int, aggregator: str, seed: int) -> tuple[MultiTaskNet, MultiTaskUpdate]:
    torch.manual_seed(seed)
    model = MultiTaskNet(num_tasks)
    split = split_parameters(model, by_prefix("trunk."))
    names = [f"task{t:02d}" for t in range(num_tasks)]
    config = GradientConfig(aggregator=aggregator, metrics_every=0)
    return model, MultiTaskUpdate.from_config(split, names, config)


def train(aggregator: str, tasks: TaskSet, cfg: BenchConfig) -> Tensor:
    """Final held-out loss of each task divided by its loss at initialisation."""
    model, update = build(tasks.num_tasks, aggregator, cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    x_eval = torch.randn(4096, IN_DIM, generator=gen)
    with torch.no_grad():
        initial = model.task_losses(x_eval, tasks)
    for _ in range(cfg.steps):
        x = torch.randn(cfg.batch, IN_DIM, generator=gen)
        optimizer.zero_grad(set_to_none=True)
        update.backward(model.task_losses(x, tasks))
        optimizer.step()
    with torch.no_grad():
        return model.task_losses(x_eval, tasks) / initial


def make_runner(aggregator: str, num_tasks: int, cfg: BenchConfig) -> Callable[[], float]:
    """A closure timing one forward + aggregated backward + Adam step, in seconds."""
    tasks = make_tasks(num_tasks, cfg.seed)
    model, update = build(num_tasks, aggregator, cfg.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = torch.randn(cfg.batch, IN_DIM)

    def run() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        update.backward(model.task_losses(x, tasks))
        optimizer.step()
        return time.perf_counter() - start

    return run


def time_per_update(aggregators: Sequence[str], num_tasks: int, cfg: BenchConfig) -> dict:
    """Best-of-N seconds per update; runs are interleaved so machine load hits all alike."""
    runners = {name: make_runner(name, num_tasks, cfg) for name in aggregators}
    for run in runners.values():  # one-off costs: vmap tracing, lazy state, allocator
        run()
        run()
    samples: dict[str, list[float]] = {name: [] for name in aggregators}
    order = list(runners)
    shuffler = random.Random(cfg.seed)
    for _ in range(cfg.timing_updates):
        shuffler.shuffle(order)
        for name in order:
            samples[name].append(runners[name]())
    return {name: min(values) for name, values in samples.items()}


def quality_table(aggregators: Sequence[str], cfg: BenchConfig) -> None:
    tasks = make_tasks(cfg.quality_tasks, cfg.seed)
    print(
        f"## quality: {cfg.quality_tasks} tasks, {cfg.steps} Adam steps (lr {cfg.lr}), "
        f"batch {cfg.batch}; regression scales {tasks.scales.min():.2g}..{tasks.scales.max():.2g}"
    )
    print("normalised loss = final held-out loss / loss at init (lower is better)")
    results = {name: train(name, tasks, cfg) for name in aggregators}
    base = results.get("sum")
    header = f"{'aggregator':<12} {'mean norm.':>10} {'worst norm.':>11}"
    if base is not None:
        header += f" {'geo-mean vs sum':>15} {'better/worse than sum by >5%':>29}"
    print(header)
    for name, ratios in results.items():
        row = f"{name:<12} {ratios.mean():>10.3f} {ratios.max():>11.3f}"
        if base is not None:
            rel = ratios / base
            geo = math.exp(float(rel.log().mean()))
            better, worse = int((rel < 0.95).sum()), int((rel > 1.05).sum())
            row += f" {geo:>15.3f} {f'{better} / {worse} of {len(rel)}':>29}"
        print(row)
    print()


def timing_table(aggregators: Sequence[str], cfg: BenchConfig) -> None:
    print(
        f"## cost: time per update / sum's (forward + backward + Adam, batch {cfg.batch}, "
        f"best of {cfg.timing_updates} interleaved runs); first row: sum in ms"
    )
    names = ["sum", *[a for a in aggregators if a != "sum"]]
    times = {t: time_per_update(names, t, cfg) for t in cfg.timing_tasks}
    print(f"{'aggregator':<12}" + "".join(f" {f'T={t}':>8}" for t in cfg.timing_tasks))
    print(f"{'sum (ms)':<12}" + "".join(f" {times[t]['sum'] * 1e3:>8.2f}" for t in times))
    for name in names[1:]:
        print(f"{name:<12}" + "".join(f" {times[t][name] / times[t]['sum']:>8.2f}" for t in times))
    print()


def parse_args() -> tuple[BenchConfig, list[str], int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=BenchConfig.steps)
    parser.add_argument("--quality-tasks", type=int, default=BenchConfig.quality_tasks)
    parser.add_argument("--timing-tasks", type=int, nargs="+", default=[2, 8, 26])
    parser.add_argument("--aggregators", nargs="+", default=list(available_aggregators()))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    unknown = sorted(set(args.aggregators) - set(available_aggregators()))
    if unknown:
        parser.error(f"unknown aggregators {unknown}; valid: {list(available_aggregators())}")
    cfg = BenchConfig(
        steps=args.steps,
        quality_tasks=args.quality_tasks,
        timing_tasks=tuple(args.timing_tasks),
        seed=args.seed,
    )
    return cfg, args.aggregators, args.threads


def main() -> None:
    cfg, aggregators, threads = parse_args()
    torch.set_num_threads(threads)
    start = time.perf_counter()
    quality_table(aggregators, cfg)
    timing_table(aggregators, cfg)
    elapsed = time.perf_counter() - start
    print(f"total {elapsed:.1f}s on {threads} thread(s), torch {torch.__version__}")


if __name__ == "__main__":
    main()

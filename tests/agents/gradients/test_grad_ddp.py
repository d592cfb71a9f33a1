"""Two CPU ranks (gloo), each with half the batch, must reproduce the one-process update (with
task-based SAM too: the ranks perturb by the same all-reduced gradients)."""

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    SamConfig,
    all_reduce_mean,
    by_prefix,
    split_parameters,
)

AGGREGATORS = ("upgrad", "famo", "gradnorm", "uncertainty", "upgrad+sam", "famo+sam")
NUM_TASKS = 3


def make_problem() -> tuple[nn.ModuleDict, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.ModuleDict(
        {
            "trunk": nn.Sequential(nn.Linear(4, 6), nn.Tanh()),
            "heads": nn.Linear(6, NUM_TASKS),  # column i is task i's head
        }
    )
    x = torch.randn(8, 4)
    y = torch.randn(8, NUM_TASKS) * torch.tensor([1.0, 5.0, 0.2])
    return model, x, y


def run_updates(model: nn.ModuleDict, x: torch.Tensor, y: torch.Tensor, name: str, reduce_fn):
    """Two updates (so stateful aggregators use their state); returns the grads of the last."""
    split = split_parameters(model, by_prefix("trunk."))
    aggregator, _, sam = name.partition("+")
    update = MultiTaskUpdate.from_config(
        split,
        [f"t{i}" for i in range(NUM_TASKS)],
        GradientConfig(aggregator=aggregator),
        reduce_fn,
        sam=SamConfig(rho=0.05, params="all") if sam else None,
    )

    def losses() -> torch.Tensor:
        return (model["heads"](model["trunk"](x)) - y).pow(2).mean(dim=0)

    for _ in range(2):
        model.zero_grad(set_to_none=True)
        update.backward(losses(), closure=losses)
    return [p.grad.clone() for p in model.parameters()]


def worker(rank: int, world: int, store_path: str, out_dir: str) -> None:
    store = dist.FileStore(store_path, world)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world)
    try:
        model, x, y = make_problem()
        half = slice(rank * 4, rank * 4 + 4)
        results = {
            name: run_updates(model, x[half], y[half], name, all_reduce_mean)
            for name in AGGREGATORS
        }
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_match_one_process(tmp_path: Path) -> None:
    mp.spawn(worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    model, x, y = make_problem()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        for name in AGGREGATORS:
            expected = run_updates(model, x, y, name, None)
            for g, e in zip(got[name], expected, strict=True):
                torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)

"""CUDA search throughput (needs a GPU): tree-only sims/s, CUDA graphs, mctx side by side, and
the share of a real world-model search spent in the tree kernels.

    PYTHONPATH=. python bench/search_cuda.py                  # everything, ~3 min on an H100
    PYTHONPATH=. python bench/search_cuda.py --skip-real      # tree-only tables
    PYTHONPATH=. python bench/search_cuda.py --skip-tree      # real-model share only

Tree-only: fake models that cost nothing (they return precomputed device tensors), S = 50,
A = 18. "eager" runs the Python loop (two kernel launches per simulation plus the loop's own
overhead); "graph" replays the whole search captured as one CUDA graph (GraphedSearch). The
C++ CPU backend runs on the same machine's cores for the ratio, and mctx (JAX, jitted) on the
same GPU when it is importable. Real model: mtrl's WorldModel on 8 Atari tasks; the tree's
share of a search is bounded by (host time inside the tree backend's calls + GPU time of the
tree kernels from the torch profiler) / search wall time. Prints, never fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BEST = [0.0]  # best time of the last `timed` call
sys.path.insert(0, str(ROOT))

from search import run_peer  # bench/search.py, this script's folder  # noqa: E402

from mtrl.search import GraphedSearch, ModelOutput, RootInput, SearchConfig, search  # noqa: E402


def timed(run: Callable[[], object], repeats: int, cuda: bool = True) -> float:
    """Median seconds per run (after two warm-ups), the GPU drained before and after each.
    The best run is kept in BEST for the tables (medians move with the host's jitter)."""
    for _ in range(2):
        run()
    seconds = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    BEST[0] = min(seconds)
    return statistics.median(seconds)


def fake_model(kind: str, batch: int, num_actions: int, device: torch.device) -> tuple:
    """(root, recurrent_fn): "zeros" gives uniform logits and zero values (wide trees);
    "random" cycles through 8 precomputed random outputs (deeper, uneven trees)."""
    generator = torch.Generator().manual_seed(0)
    count = 1 if kind == "zeros" else 8
    scale = 0.0 if kind == "zeros" else 1.0
    logits = (torch.randn(count, batch, num_actions, generator=generator) * scale).to(device)
    values = (torch.randn(count, batch, generator=generator) * scale).to(device)
    ids = torch.arange(batch, device=device)
    step = [0]

    def recurrent_fn(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
        i = step[0] = (step[0] + 1) % count
        return ModelOutput(logits[i], values[i], 0.1 * values[i], ids)

    root = RootInput(logits[0], values[0], ids)
    return root, recurrent_fn


def bench_mtrl(mode: str, algorithm: str, kind: str, batch: int, args: argparse.Namespace) -> float:
    device = torch.device("cpu" if mode == "cpp" else "cuda")
    root, model = fake_model(kind, batch, args.actions, device)
    config = SearchConfig(algorithm=algorithm, num_simulations=args.sims)
    if mode == "graph":
        graphed = GraphedSearch(model, config)
        return timed(lambda: graphed(root), args.repeats)
    backend = "cpp" if mode == "cpp" else "cuda"
    return timed(lambda: search(root, model, config, backend=backend), args.repeats, mode != "cpp")


def bench_mctx(algorithm: str, kind: str, batch: int, args: argparse.Namespace) -> float | str:
    """bench/search.py's mctx runner in a child process (JAX on this GPU): median seconds."""
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"  # the child shares torch's GPU
    case = (algorithm, kind, batch, args.sims, args.actions, args.repeats)
    result = run_peer(sys.executable, "mctx", *case)
    return result if isinstance(result, str) else float(result[1])


def tree_table(args: argparse.Namespace) -> None:
    print(f"## tree only: S={args.sims} A={args.actions}, median of {args.repeats}")
    print("sims/s from the median run (best run in brackets); xN = this row's median time /")
    print("mtrl-cuda-graph's (how many times faster the graph is)")
    for kind in args.kinds:
        for batch in args.batch:
            for algorithm in ("muzero", "gumbel_muzero"):
                rows: dict[str, float | str] = {}
                best: dict[str, float] = {}
                for mode in ("graph", "eager", "cpp"):
                    if mode == "cpp" and batch > args.cpp_max_batch:
                        continue
                    name = f"mtrl-cuda-{mode}" if mode != "cpp" else "mtrl-cpp"
                    rows[name] = bench_mtrl(mode, algorithm, kind, batch, args)
                    best[name] = BEST[0]
                if not args.skip_mctx:
                    rows["mctx-gpu"] = bench_mctx(algorithm, kind, batch, args)
                print_rows(kind, batch, algorithm, args.sims, rows, best)


def print_rows(
    kind: str, batch: int, algorithm: str, sims: int, rows: dict, best: dict[str, float]
) -> None:
    ours = rows["mtrl-cuda-graph"]
    for name, seconds in rows.items():
        label = f"{kind:6s} B={batch:<5d} {algorithm:14s} {name:16s}"
        if isinstance(seconds, str):
            print(f"{label} {seconds}")
            continue
        fastest = f"  (best {batch * sims / best[name]:12,.0f})" if name in best else ""
        print(
            f"{label} {batch * sims / seconds:12,.0f} sims/s{fastest:25s} {seconds * 1e3:7.2f} ms"
            f"  x{seconds / ours:6.2f}"
        )


def atari_roots(model: torch.nn.Module, tasks: object, batch: int, device: torch.device) -> tuple:
    from mtrl.world_models.types import Observations

    task_ids = torch.arange(batch, device=device) % len(tasks)  # type: ignore[arg-type]
    obs = Observations(
        task_ids=task_ids,
        image=torch.randint(0, 255, (batch, 3, 64, 64), dtype=torch.uint8, device=device),
        image_rows=torch.arange(batch, device=device),
        vector=torch.zeros(0, 1, device=device),
        vector_rows=torch.zeros(0, dtype=torch.int64, device=device),
        text=(),
        text_rows=torch.zeros(0, dtype=torch.int64, device=device),
        commands=(),
    )
    return model.initial_inference(obs)  # type: ignore[operator]


def bench_real_model(preset_name: str, batch: int, args: argparse.Namespace) -> None:
    from mtrl.agents.acting import NodeStore
    from mtrl.envs import get_suite
    from mtrl.envs.batch import TaskSet
    from mtrl.world_models import Actions, WorldModel, preset

    device = torch.device("cuda")
    tasks = TaskSet(get_suite("atari8"))
    model = WorldModel(tasks, preset(preset_name)).to(device).eval()
    sims, actions = args.sims, args.actions
    with torch.inference_mode():
        root = atari_roots(model, tasks, batch, device)
        store = NodeStore(root.state, sims + 1)
        zero_vector = torch.zeros(batch, 1, device=device)
        rows = torch.arange(batch, device=device)
        step = [0]

        def recurrent_fn(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
            step[0] += 1
            pred = model.recurrent_inference(store.read(parent), Actions(action, zero_vector))
            child = step[0] * batch + rows
            store.write(child, pred.state)
            logits = pred.policy_logits[:, :actions].float()
            return ModelOutput(logits, pred.value.float(), pred.reward.float(), child)

        root_input = RootInput(root.policy_logits[:, :actions].float(), root.value.float(), rows)
        for algorithm in ("muzero", "gumbel_muzero"):
            config = SearchConfig(algorithm=algorithm, num_simulations=sims, backend="cuda")

            def whole(config: SearchConfig = config) -> None:
                step[0] = 0
                search(root_input, recurrent_fn, config)

            total = timed(whole, args.real_repeats)
            host = tree_host_seconds(whole)
            gpu = tree_kernel_seconds(whole)
            print(
                f"{preset_name:5s} B={batch:<5d} {algorithm:14s} search {total * 1e3:8.1f} ms  "
                f"tree calls (host) {host * 1e3:6.2f} ms  tree kernels (GPU) {gpu * 1e3:6.2f} ms"
                f"  tree share <= {100 * (host + gpu) / total:5.2f}%"
            )


class TimedBackend:
    """Wraps the search's backend and adds up the host time spent in its calls."""

    seconds = 0.0

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def select(self, sim: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = time.perf_counter()
        try:
            return self.inner.select(sim)  # type: ignore[attr-defined]
        finally:
            TimedBackend.seconds += time.perf_counter() - start

    def expand_and_backup(self, sim: int, out: ModelOutput) -> None:
        start = time.perf_counter()
        self.inner.expand_and_backup(sim, out)  # type: ignore[attr-defined]
        TimedBackend.seconds += time.perf_counter() - start


def tree_host_seconds(run: Callable[[], None]) -> float:
    """Host time inside the tree backend's calls during one search (launches and checks)."""
    from mtrl.search import loop

    original = loop.make_backend
    loop.make_backend = lambda *a: TimedBackend(original(*a))  # type: ignore[assignment]
    try:
        TimedBackend.seconds = 0.0
        run()
        torch.cuda.synchronize()
        return TimedBackend.seconds
    finally:
        loop.make_backend = original


def tree_kernel_seconds(run: Callable[[], None]) -> float:
    """GPU time of the tree kernels in one search, from the torch profiler's CUDA trace."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    micros = 0.0
    for event in prof.key_averages():
        if "select_kernel" in event.key or "expand_backup_kernel" in event.key:
            micros += getattr(event, "device_time_total", 0.0) or event.cuda_time_total
    return micros * 1e-6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--sims", type=int, default=50)
    parser.add_argument("--actions", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--real-repeats", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["zeros", "random"])
    parser.add_argument("--cpp-max-batch", type=int, default=1024)
    parser.add_argument("--skip-mctx", action="store_true")
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-tree", action="store_true")
    parser.add_argument("--real", nargs="+", default=["small:256", "small:1024", "base:1024"])
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench/search_cuda.py needs a CUDA device")
    os.environ.setdefault("MTRL_SEARCH_THREADS", str(os.cpu_count() or 1))
    print(
        f"{torch.cuda.get_device_name()}, torch {torch.__version__}, CPU threads for mtrl-cpp "
        f"{os.environ['MTRL_SEARCH_THREADS']}"
    )
    if not args.skip_tree:
        tree_table(args)
    if not args.skip_real:
        print(f"\n## real model: WorldModel on atari8, S={args.sims}, A={args.actions}, eager loop")
        for case in args.real:
            name, batch = case.split(":")
            bench_real_model(name, int(batch), args)


if __name__ == "__main__":
    main()

"""Search throughput: simulations per second of mtrl's batched MCTS beside LightZero and mctx.

    python bench/search.py                      # B in {16, 256, 1024}, S = 50, A = 18
    python bench/search.py --peers-python /tmp/peers/bin/python

Fake models cost nothing (they hand back precomputed arrays), so the numbers measure the tree
work plus each library's per-simulation overhead. "zeros" returns uniform logits and zero
values (wide, shallow trees); "random" cycles through 64 precomputed random outputs (deeper,
uneven trees). Peers run in their own interpreter (they are not project dependencies); an
absent peer is skipped with a note. A last section runs a real 2-layer MLP dynamics model and
reports the share of the search spent outside the model. Prints ratios; passes or fails nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def fake_model(kind: str, batch: int, num_actions: int) -> Callable[..., tuple[np.ndarray, ...]]:
    ids = np.arange(batch, dtype=np.int64)
    if kind == "zeros":
        logits = np.zeros((1, batch, num_actions), np.float32)
        values = rewards = np.zeros((1, batch), np.float32)
    else:
        rng = np.random.default_rng(0)
        logits = rng.standard_normal((64, batch, num_actions)).astype(np.float32)
        values = rng.standard_normal((64, batch)).astype(np.float32)
        rewards = (0.1 * rng.standard_normal((64, batch))).astype(np.float32)
    step = [0]

    def model_fn(parent_ids: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        i = step[0] = (step[0] + 1) % len(logits)
        return logits[i], values[i], rewards[i], ids

    model_fn.root = (logits[0], values[0], ids)  # type: ignore[attr-defined]
    return model_fn


Timing = tuple[float, float, float]  # best wall s, median wall s, best CPU s (all threads)


def timed(run: Callable[[], object], repeats: int) -> Timing:
    """Seconds per run over `repeats` runs after one warm-up run. CPU time (summed over the
    process's threads) counts work, not waiting: on a shared machine it is the steadier number,
    and with one thread it bounds what one quiet core does."""
    run()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return min(seconds), statistics.median(seconds), min(cpu_seconds)


def timed_together(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, Timing]:
    """`timed` for several runs at once, alternating them: a load change during the
    measurement falls on all of them alike, so their ratio is steadier than separate runs'."""
    for run in runs.values():
        run()
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: (min(wall[name]), statistics.median(wall[name]), min(cpu[name])) for name in runs}


def mtrl_run(
    backend: str, algorithm: str, kind: str, batch: int, sims: int, num_actions: int
) -> Callable[[], object]:
    sys.path.insert(0, str(ROOT))
    from mtrl.search import bench_api

    model = fake_model(kind, batch, num_actions)
    logits, values, ids = model.root  # type: ignore[attr-defined]

    def run() -> object:
        return bench_api.search(
            logits, values, ids, model, sims, algorithm=algorithm, search_backend=backend
        )

    return run


def bench_lightzero(kind: str, batch: int, sims: int, num_actions: int, repeats: int) -> Timing:
    """LightZero 0.2.0's ctree driven the way its MuZeroMCTSCtree.search loop drives it
    (Python lists in and out every simulation), minus the network."""
    from lzero.mcts.ctree.ctree_muzero import mz_tree

    model = fake_model(kind, batch, num_actions)
    root_logits, _, _ = model.root  # type: ignore[attr-defined]
    legal = [list(range(num_actions)) for _ in range(batch)]
    to_play = [-1] * batch

    def run() -> object:
        roots = mz_tree.Roots(batch, legal)
        roots.prepare_no_noise([0.0] * batch, root_logits.tolist(), to_play)
        stats = mz_tree.MinMaxStatsList(batch)
        stats.set_delta(0.01)
        for sim in range(sims):
            results = mz_tree.ResultsWrapper(num=batch)
            _, _, actions, virtual_to_play = mz_tree.batch_traverse(
                roots, 19652, 1.25, 0.997, stats, results, to_play
            )
            logits, values, rewards, _ = model(None, np.asarray(actions))
            mz_tree.batch_backpropagate(
                sim + 1,
                0.997,
                rewards.tolist(),
                values.tolist(),
                logits.tolist(),
                stats,
                results,
                virtual_to_play,
            )
        return roots.get_distributions()

    return timed(run, repeats)


def bench_mctx(
    algorithm: str, kind: str, batch: int, sims: int, num_actions: int, repeats: int
) -> Timing:
    """mctx's jitted policy with a recurrent_fn that returns constant arrays."""
    import jax
    import jax.numpy as jnp
    import mctx

    model = fake_model(kind, batch, num_actions)
    root_logits, root_values, _ = model.root  # type: ignore[attr-defined]
    logits, values = jnp.asarray(root_logits), jnp.asarray(root_values)

    def recurrent_fn(params: object, rng: object, action: object, embedding: object) -> tuple:
        out = mctx.RecurrentFnOutput(
            reward=values * 0.1,
            discount=jnp.full_like(values, 0.997),
            prior_logits=logits,
            value=values,
        )
        return out, embedding

    root = mctx.RootFnOutput(prior_logits=logits, value=values, embedding=jnp.zeros(batch))
    if algorithm == "muzero":
        policy = jax.jit(
            lambda key: mctx.muzero_policy((), key, root, recurrent_fn, num_simulations=sims)
        )
    else:
        policy = jax.jit(
            lambda key: mctx.gumbel_muzero_policy(
                (), key, root, recurrent_fn, num_simulations=sims, max_num_considered_actions=16
            )
        )
    key = jax.random.PRNGKey(0)
    return timed(lambda: jax.block_until_ready(policy(key).action_weights), repeats)


def run_peer(
    python: str,
    peer: str,
    algorithm: str,
    kind: str,
    batch: int,
    sims: int,
    num_actions: int,
    repeats: int,
) -> Timing | str:
    command = [
        python,
        __file__,
        "--peer",
        peer,
        "--algorithm",
        algorithm,
        "--kind",
        kind,
        "--batch",
        str(batch),
        "--sims",
        str(sims),
        "--actions",
        str(num_actions),
        "--repeats",
        str(repeats),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()
        return f"skipped: {lines[-1][:100]}"
    best, median, cpu = json.loads(done.stdout.strip().splitlines()[-1])
    return best, median, cpu


def bench_real_model(batch: int, sims: int, num_actions: int, hidden: int) -> None:
    """A 2-layer MLP dynamics + heads in torch; time inside the model vs the whole search."""
    sys.path.insert(0, str(ROOT))
    import torch

    from mtrl.search import ModelOutput, RootInput, SearchConfig, search

    torch.manual_seed(0)
    dynamics = torch.nn.Sequential(
        torch.nn.Linear(hidden + num_actions, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
    )
    heads = torch.nn.Linear(hidden, num_actions + 2)
    states = torch.zeros(batch * (sims + 1), hidden)  # embedding id -> latent state
    states[:batch] = torch.randn(batch, hidden)
    model_seconds = [0.0]
    next_id = [batch]

    @torch.no_grad()
    def recurrent_fn(parent_ids: torch.Tensor, actions: torch.Tensor) -> ModelOutput:
        start = time.perf_counter()
        one_hot = torch.nn.functional.one_hot(actions, num_actions).float()
        latent = dynamics(torch.cat([states[parent_ids], one_hot], dim=1))
        ids = torch.arange(next_id[0], next_id[0] + batch)
        states[ids] = latent
        next_id[0] += batch
        out = heads(latent)
        result = ModelOutput(
            out[:, :num_actions].contiguous(), out[:, -2].contiguous(), out[:, -1].contiguous(), ids
        )
        model_seconds[0] += time.perf_counter() - start
        return result

    root = RootInput(torch.randn(batch, num_actions), torch.zeros(batch), torch.arange(batch))
    print(
        f"\nreal model: 2-layer MLP dynamics, hidden {hidden}, B={batch}, S={sims}, A={num_actions}"
    )
    for backend in ("cpp", "torch"):
        for algorithm in ("muzero", "gumbel_muzero"):
            config = SearchConfig(algorithm=algorithm, num_simulations=sims, backend=backend)
            next_id[0] = batch
            search(root, recurrent_fn, config)  # warm-up
            model_seconds[0], next_id[0] = 0.0, batch
            start = time.perf_counter()
            search(root, recurrent_fn, config)
            total = time.perf_counter() - start
            tree = total - model_seconds[0]
            print(
                f"  {backend:6s} {algorithm:14s} search {total * 1e3:7.1f} ms  model "
                f"{model_seconds[0] * 1e3:7.1f} ms  tree+loop {tree * 1e3:6.1f} ms "
                f"({100 * tree / total:4.1f}% of the search)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 256, 1024])
    parser.add_argument("--sims", type=int, default=50)
    parser.add_argument("--actions", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--reference-repeats", type=int, default=2, help="repeats for the slow torch reference"
    )
    parser.add_argument("--kinds", nargs="+", default=["zeros", "random"])
    parser.add_argument("--backends", nargs="+", default=["cpp", "torch"])
    parser.add_argument(
        "--peers-python",
        default="/tmp/peers/bin/python",
        help="interpreter with lightzero and/or mctx installed",
    )
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (model, per-search ops)"
    )
    parser.add_argument(
        "--tree-threads", type=int, default=2, help="threads of the C++ tree kernels"
    )
    parser.add_argument("--peer", help=argparse.SUPPRESS)
    parser.add_argument("--algorithm", default="muzero", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="zeros", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:  # child process inside the peers' interpreter
        bench = {
            "lightzero": lambda: bench_lightzero(
                args.kind, args.batch[0], args.sims, args.actions, args.repeats
            ),
            "mctx": lambda: bench_mctx(
                args.algorithm, args.kind, args.batch[0], args.sims, args.actions, args.repeats
            ),
        }[args.peer]
        print(json.dumps(bench()))
        return
    import torch

    # Tree threads are read when the first search starts; torch's OpenMP threads are kept to
    # one by default: on a loaded shared box, a torch op that enters an OpenMP region waited for
    # a scheduler slice (1-10 ms, measured), which swamps a 5 ms search.
    os.environ["MTRL_SEARCH_THREADS"] = str(args.tree_threads)
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    run_table(args)
    bench_real_model(256, args.sims, args.actions, args.hidden)
    print(f"load average after: {os.getloadavg()[0]:.2f} (other processes share these cores)")


def run_table(args: argparse.Namespace) -> None:
    import torch

    have_peers = Path(args.peers_python).exists()
    print(
        f"S={args.sims} A={args.actions}, torch threads {torch.get_num_threads()}, tree threads "
        f"{args.tree_threads}, "
        f"best / median of {args.repeats} ({args.reference_repeats} for mtrl-torch); "
        "xN = this row's best time / mtrl-cpp's"
    )
    if not have_peers:
        print(f"peers skipped: no interpreter at {args.peers_python} (see bench/README.md)")
    algorithms = ("muzero", "gumbel_muzero")
    for kind in args.kinds:
        for batch in args.batch:
            case = (kind, batch, args.sims, args.actions)
            # The two C++ searches alternate, so their ratio is read off the same conditions.
            cpp = (
                timed_together({a: mtrl_run("cpp", a, *case) for a in algorithms}, args.repeats)
                if "cpp" in args.backends
                else {}
            )
            for algorithm in algorithms:
                rows: list[tuple[str, Timing | str]] = [
                    (
                        f"mtrl-{backend}",
                        cpp[algorithm]
                        if backend == "cpp"
                        else timed(mtrl_run(backend, algorithm, *case), args.reference_repeats),
                    )
                    for backend in args.backends
                ]
                if have_peers:
                    peer_case = (algorithm, kind, batch, args.sims, args.actions, args.repeats)
                    if algorithm == "muzero":
                        lightzero = run_peer(args.peers_python, "lightzero", *peer_case)
                        rows.append(("lightzero-ctree", lightzero))
                    rows.append(("mctx", run_peer(args.peers_python, "mctx", *peer_case)))
                print_rows(kind, batch, algorithm, args.sims, rows)
            if cpp:
                (mz_best, mz_median, _), (gm_best, gm_median, _) = cpp.values()
                print(
                    f"{kind:6s} B={batch:<5d} mtrl-cpp gumbel_muzero / muzero speed (alternated "
                    f"runs): best x{mz_best / gm_best:.2f}, median x{mz_median / gm_median:.2f}"
                )


def print_rows(
    kind: str,
    batch: int,
    algorithm: str,
    sims: int,
    rows: list[tuple[str, Timing | str]],
) -> None:
    """Wall-clock best and median, CPU-time best, and xN: this row's best wall time over
    mtrl-cpp's (how many times faster mtrl-cpp is)."""
    ours = rows[0][1]
    for name, result in rows:
        label = f"{kind:6s} B={batch:<5d} {algorithm:14s} {name:16s}"
        if isinstance(result, str):
            print(f"{label} {result}")
            continue
        best, median, cpu = result
        ratio = best / ours[0] if isinstance(ours, tuple) else float("nan")
        sims_total = batch * sims
        print(
            f"{label} {sims_total / best:11,.0f} sims/s (median {sims_total / median:11,.0f}; "
            f"per CPU-s {sims_total / max(cpu, 1e-9):11,.0f})  x{ratio:6.2f}"
        )


if __name__ == "__main__":
    main()

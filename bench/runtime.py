"""Runtime throughput on this machine: real Ray runs of the launch configs, and LightZero.

    python bench/runtime.py                                  # every case (~25 min, 2 cores)
    python bench/runtime.py --cases tiny-1,tiny-2 --seconds 60
    python bench/runtime.py --peers-python /tmp/peers/bin/python   # also measure LightZero

Every case is a real run (driver, rollout workers, search server, replay shard, learner on a
local Ray bound to 127.0.0.1) with back-pressure off, so collection and learning overlap and
each goes as fast as it can on the shared cores; the ``-e2e`` case keeps back-pressure on, so
the learner holds the replay ratio while collection and learning overlap (end to end).
Rates are taken over a steady window: from the first learner result to the end
(``--seconds`` of wall time after learning started); "collect alone" is the warm-up before
the learner starts. A search call is one batched
search over every environment of a worker; simulations/s = roots/s x simulations.

FLOPs of one search call and one learner update at the case's sizes are counted with
``torch.utils.flop_counter`` in this process, and turned into achieved GFLOP/s against the
fp32 matmul rate measured here first. The LightZero section compares the ``unizero-pong``
case (a dense 768-d, 4-layer, 8-head transformer like UniZero's Atari model, 50 simulations,
batch 64) with LightZero's UniZero on Pong, measured by ``bench/peers/lightzero_unizero.py``
in the peers' interpreter when it exists, else the figures quoted in issue #9 (labelled so).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from torch.utils.flop_counter import FlopCounterMode

from mtrl.agents.acting import ActingConfig, BatchedActor
from mtrl.agents.collect import Collector
from mtrl.agents.learner import Learner, LearnerConfig
from mtrl.agents.replay import TaskReplay
from mtrl.envs.vector import MultiTaskEnv
from mtrl.runtime import Resources, RunConfig
from mtrl.runtime.config import from_json, to_json
from mtrl.runtime.driver import Driver
from mtrl.runtime.launch import connect
from mtrl.runtime.topology import resolve_run_tasks
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

ROOT = Path(__file__).resolve().parent.parent


def launch_config(script: str, name: str) -> type[RunConfig]:
    """Config class ``name`` of ``launch/<script>.py``, loaded from its file: the launch
    scripts are not a package, and their values are read from them rather than copied here."""
    spec = importlib.util.spec_from_file_location(f"launch_{script}", ROOT / f"launch/{script}.py")
    assert spec is not None and spec.loader is not None, script
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look the module up
    spec.loader.exec_module(module)
    return getattr(module, name)


Atari8Config = launch_config("atari8", "Atari8Config")
TinyConfig = launch_config("tiny", "TinyConfig")

# UniZero's Atari world model size (LightZero zoo/atari/config/atari_unizero_config.py:
# embed 768, 4 layers, 8 heads, GPT-style 4x MLP). A SwiGLU of hidden 2048 has the MLP's
# 4.7 M weights per layer; no MoE, no LoRA: the same dense size, the same FLOPs per token.
UNIZERO_SIZE = (
    ("embed_dim", 768),
    ("num_layers", 4),
    ("num_heads", 8),
    ("num_experts", 0),
    ("shared_expert", False),
    ("expert_hidden", 2048),
    ("lora_count", 0),
    # The image encoder at LightZero's cost: 9.7 GFLOP per learner sample against its 11.9
    # (the (64, 128, 256) default costs 26.9, ~2.3x the peer's work per sample).
    ("image_channels", (32, 64, 128)),
)
# Issue #9's LightZero figures on a 2-core machine like this one, used only when the peer
# cannot be measured here (labelled "quoted" in the output).
LIGHTZERO_QUOTED = {"env_steps_per_s": 4.9, "samples_per_s": 6.0}
# Workers mostly wait on the search server; one core each for search and learning.
CPU_ONLY = Resources(worker_cpus=0.0, search_cpus=1.0, learner_cpus=1.0)
UNTIMED = {"eval_episodes": 0, "checkpoint_minutes": 1e6, "replay_ratio_slack": 10**9}


def unizero_pong(int8: bool = False) -> RunConfig:
    search = SearchConfig(algorithm="muzero", num_simulations=50)
    return RunConfig(
        tasks=("atari/Pong",),
        envs_per_task=64,
        model_preset="base",
        model_overrides=UNIZERO_SIZE,
        acting=ActingConfig(search, int8_inference=int8),
        learner=LearnerConfig(batch_size=64, lr=1e-4),
        steps_per_call=2,
        updates_per_call=2,
        replay_ratio=0.25,
        resources=CPU_ONLY,
    )


def atari8(workers: int) -> RunConfig:
    # On this CPU: no bf16 (no bf16 matmul units) and batch 64, not 256 (one base-model update
    # at 256 takes minutes on a core and ~16 GB); one update per learner call. No conflict
    # metrics: with 8 tasks they cost 8 backward passes of the base model on the updates that
    # log them (the first included), which is not what a throughput case measures.
    defaults = Atari8Config().learner
    learner = replace(
        defaults,
        bf16=False,
        batch_size=64,
        gradients=replace(defaults.gradients, metrics_every=0),
    )
    return replace(
        Atari8Config(),
        num_workers=workers,
        num_search_servers=1,
        num_replay_shards=1,
        steps_per_call=2,
        updates_per_call=1,
        learner=learner,
        resources=CPU_ONLY,
    )


def unizero_pong_end_to_end(learner_threads: int = 0) -> RunConfig:
    """UniZero's replay ratio held (0.25 updates of batch 64 per env step: 16 samples per env
    step, LightZero's atari_unizero_config.py) on LightZero's 8 collector envs."""
    resources = replace(CPU_ONLY, learner_threads=learner_threads)
    return replace(unizero_pong(), envs_per_task=8, resources=resources)


# Cases whose learner keeps the replay ratio (back-pressure on).
BACK_PRESSURE = {"unizero-pong-e2e", "unizero-pong-e2e-2t"}

CASES = {
    "tiny-1": lambda: replace(TinyConfig(), num_workers=1),
    "tiny-2": lambda: replace(
        TinyConfig(), num_workers=2, resources=replace(TinyConfig().resources, worker_cpus=0.25)
    ),
    "atari8-1": lambda: atari8(1),
    "atari8-2": lambda: atari8(2),
    "unizero-pong": unizero_pong,
    "unizero-pong-int8": lambda: unizero_pong(int8=True),
    "unizero-pong-e2e": unizero_pong_end_to_end,
    # The learner with both cores' threads: at 16 samples per env step it is the bottleneck,
    # and the search server's core mostly waits for it.
    "unizero-pong-e2e-2t": lambda: unizero_pong_end_to_end(learner_threads=2),
}


# ---- the machine ----


def matmul_gflops(threads: int, dtype: torch.dtype = torch.float32, repeats: int = 20) -> float:
    """Best-of fp32 GEMM rate at a transformer-like shape: [256, 768] x [768, 3072]."""
    torch.set_num_threads(threads)
    a, w = torch.randn(256, 768, dtype=dtype), torch.randn(3072, 768, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(5):
            torch.nn.functional.linear(a, w)
        best = min(best, (time.perf_counter() - start) / 5)
    return 2 * 256 * 768 * 3072 / best / 1e9


# ---- one run ----


@dataclass
class Window:
    """(wall time, env steps, updates) whenever the driver loop turns."""

    marks: list[tuple[float, int, int]]

    def rate(self, start: int, end: int, field: int) -> float:
        (t0, *a), (t1, *b) = self.marks[start], self.marks[end]
        return (b[field - 1] - a[field - 1]) / max(t1 - t0, 1e-9)


def run_case(config: RunConfig, seconds: float, back_pressure: bool = False) -> dict[str, Any]:
    """Runs until ``seconds`` after the first learner result; returns the rates."""
    marks: list[tuple[float, int, int]] = []
    learning_since: list[float] = []

    def hook(driver: Driver) -> None:
        now = time.perf_counter()
        if not marks or (driver.env_steps, driver.updates) != marks[-1][1:]:
            marks.append((now, driver.env_steps, driver.updates))
        if driver.updates and not learning_since:
            learning_since.append(now)
        if learning_since and now - learning_since[0] >= seconds:
            driver.stop_reason = "bench window"

    with tempfile.TemporaryDirectory() as run_dir:
        untimed = {**UNTIMED, **({"replay_ratio_slack": 20} if back_pressure else {})}
        driver = Driver(replace(config, run_dir=run_dir, env_steps=10**9, **untimed), hooks=(hook,))
        try:
            driver.run()
        finally:
            driver.shutdown()
    window = Window(marks)
    first = next(i for i, m in enumerate(marks) if m[2] > 0)
    collect_start = next(i for i, m in enumerate(marks) if m[1] > 0)
    envs = len(resolve_run_tasks(config)) * config.envs_per_task
    overlapped = window.rate(first, len(marks) - 1, 1)
    return {
        "env_steps_per_s": overlapped,
        "collect_alone_env_steps_per_s": window.rate(collect_start, first, 1)
        if first > collect_start
        else float("nan"),
        "searches_per_s": overlapped / envs,  # one search call per worker step
        "simulations_per_s": overlapped * config.acting.search.num_simulations,
        "samples_per_s": window.rate(first, len(marks) - 1, 2) * config.learner.batch_size,
        "window_s": marks[-1][0] - marks[first][0],
    }


def warmup_steps(config: RunConfig) -> int:
    """Two collect calls of every worker: enough replay for the first batches."""
    envs = len(resolve_run_tasks(config)) * config.envs_per_task
    return 2 * config.num_workers * envs * config.steps_per_call


# ---- FLOPs of one search call and one update, counted in this process ----


def count_flops(config: RunConfig, threads: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    tasks = resolve_run_tasks(config)
    model = WorldModel(tasks, preset(config.model_preset, **dict(config.model_overrides)))
    # int8 matmuls do the same multiply-adds but are invisible to the FLOP counter: count fp32.
    acting = replace(config.acting, int8_inference=False)
    actor = BatchedActor(model.eval(), tasks, acting)
    env = MultiTaskEnv(list(config.tasks), config.envs_per_task, config.env, config.seed)
    replay = replace(config.replay, sampled_actions=config.acting.sampled_actions)
    replays = {t: TaskReplay(tasks[t], replay) for t in range(len(tasks))}
    discounts = torch.full((len(tasks),), config.replay.discount)
    collector = Collector(env, actor, replays, discounts)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        collector.collect(1, 1.0)
    search = counter.get_total_flops()
    # Enough replay for one batch, filled with a 1-simulation search (its content is moot).
    cheap = replace(acting, search=replace(acting.search, num_simulations=1))
    collector.actor = BatchedActor(model, tasks, cheap)
    with torch.inference_mode():
        collector.collect(config.replay.unroll_steps + config.replay.n_step, 1.0)
    env.close()
    learner = Learner(model, tasks, config.learner, config.acting.sampled_actions)
    rng = np.random.default_rng(0)
    with FlopCounterMode(display=False) as counter:
        learner.train_step(learner.sample(replays, rng))
    return {
        "search_call": float(search),
        "update": float(counter.get_total_flops()),
        "envs": float(env.num_envs),
    }


# ---- LightZero ----


def lightzero(peers_python: str, threads: int) -> tuple[dict[str, float], str]:
    script = ROOT / "bench" / "peers" / "lightzero_unizero.py"
    if not (Path(peers_python).exists() and script.exists()):
        return dict(LIGHTZERO_QUOTED), f"quoted from issue #9 (no peer at {peers_python})"
    # 16 timed batched steps of its 8 envs and 3 updates: ~5 min on an idle 2-core box.
    flags = ["--threads", str(threads), "--collect-steps", "16", "--learn-updates", "3"]
    out = subprocess.run(
        [peers_python, str(script), *flags],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not lines:
        tail = out.stderr.strip().splitlines()[-1:] or ["no output"]
        return dict(LIGHTZERO_QUOTED), f"quoted from issue #9 (peer failed: {tail[0]})"
    return json.loads(lines[-1]), "measured here, same run"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"of {', '.join(CASES)}")
    parser.add_argument("--seconds", type=float, default=150.0, help="steady window per case")
    parser.add_argument("--threads", type=int, default=2, help="cores for the peak and peer")
    parser.add_argument("--peers-python", default="/tmp/peers/bin/python")
    args = parser.parse_args()
    names = [n for n in args.cases.split(",") if n]
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; valid: {', '.join(CASES)}")

    peak = matmul_gflops(args.threads)
    print(
        f"## machine: fp32 matmul [256,768]x[768,3072] on {args.threads} threads: "
        f"{peak:.0f} GFLOP/s"
    )
    connect(num_cpus=2)
    rows: dict[str, dict[str, Any]] = {}
    for name in names:
        # A plain RunConfig: actors cannot import the launch scripts' subclasses.
        config = from_json(RunConfig, to_json(CASES[name]()))
        config = replace(config, warmup_env_steps=warmup_steps(config))
        run = run_case(config, args.seconds, back_pressure=name in BACK_PRESSURE)
        rows[name] = {**run, **count_flops(config, 1)}
        report(name, config, rows[name], peak)
    ray.shutdown()
    ours = [name for name in rows if name.startswith("unizero-pong")]
    if ours:
        peer, how = lightzero(args.peers_python, args.threads)
        for name in ours:
            if name in BACK_PRESSURE:
                compare_end_to_end(name, rows[name], peer, how)
            else:
                compare(name, rows[name], peer, how, peak)


def report(name: str, config: RunConfig, row: dict[str, Any], peak: float) -> None:
    sims = config.acting.search.num_simulations
    gflops = (
        row["searches_per_s"] * row["search_call"]
        + row["samples_per_s"] / config.learner.batch_size * row["update"]
    ) / 1e9
    row["gflops"] = gflops
    print(
        f"\n## {name}: {config.num_workers} worker(s), {int(row['envs'])} envs each, "
        f"{sims} simulations, model {config.model_preset}, batch {config.learner.batch_size}"
    )
    print(
        f"env steps/s {row['env_steps_per_s']:.1f} (collect alone "
        f"{row['collect_alone_env_steps_per_s']:.1f}); search calls/s "
        f"{row['searches_per_s']:.2f}; simulations/s {row['simulations_per_s']:.0f}; "
        f"learner samples/s {row['samples_per_s']:.1f}; window {row['window_s']:.0f}s"
    )
    print(
        f"FLOPs: {row['search_call'] / 1e9:.1f} G per search call, "
        f"{row['update'] / 1e9:.1f} G per update -> {gflops:.1f} GFLOP/s achieved "
        f"({100 * gflops / peak:.0f}% of the fp32 matmul rate)"
    )


def lightzero_end_to_end(peer: dict[str, Any]) -> float:
    """LightZero's env steps/s end to end: its train_unizero loop collects, then runs
    replay_ratio updates per collected step (each a buffer.sample and a _forward_learn), in
    turn, so per env step it spends 1/collection rate + replay_ratio * batch / learning rate."""
    config = peer.get("config", {})
    samples_per_step = config.get("replay_ratio", 0.25) * config.get("batch_size", 64)
    learn_rate = peer.get("samples_per_s_with_buffer_sample", peer["samples_per_s"])
    return 1.0 / (1.0 / peer["env_steps_per_s"] + samples_per_step / learn_rate)


def compare_end_to_end(name: str, ours: dict[str, Any], peer: dict[str, Any], how: str) -> None:
    """mtrl's end-to-end rate is what both sides sustain at the ratio: the env steps of the
    window, or the learner's samples over 16 per step if fewer (back-pressure holds the ratio
    only up to ``replay_ratio_slack`` updates, which a 5-minute window would count)."""
    theirs = lightzero_end_to_end(peer)
    config = peer.get("config", {})
    per_step = config.get("replay_ratio", 0.25) * config.get("batch_size", 64)
    held = min(ours["env_steps_per_s"], ours["samples_per_s"] / per_step)
    print(f"\n## {name} vs LightZero UniZero on Pong, end to end ({how})")
    print(
        f"env steps/s at {per_step:g} learner samples per env step: mtrl {held:.3f} (window: "
        f"{ours['env_steps_per_s']:.3f} env steps/s, learner {ours['samples_per_s']:.1f} "
        f"samples/s) vs LightZero {theirs:.3f} (collect {peer['env_steps_per_s']:.2f} env "
        f"steps/s, learn {peer.get('samples_per_s_with_buffer_sample', peer['samples_per_s']):.2f} "
        f"samples/s, in turn) -> {held / theirs:.2f}x"
    )


def compare(name: str, ours: dict[str, Any], peer: dict[str, float], how: str, peak: float) -> None:
    print(f"\n## {name} vs LightZero UniZero on Pong ({how})")
    for key, label in (
        ("env_steps_per_s", "collection env steps/s"),
        ("samples_per_s", "learning samples/s"),
    ):
        ratio = ours[key] / peer[key]
        print(f"{label}: mtrl {ours[key]:.1f} vs LightZero {peer[key]:.1f} -> {ratio:.2f}x")
    if "flops_per_recurrent_call" in peer:
        print(
            f"LightZero FLOPs per recurrent call (batch 8): "
            f"{peer['flops_per_recurrent_call'] / 1e9:.2f} G"
        )
    per_sim = ours["search_call"] / ours["envs"] / 50 / 1e6
    print(
        f"mtrl: {per_sim:.0f} MFLOP per simulation per env; fp32 bound on collection alone "
        f"at this cost: {peak * 1e3 / (per_sim * 50):.1f} env steps/s"
    )


if __name__ == "__main__":
    main()

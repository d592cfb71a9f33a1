"""World-model benchmarks: parameter counts, MoE vs dense throughput, KV cache vs recompute.

    .venv/bin/python bench/model.py                 # all three, default sizes (~1-2 min on CPU)
    .venv/bin/python bench/model.py --preset base   # throughput sections at another size

Prints numbers and ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from mtrl.envs import get_suite
from mtrl.envs.batch import TaskSet
from mtrl.world_models import PRESETS, Actions, WorldModel, WorldModelConfig, preset
from mtrl.world_models import lora as lora_module
from mtrl.world_models.moe import MoE
from mtrl.world_models.transformer import Transformer
from mtrl.world_models.types import Observations


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def inactive_per_token(model: torch.nn.Module, cfg: WorldModelConfig) -> int:
    """Routed-expert parameters a token does not use (E - k of E experts, every layer), plus
    LoRA adapters (inactive at stage 0)."""
    unused = 0
    for moe in (m for m in model.modules() if isinstance(m, MoE)):
        experts = moe.experts.up.numel() + moe.experts.down.numel()
        unused += experts * (cfg.num_experts - cfg.top_k) // cfg.num_experts
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora" in n)
    return unused + lora


def parameter_table(tasks: TaskSet) -> None:
    print(f"## parameters (task set: {len(tasks)} tasks of the 'tiny' suite, all modalities)")
    head = ("total", "active/tok", "backbone", "bb active/tok", "LoRA")
    print(f"{'preset':6}" + "".join(f"{h:>15}" for h in head))
    for name, cfg in PRESETS.items():
        model = WorldModel(tasks, cfg)
        backbone = model.transformer
        lora = sum(p.numel() for n, p in backbone.named_parameters() if "lora" in n)
        active = count(backbone) - inactive_per_token(backbone, cfg)
        total = count(model) - count(model.target_encoder)  # EMA copy is not trained
        total_active = total - inactive_per_token(model, cfg)
        row = (total, total_active, count(backbone), active, lora)
        print(f"{name:6}" + "".join(f"{v:>15,}" for v in row))
    print("total excludes the EMA target encoder; backbone = transformer incl. LoRA banks;")
    print("active/tok = minus the routed experts a token skips and (stage-0-inactive) LoRA;")
    print("encoders count in full, although a token uses only its own modality's.\n")


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds per call after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def train_step(model: Transformer, x: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        h, balance = model(x)
        (h.square().mean() + 0.01 * balance).backward()

    return step


def moe_vs_dense(cfg: WorldModelConfig, batch: int, steps: int, repeats: int) -> None:
    tokens = 2 * steps
    x = torch.randn(batch, tokens, cfg.embed_dim)
    torch.manual_seed(0)
    moe = Transformer(cfg, num_tasks=1)
    dense = Transformer(cfg.with_(num_experts=0), num_tasks=1)
    moe_t = timed(train_step(moe, x), repeats)
    lora_module._GROUPED_MM_OK = False  # the loop-over-experts fallback, for comparison
    loop_t = timed(train_step(moe, x), repeats)
    lora_module._GROUPED_MM_OK = True
    dense_t = timed(train_step(dense, x), repeats)
    n = batch * tokens
    print(f"## forward+backward, backbone only ({batch} x {tokens} tokens, d={cfg.embed_dim})")
    active_moe = count(moe) - inactive_per_token(moe, cfg)
    active_dense = count(dense) - inactive_per_token(dense, cfg)
    print(f"active params/token: MoE {active_moe:,}  dense {active_dense:,}")
    print(f"MoE grouped_mm    {n / moe_t:>10,.0f} tok/s  ({moe_t * 1e3:.1f} ms)")
    print(f"MoE expert loop   {n / loop_t:>10,.0f} tok/s  ({loop_t * 1e3:.1f} ms)")
    print(f"dense same active {n / dense_t:>10,.0f} tok/s  ({dense_t * 1e3:.1f} ms)")
    print(f"ratio MoE/dense throughput: {dense_t / moe_t:.2f}")
    print(f"ratio grouped_mm/loop throughput: {loop_t / moe_t:.2f}\n")


def root_obs(tasks: TaskSet, batch: int) -> tuple[Observations, Actions]:
    """Vector-task roots (cartpole / pendulum swingup, continuous) for the inference bench."""
    ids = torch.tensor([2 + (i % 2) for i in range(batch)])
    obs = Observations(
        task_ids=ids,
        image=torch.zeros(0, 3, 64, 64, dtype=torch.uint8),
        image_rows=torch.zeros(0, dtype=torch.int64),
        vector=torch.randn(batch, tasks.max_vector_dim),
        vector_rows=torch.arange(batch),
        text=(),
        text_rows=torch.zeros(0, dtype=torch.int64),
        commands=(),
    )
    action = Actions(index=torch.zeros(batch, dtype=torch.int64), vector=torch.rand(batch, 1))
    return obs, action


def cached_rollout(model: WorldModel, obs: Observations, action: Actions, depth: int) -> list:
    pred = model.initial_inference(obs)
    values = [pred.value_logits]
    for _ in range(depth):
        pred = model.recurrent_inference(pred.state, action)
        values.append(pred.value_logits)
    return values


def recompute_rollout(model: WorldModel, obs: Observations, action: Actions, depth: int) -> list:
    """The naive baseline: every new token reruns the whole (windowed) context."""
    root = model.initial_inference(obs)  # for the latent, commands and groups
    groups, state = root.state.groups, root.state
    window = model.table.kv_window[groups.task_ids]
    tokens = [model.token(state.latent, groups)]
    values = [root.value_logits]

    def last(tokens: list[torch.Tensor]) -> torch.Tensor:
        return model.transformer(torch.stack(tokens, 1), window=window)[0][:, -1]

    for _ in range(depth):
        tokens.append(model.token(model.action_embed(action, groups, state.commands), groups))
        latent = model.next(last(tokens), groups)
        tokens.append(model.token(latent, groups))
        values.append(model.value(last(tokens), groups))
    return values


def kv_cache_vs_recompute(tasks: TaskSet, cfg: WorldModelConfig, batch: int, depth: int) -> None:
    torch.manual_seed(0)
    model = WorldModel(tasks, cfg).eval()
    for head in (model.value_head,):  # non-trivial values, to check both paths agree
        torch.nn.init.normal_(head.w2, std=0.3)
    obs, action = root_obs(tasks, batch)
    with torch.inference_mode():
        cached = cached_rollout(model, obs, action, depth)
        naive = recompute_rollout(model, obs, action, depth)
        diff = max((a - b).abs().max().item() for a, b in zip(cached, naive, strict=True))
        cached_t = timed(lambda: cached_rollout(model, obs, action, depth), 3)
        naive_t = timed(lambda: recompute_rollout(model, obs, action, depth), 3)
    window = cfg.kv_window("dmc")
    print(f"## recurrent inference: {batch} DMC roots x {depth} steps (window {window} steps)")
    print(f"KV cache   {cached_t * 1e3:8.1f} ms   ({batch * depth / cached_t:,.0f} node/s)")
    print(f"recompute  {naive_t * 1e3:8.1f} ms   ({batch * depth / naive_t:,.0f} node/s)")
    print(f"ratio cache speed-up: {naive_t / cached_t:.2f}   max |value logit diff| {diff:.1e}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=32, help="sequences / roots")
    parser.add_argument("--steps", type=int, default=10, help="env steps per training sequence")
    parser.add_argument("--depth", type=int, default=10, help="recurrent steps per root")
    parser.add_argument("--repeats", type=int, default=5)
    # One thread by default: on a small shared box, 2 contending OpenMP threads are far slower.
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}\n")
    tasks = TaskSet(get_suite("tiny"))
    parameter_table(tasks)
    cfg = preset(args.preset, context_steps=args.steps, max_steps=max(32, args.steps))
    moe_vs_dense(cfg, args.batch, args.steps, args.repeats)
    kv_cache_vs_recompute(tasks, cfg, args.batch, args.depth)


if __name__ == "__main__":
    main()

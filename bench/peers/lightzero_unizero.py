"""Peer throughput: LightZero 0.2.0's UniZero on Atari Pong, CPU only (issue #9).

Runs inside a separate "peers" interpreter, never the project's venv, and imports nothing from
mtrl. Install that venv (verified from scratch on the 2-core dev machine, Python 3.11):

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install torch==2.13.0   # FIRST: the local CPU wheel
    # --no-deps: DI-engine 0.5.3 pins setuptools<=66.1.1, torch 2.13 needs >=77, so a plain
    # `pip install lightzero==0.2.0` backtracks to the multi-GB CUDA torch 2.12.1.
    /tmp/peers/bin/pip install --no-deps lightzero==0.2.0 DI-engine==0.5.3
    /tmp/peers/bin/pip install torch==2.13.0 "gymnasium[atari]==0.28.0" gym==0.25.1 \
        DI-treetensor DI-toolkit easydict pyyaml tensorboardX "wandb<=0.19.0" matplotlib \
        enum-tools cloudpickle hickle tabulate click "flask<=2.0.3" "werkzeug<=2.0.3" requests \
        responses URLObject pynng sniffio redis mpire einops trueskill yapf==0.29.0 pympler \
        minigrid moviepy line_profiler xxhash opencv-python-headless
    /tmp/peers/bin/pip install mctx jax        # optional, for bench/search.py
    # ale-py 0.8.1 (gymnasium[atari] 0.28) ships no ROMs and AutoROM needs the internet;
    # the ale-py 0.12.x wheels carry them:
    /tmp/peers/bin/pip download --no-deps "ale-py==0.12.*" -d /tmp/ale_dl
    cd /tmp/ale_dl && unzip -o -q ale_py-0.12.*.whl 'ale_py/roms/*' -d x
    /tmp/peers/bin/ale-import-roms /tmp/ale_dl/x/ale_py/roms

numpy ends up 2.x (opencv-python-headless 5 and jax want it) although LightZero/DI-engine
declare numpy<2; the only break seen is gym 0.25.1's np.bool8, shimmed below.

Run (about 10 minutes on an idle 2-core machine with the defaults, 30 when it is shared):

    /tmp/peers/bin/python bench/peers/lightzero_unizero.py --threads 2

Config: the values of LightZero 0.2.0's zoo/atari/config/atari_unizero_config.py (Pong, 8
collector envs, 50 simulations, batch 64, num_unroll_steps 10, infer_context_length 4,
embed 768, 8 heads, game_segment_length 20) with num_layers 4 (that file has 2; the claim in
issue #9 is for 4, --num-layers changes it) and device cpu. It drives LightZero's own classes:
DI-engine's compile_config / env manager, MuZeroCollector (UniZero policy collect forward:
initial_inference + ctree MCTS, plus 8 real Pong envs with LightZero's Atari wrappers),
UniZeroGameBuffer (filled by that collector) and UniZeroPolicy._forward_learn. Collection is
timed as one collector.collect() of --collect-steps per env (the episodes are cut by the
envs' TimeLimit wrapper via collect_max_episode_steps) after a --warmup-steps one. Learning is
timed as buffer.sample() (target inference, not counted in samples_per_s) and _forward_learn
separately. stdout carries one JSON line; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from typing import Any

REAL_STDOUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # LightZero/DI-engine print freely (also from env subprocesses): send it to stderr
sys.stdout = sys.stderr

import numpy as np  # noqa: E402
import torch  # noqa: E402
from easydict import EasyDict  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

if not hasattr(np, "bool8"):  # gym 0.25.1's env checker needs it; jax in this venv needs numpy 2
    np.bool8 = np.bool_  # type: ignore[attr-defined]


# Learner updates per collected env step, as in zoo/atari/config/atari_unizero_config.py
# (train_unizero runs int(collected steps * replay_ratio) updates after each collection).
REPLAY_RATIO = 0.25


def make_config(args: argparse.Namespace, episode_steps: int) -> tuple[EasyDict, EasyDict]:
    """Mirror of atari_unizero_config.main() (LightZero 0.2.0) for PongNoFrameskip-v4."""
    from zoo.atari.config.atari_env_action_space_map import atari_env_action_space_map

    env_id = "PongNoFrameskip-v4"
    action_space_size = atari_env_action_space_map[env_id]
    n_env, unroll, infer_ctx = args.envs, 10, 4
    main = dict(
        exp_name="unizero_pong_bench",
        env=dict(
            stop_value=int(1e6),
            env_id=env_id,
            observation_shape=(3, 64, 64),
            gray_scale=False,
            collector_env_num=n_env,
            evaluator_env_num=3,
            n_evaluator_episode=3,
            manager=dict(shared_memory=False),
            collect_max_episode_steps=episode_steps,
        ),
        policy=dict(
            model=dict(
                observation_shape=(3, 64, 64),
                action_space_size=action_space_size,
                world_model_cfg=dict(
                    policy_entropy_weight=1e-4,
                    continuous_action_space=False,
                    max_blocks=unroll,
                    max_tokens=2 * unroll,
                    context_length=2 * infer_ctx,
                    device="cpu",
                    action_space_size=action_space_size,
                    num_layers=args.num_layers,
                    num_heads=8,
                    embed_dim=768,
                    obs_type="image",
                    env_num=max(n_env, 3),
                    rotary_emb=False,
                ),
            ),
            model_path=None,
            num_unroll_steps=unroll,
            replay_ratio=REPLAY_RATIO,
            batch_size=args.batch_size,
            learning_rate=1e-4,
            num_simulations=args.simulations,
            train_start_after_envsteps=2000,
            game_segment_length=20,
            replay_buffer_size=int(1e6),
            eval_freq=int(5e3),
            collector_env_num=n_env,
            evaluator_env_num=3,
            device="cpu",
            cuda=False,
        ),
    )
    create = dict(
        env=dict(type="atari_lightzero", import_names=["zoo.atari.envs.atari_lightzero_env"]),
        env_manager=dict(type=args.env_manager),
        policy=dict(type="unizero", import_names=["lzero.policy.unizero"]),
    )
    return EasyDict(main), EasyDict(create)


class Timer:
    """Wraps a callable; accumulates wall time and call count, optionally counting FLOPs."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0
        self.flop_limit, self.flops, self.flop_calls = 0, 0, 0

    def __call__(self, *a: Any, **k: Any) -> Any:
        if self.flop_calls < self.flop_limit:
            with FlopCounterMode(display=False) as fc:
                out = self.fn(*a, **k)
            self.flops += fc.get_total_flops()
            self.flop_calls += 1
            return out
        t0 = time.perf_counter()
        out = self.fn(*a, **k)
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


def log(msg: str) -> None:
    print(f"[lightzero-unizero] {msg}", file=sys.stderr, flush=True)


def build_collector(args: argparse.Namespace, policy: Any, steps: int) -> tuple[Any, Any]:
    """A MuZeroCollector over fresh Pong envs whose episodes end after ``steps`` steps."""
    from ding.config import compile_config
    from ding.envs import create_env_manager, get_vec_env_setting
    from lzero.worker import MuZeroCollector

    main, create = make_config(args, steps)
    cfg = compile_config(main, seed=0, env=None, auto=True, create_cfg=create, save_cfg=False)
    env_fn, collector_env_cfg, _ = get_vec_env_setting(cfg.env)
    env = create_env_manager(cfg.env.manager, [partial(env_fn, cfg=c) for c in collector_env_cfg])
    env.seed(0)
    collector = MuZeroCollector(
        env=env,
        policy=policy.collect_mode,
        tb_logger=None,
        exp_name=cfg.exp_name,
        policy_config=cfg.policy,
    )
    return collector, env


def close_env(env: Any) -> None:
    """Close an env manager once its post-episode auto-resets are done (closing earlier races)."""
    deadline = time.time() + 60
    while len(env.ready_obs) < env.env_num and time.time() < deadline:
        time.sleep(0.05)
    env.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--collect-steps", type=int, default=40, help="timed batched steps per env")
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--learn-updates", type=int, default=5)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--simulations", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--env-manager", default="subprocess", choices=["subprocess", "base"])
    args = p.parse_args()
    if (args.warmup_steps + args.collect_steps) * args.envs < args.batch_size or not (
        args.learn_updates >= 1
    ):
        p.error("need (warmup+collect steps) * envs >= batch size and --learn-updates >= 1")
    torch.set_num_threads(args.threads)
    os.chdir(tempfile.mkdtemp(prefix="lz_unizero_"))  # DI-engine writes logs under ./exp_name

    import lzero
    from ding.config import compile_config
    from ding.policy import create_policy
    from ding.utils import set_pkg_seed
    from lzero.mcts import UniZeroGameBuffer

    t_start = time.perf_counter()
    set_pkg_seed(0, use_cuda=False)
    main_cfg, create_cfg = make_config(args, args.collect_steps)
    cfg = compile_config(
        main_cfg, seed=0, env=None, auto=True, create_cfg=create_cfg, save_cfg=False
    )
    policy = create_policy(cfg.policy, model=None, enable_field=["learn", "collect"])
    model = policy._collect_model
    orig = getattr(model, "_orig_mod", model)  # LightZero wraps it in torch.compile; methods
    n_params = sum(x.numel() for x in orig.parameters())  # other than forward stay eager
    rec, init = Timer(orig.recurrent_inference), Timer(orig.initial_inference)
    orig.recurrent_inference, orig.initial_inference = rec, init
    log(
        f"lightzero {getattr(lzero, '__version__', '0.2.0')}, torch {torch.__version__}, "
        f"{n_params / 1e6:.1f}M params, threads {torch.get_num_threads()}"
    )

    kw = {"temperature": 1.0, "epsilon": 0.0}
    # ---- warm-up collection; FLOPs of the first search's recurrent calls (batch = envs) ----
    warm, warm_env = build_collector(args, policy, args.warmup_steps)
    rec.flop_limit = args.simulations
    t0 = time.perf_counter()
    warm_data = warm.collect(n_episode=args.envs, train_iter=0, policy_kwargs=kw)
    log(
        f"warm-up collect ({args.warmup_steps} steps x {args.envs} envs, first step "
        f"FLOP-counted): {time.perf_counter() - t0:.1f}s"
    )
    flops_rec = rec.flops / max(rec.flop_calls, 1)
    close_env(warm_env)
    rec.reset()
    init.reset()

    # ---- timed collection ----
    collector, env = build_collector(args, policy, args.collect_steps)
    step_timer = Timer(env.step)
    env.step = step_timer
    t0 = time.perf_counter()
    new_data = collector.collect(n_episode=args.envs, train_iter=0, policy_kwargs=kw)
    t_collect = time.perf_counter() - t0
    close_env(env)
    env_steps = args.envs * args.collect_steps
    log(
        f"collect: {env_steps} env steps in {t_collect:.1f}s; recurrent_inference "
        f"{rec.calls} calls {rec.seconds:.1f}s, initial_inference {init.calls} calls "
        f"{init.seconds:.1f}s, env.step {step_timer.seconds:.1f}s"
    )

    # ---- learning: buffer filled by the real collector ----
    buffer = UniZeroGameBuffer(cfg.policy)
    buffer.push_game_segments(warm_data)
    buffer.push_game_segments(new_data)
    log(
        f"buffer: {buffer.get_num_of_game_segments()} segments, "
        f"{buffer.get_num_of_transitions()} transitions"
    )
    learn = policy.learn_mode.forward  # = UniZeroPolicy._forward_learn

    def batch(it: int) -> list[Any]:
        data = buffer.sample(args.batch_size, policy)
        data.append(it)
        return data

    with FlopCounterMode(display=False) as fc:  # warm-up update, FLOP-counted
        learn(batch(0))
    flops_learn = fc.get_total_flops()
    t_sample = t_learn = 0.0
    for it in range(1, args.learn_updates + 1):
        t0 = time.perf_counter()
        data = batch(it)
        t1 = time.perf_counter()
        info = learn(data)
        t_learn += time.perf_counter() - t1
        t_sample += t1 - t0
    info0 = info[0] if isinstance(info, list) else info
    loss = float(info0.get("weighted_total_loss", float("nan")))
    log(
        f"learn: {args.learn_updates} updates, _forward_learn {t_learn:.1f}s, buffer.sample "
        f"{t_sample:.1f}s, last weighted_total_loss {loss:.3f}"
    )

    n = args.learn_updates * args.batch_size
    rec_ms = 1e3 * rec.seconds / max(rec.calls, 1)
    result = {
        "peer": "lightzero-unizero",
        "version": f"lightzero 0.2.0, DI-engine {_ver('DI-engine')}, torch {torch.__version__}",
        "env_steps_per_s": env_steps / t_collect,
        "samples_per_s": n / t_learn,
        "samples_per_s_with_buffer_sample": n / (t_learn + t_sample),
        "recurrent_ms": rec_ms,
        "recurrent_calls": rec.calls,
        "inference_share": rec.seconds / t_collect,
        "initial_inference_share": init.seconds / t_collect,
        "env_step_share": step_timer.seconds / t_collect,
        "flops_per_recurrent_call": flops_rec,
        "flops_per_learn_step": flops_learn,
        "params": n_params,
        "wall_s": time.perf_counter() - t_start,
        "config": {
            "env": "PongNoFrameskip-v4",
            "source": "zoo/atari/config/atari_unizero_config.py",
            "embed_dim": 768,
            "num_layers": args.num_layers,
            "num_heads": 8,
            "num_simulations": args.simulations,
            "batch_size": args.batch_size,
            "replay_ratio": REPLAY_RATIO,
            "collector_env_num": args.envs,
            "num_unroll_steps": 10,
            "infer_context_length": 4,
            "game_segment_length": 20,
            "observation_shape": [3, 64, 64],
            "device": "cpu",
            "threads": args.threads,
            "env_manager": args.env_manager,
            "collect_steps_per_env": args.collect_steps,
            "warmup_steps": args.warmup_steps,
            "learn_updates": args.learn_updates,
            "learn_data": "collector-filled buffer",
        },
    }
    REAL_STDOUT.write(json.dumps(result) + "\n")
    REAL_STDOUT.flush()


def _ver(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()

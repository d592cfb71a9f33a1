"""What a checkpoint's Gaussian policy does on a continuous task: the mean |action| and the std
per action dimension, and the mean value, over states the policy itself reaches.

    python bench/gaussian_policy.py runs/walker/checkpoints/ckpt-000000040704.pt \\
        --task dmc/walker-walk --steps 100

4 envs, seed 0; each step plays a sample of the policy (no search): the point is the policy the
search draws its candidates from, not the agent's return.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.eval.checkpoint import load_checkpoint


def probe(path: str, task: str, steps: int, envs: int = 4) -> dict[str, np.ndarray]:
    loaded = load_checkpoint(path)
    env = MultiTaskEnv([task], envs_per_task=envs, settings=loaded.settings, seed=0)
    obs, rng = env.reset(), np.random.default_rng(0)
    means, stds, values = [], [], []
    with torch.no_grad():
        for _ in range(steps):
            pred = loaded.model.initial_inference(obs)
            mean, std = pred.mean.numpy(), pred.log_std.exp().numpy()
            means.append(mean)
            stds.append(std)
            values.append(pred.value.numpy())
            action = np.clip(mean + std * rng.normal(size=mean.shape), -1, 1).astype(np.float32)
            obs = env.step(ActionBatch(np.zeros(envs, dtype=np.int64), action)).obs
    env.close()
    return {
        "mean_abs": np.abs(np.concatenate(means)).mean(0),
        "std": np.concatenate(stds).mean(0),
        "value": np.concatenate(values).mean(keepdims=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--task", default="dmc/walker-walk")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for path in args.checkpoints:
        out = probe(path, args.task, args.steps)
        print(path, *(f"{k} {np.round(v, 3).tolist()}" for k, v in out.items()), sep="\n  ")


if __name__ == "__main__":
    main()

"""How sharp a checkpoint's search targets are on a discrete task, and what its Q values differ by.

    python bench/search_policy.py runs/minatar/checkpoints/ckpt-000000020000.pt \\
        --task minatar/Asterix --steps 300

2 envs, seed 0; each step searches with the checkpoint's own acting settings and plays the
search's choice at temperature 1 (no ε). Over the states reached, per checkpoint:

- ``prior_entropy``, ``target_entropy``: entropy (nats) of the network's prior and of the
  search's policy target (Gumbel's improved policy); ``uniform``: log of the legal actions;
- ``q_gap``: max - min Q over the root's visited children, in value units; ``tree_range``: the
  tree's min-max normalisation range, which Gumbel's sigma divides Q by; ``q_gap / range``;
- ``actions``: how often each action was played.

A target much sharper than the prior, set by Q gaps much smaller than the task's rewards, says
that the min-max normalisation is spreading noise over the full sigma scale.
"""

from __future__ import annotations

import numpy as np
import torch
from probe_cli import probe_main

from mtrl.agents.acting import BatchedActor
from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.eval.checkpoint import load_checkpoint
from mtrl.search.stats import child_stats


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, None))).sum(-1)


def probe(path: str, task: str, steps: int) -> dict[str, object]:
    ckpt = load_checkpoint(path)
    ckpt.check_tasks([task])
    index = ckpt.tasks.index(task)
    actor = BatchedActor(ckpt.model, ckpt.tasks, ckpt.acting.for_evaluation())
    # Every task of the checkpoint steps (the batch keeps training's layout); ``task``'s rows
    # are the ones measured.
    env = MultiTaskEnv(ckpt.tasks, envs_per_task=2, seed=0, settings=ckpt.settings)
    mine = env.task_ids == index
    obs, rows = env.reset(), []
    for step in range(steps):
        result = actor.act(obs, ckpt.discounts, temperature=1.0, seed=step)
        tree = result.search.tree
        stats = child_stats(tree, torch.zeros(tree.batch_size, dtype=torch.int64))
        visited = stats.visits > 0
        q = stats.q.double()
        high, low = torch.where(visited, q, -torch.inf), torch.where(visited, q, torch.inf)
        gap = high.amax(1) - low.amin(1)
        prior = torch.softmax(tree.root_logits.double(), dim=1).numpy()
        rows += [
            (e_p, e_t, g, r, int(a), int(n))
            for e_p, e_t, g, r, a, n in zip(
                entropy(prior)[mine],
                entropy(result.policy.astype(np.float64))[mine],
                gap.numpy()[mine],
                (tree.max_q - tree.min_q).double().numpy()[mine],
                result.action_index[mine],
                obs.legal.sum(1)[mine],
                strict=True,
            )
        ]
        vectors = np.zeros((env.num_envs, env.tasks.max_action_dim), np.float32)
        batch = env.step(ActionBatch(result.action_index, vectors))
        obs = batch.obs
    env.close()
    data = np.array(rows, dtype=np.float64)
    finite = np.isfinite(data[:, 2]) & (data[:, 3] > 0)
    legal = int(data[0, 5])
    return {
        "env_steps": ckpt.env_steps,
        "uniform": round(float(np.log(legal)), 3),
        "prior_entropy": round(float(data[:, 0].mean()), 3),
        "target_entropy": round(float(data[:, 1].mean()), 3),
        "q_gap": round(float(np.median(data[finite, 2])), 4),
        "tree_range": round(float(np.median(data[finite, 3])), 4),
        "q_gap/range": round(float(np.median(data[finite, 2] / data[finite, 3])), 3),
        "actions": np.bincount(data[:, 4].astype(int), minlength=legal).tolist(),
    }


def main() -> None:
    probe_main(__doc__, probe)


if __name__ == "__main__":
    main()

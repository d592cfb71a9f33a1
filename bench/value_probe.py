"""What a checkpoint's model knows about a discrete task's rewards and endings, under random play.

    python bench/value_probe.py runs/minatar/checkpoints/ckpt-000000020000.pt \\
        --task minatar/Asterix --steps 300

16 envs of ``task`` (the checkpoint's other tasks step beside them, unmeasured), uniformly
random actions, seed 0. At every state the model's value V(s) and, for each action a,
Q(s, a) = r(s, a) + γ V(s') from one imagined step. Over the episodes that terminated:

- ``v_by_steps_to_end``: mean V(s) by how many steps before the episode's end s was (1: the
  step that ended it). A model that knows what ends the game values the last states lower.
- ``fatal_gap``: Q of the action that ended the episode minus the mean Q of the other actions
  in that state (negative when the model saw it coming); ``other_gap``: the same elsewhere.
- ``q_rewarded``, ``q_unrewarded``: mean Q of the played action on steps that paid a reward
  and on those that did not.
- ``latent_std``: the spread of the encoder's latent over the states (mean std per dimension),
  against ``latent_mean_abs``: a collapsed encoder maps every state to one latent.
"""

from __future__ import annotations

import numpy as np
import torch
from probe_cli import probe_main

from mtrl.agents.acting import child_value
from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.eval.checkpoint import load_checkpoint
from mtrl.world_models.types import observations_from_batch

ENVS = 16
BUCKETS = (1, 2, 3, 5, 10, 20)  # 20: twenty steps or more before the end


def imagined_q(model, pred, actions: int, gamma: float) -> np.ndarray:
    """[E, actions] Q(s, a) of one imagined step per action, as the search scores it
    (``mtrl.agents.acting.child_value``: with an end head, V(s') weighed by P(the episode goes
    on); with a Q head, the head's Q)."""
    rows = pred.value.shape[0]
    qs = []
    for a in range(actions):
        step = model.recurrent_inference(pred.state, torch.full((rows,), a, dtype=torch.int64))
        qs.append((step.reward + gamma * child_value(step, gamma)).numpy())
    return np.stack(qs, 1)


def play(path: str, task: str, steps: int) -> tuple[list, np.ndarray]:
    """Finished episodes as lists of (V, Q[A], action, reward), and the latents seen."""
    ckpt = load_checkpoint(path)
    ckpt.check_tasks([task])
    index = ckpt.tasks.index(task)
    actions, gamma = ckpt.tasks.specs[index].action.n, float(ckpt.discounts[index])
    env = MultiTaskEnv(ckpt.tasks, envs_per_task=ENVS, settings=ckpt.settings, seed=0)
    rows = np.flatnonzero(env.task_ids == index)
    rng, obs = np.random.default_rng(0), env.reset()
    current: dict[int, list] = {int(r): [] for r in rows}
    ended, latents = [], []
    for _ in range(steps):
        o = observations_from_batch(obs)
        with torch.no_grad():
            pred = ckpt.model.initial_inference(o)
            q = imagined_q(ckpt.model, pred, actions, gamma)
            latents.append(ckpt.model.encode(o).numpy()[rows])
        # Every row a uniformly random legal action of its own task.
        played = np.array([rng.choice(np.flatnonzero(legal)) for legal in obs.legal])
        vectors = np.zeros((env.num_envs, env.tasks.max_action_dim), np.float32)
        batch = env.step(ActionBatch(played, vectors))
        for r in rows:
            current[r].append((float(pred.value[r]), q[r], int(played[r]), float(batch.reward[r])))
            if batch.terminated[r]:
                ended.append(current[r])
            if batch.terminated[r] or batch.truncated[r]:
                current[r] = []
        obs = batch.obs
    env.close()
    return ended, np.concatenate(latents)


def summary(ended: list, latents: np.ndarray) -> dict[str, object]:
    by_k: dict[int, list[float]] = {k: [] for k in BUCKETS}
    fatal, other, rewarded, unrewarded = [], [], [], []
    for episode in ended:
        for i, (v, q, a, r) in enumerate(episode):
            k = min(len(episode) - i, BUCKETS[-1])
            if k in by_k:
                by_k[k].append(v)
            (fatal if i == len(episode) - 1 else other).append(q[a] - np.delete(q, a).mean())
            (rewarded if r > 0 else unrewarded).append(q[a])

    def mean(x: list[float]) -> float | None:
        return round(float(np.mean(x)), 4) if x else None

    return {
        "episodes": len(ended),
        "v_by_steps_to_end": {k: mean(v) for k, v in by_k.items()},
        "fatal_gap": mean(fatal),
        "other_gap": mean(other),
        "q_rewarded": mean(rewarded),
        "rewarded_steps": len(rewarded),
        "q_unrewarded": mean(unrewarded),
        "latent_std": round(float(latents.std(0).mean()), 4),
        "latent_mean_abs": round(float(np.abs(latents).mean()), 4),
    }


def probe(path: str, task: str, steps: int) -> dict[str, object]:
    return summary(*play(path, task, steps))


def main() -> None:
    probe_main(__doc__, probe)


if __name__ == "__main__":
    main()

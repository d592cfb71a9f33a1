"""What a checkpoint's Gaussian policy does on a continuous task, and what its critic offers.

    python bench/gaussian_policy.py runs/walker/checkpoints/ckpt-000000040704.pt \\
        --task dmc/walker-walk --steps 100

4 envs, seed 0; each step plays a sample of the policy (no search): the point is the policy the
search draws its candidates from, not the agent's return. Per checkpoint, over the states the
policy reaches:

- ``mean_abs``, ``std``: the policy's mean |action| and std per action dimension; ``value``;
- ``q_spread``: max - min of Q = r(s, a) + γV(s') over K = 8 policy samples of a state, as the
  learner's target network (the critic of ``policy_value_coef``) scores them; ``q_range``: the
  5-95 % range of Q over the states (the scale that term divides by); ``dq_da``: |dQ/da| per
  action dimension at a policy sample;
- ``reward_corr``: correlation between the model's predicted reward of the played action and
  the reward the environment gave.
"""

from __future__ import annotations

import numpy as np
import torch
from probe_cli import probe_main

from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.eval.checkpoint import load_checkpoint
from mtrl.runtime.checkpoint import read_checkpoint
from mtrl.world_models import WorldModel
from mtrl.world_models.types import Prediction, observations_from_batch

CANDIDATES = 8


def critic_of(path: str, model: WorldModel) -> WorldModel:
    """The learner's target network stored in the checkpoint."""
    critic = WorldModel(model.tasks, model.cfg)
    critic.load_state_dict(read_checkpoint(path)["learner"]["target"])
    return critic.eval().requires_grad_(False)


def policy_sample(model: WorldModel, pred: Prediction) -> torch.Tensor:
    noise = torch.randn_like(pred.mean)
    return model.clip_actions(pred.mean + pred.log_std.exp() * noise, pred.state.task_ids)


def critic_q(critic: WorldModel, obs, action: torch.Tensor, gamma: float) -> torch.Tensor:
    step = critic.recurrent_inference(critic.initial_inference(obs).state, action)
    return step.reward + gamma * step.value


def critic_probe(
    model: WorldModel, critic: WorldModel, obs, pred: Prediction, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per state: Q spread over the candidates, Q of one sample, |dQ/da| at it."""
    with torch.no_grad():
        samples = [policy_sample(model, pred) for _ in range(CANDIDATES)]
        qs = torch.stack([critic_q(critic, obs, a, gamma) for a in samples])
    action = policy_sample(model, pred).requires_grad_(True)
    q = critic_q(critic, obs, action, gamma)
    q.sum().backward()
    spread = (qs.max(0).values - qs.min(0).values).numpy()
    return spread, q.detach().numpy(), action.grad.abs().numpy()


def probe(path: str, task: str, steps: int, envs: int = 4) -> dict[str, np.ndarray]:
    loaded = load_checkpoint(path)
    model, critic = loaded.model.eval(), critic_of(path, loaded.model)
    gamma = float(loaded.discounts[0])
    env = MultiTaskEnv([task], envs_per_task=envs, settings=loaded.settings, seed=0)
    obs, rows = env.reset(), []
    torch.manual_seed(0)
    for _ in range(steps):
        o = observations_from_batch(obs)
        with torch.no_grad():
            pred = model.initial_inference(o)
            action = policy_sample(model, pred)
            reward = model.recurrent_inference(pred.state, action).reward
        spread, q, grad = critic_probe(model, critic, o, pred, gamma)
        batch = env.step(ActionBatch(np.zeros(envs, np.int64), action.numpy().astype(np.float32)))
        rows.append((pred, spread, q, grad, reward.numpy(), batch.reward.copy()))
        obs = batch.obs
    env.close()
    return summary(rows)


def summary(rows: list) -> dict[str, np.ndarray]:
    def cat(i: int) -> np.ndarray:
        return np.concatenate([r[i] for r in rows])

    q = cat(2)
    return {
        "mean_abs": np.concatenate([r[0].mean.abs().numpy() for r in rows]).mean(0),
        "std": np.concatenate([r[0].log_std.exp().numpy() for r in rows]).mean(0),
        "value": np.concatenate([r[0].value.numpy() for r in rows]).mean(keepdims=True),
        "q_spread": cat(1).mean(keepdims=True),
        "q_range": np.percentile(q, 95, keepdims=True) - np.percentile(q, 5, keepdims=True),
        "dq_da": cat(3).mean(0),
        "reward_corr": np.corrcoef(cat(4), cat(5))[0, 1:],
    }


def show(path: str, report: dict[str, np.ndarray]) -> None:
    print(path, *(f"{k} {np.round(v, 3).tolist()}" for k, v in report.items()), sep="\n  ")


def main() -> None:
    probe_main(__doc__, probe, task="dmc/walker-walk", steps=100, show=show)


if __name__ == "__main__":
    main()

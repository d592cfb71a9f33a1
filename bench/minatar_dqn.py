"""A model-free peer for the MinAtar games: DQN at mtrl's budgets, on this machine.

    python bench/minatar_dqn.py --game Asterix --steps 100000 --seed 0 --out runs/dqn/asterix-0.json
    python bench/minatar_dqn.py --game Breakout --steps 20000 --eval-every 10000

What does a plain value-based learner reach at the env-step budgets mtrl's MinAtar runs use
(20k-100k agent steps per game, far below the MinAtar paper's 5M frames)? If it clears a
game's bar where mtrl does not, the agent is what falls short; if it does not either, the
budget is. Written for this project after the MinAtar paper's DQN (Young & Tian 2019: one 3x3
conv of 16 channels, a 128-unit layer, target network, replay); the differences are chosen
for short budgets and stated in the JSON: Adam instead of RMSprop, ε annealed over the first
``--explore-steps`` instead of 100k frames, a double-DQN target, 1 update of 32 per step.

Episodes run through mtrl's own adapter (sticky actions 0.1, difficulty ramping, as the
agent's runs). Training acts ε-greedily (ε ends at 0.1, as mtrl's collectors); evaluations
are greedy, like mtrl's, on games seeded apart from training's. Terminations stop
bootstrapping, truncations do not. One JSON of raw results per run.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mtrl.envs.make import make_env


@dataclass(frozen=True)
class DqnConfig:
    game: str = "Asterix"
    steps: int = 100_000
    seed: int = 0
    lr: float = 2.5e-4
    batch: int = 32
    gamma: float = 0.99
    replay_size: int = 100_000
    learning_starts: int = 1_000
    target_every: int = 1_000  # env steps between target-network copies
    explore_steps: int = 10_000  # ε falls linearly from 1 to its end over these steps
    epsilon_end: float = 0.1
    eval_every: int = 25_000
    eval_episodes: int = 32
    threads: int = 1


class QNetwork(nn.Module):
    """MinAtar's DQN network (Young & Tian 2019): a 3x3 conv of 16 channels, 128 hidden units,
    ``outputs`` linear outputs. ``padding=1`` keeps the conv at the grid's size (the
    ``offline_heads`` reference classifier's choice); MinAtar's own has none."""

    def __init__(self, channels: int, outputs: int, padding: int = 0, grid: int = 10) -> None:
        super().__init__()
        cells = (grid - 2 + 2 * padding) ** 2
        self.torso = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=padding), nn.ReLU(), nn.Flatten()
        )
        self.head = nn.Sequential(nn.Linear(16 * cells, 128), nn.ReLU(), nn.Linear(128, outputs))

    def forward(self, grids: torch.Tensor) -> torch.Tensor:  # [B, C, 10, 10] uint8 -> [B, A]
        return self.head(self.torso(grids.float() / 255.0))


class Replay:
    """A ring of (s, a, r, s', terminated) with observations stored as uint8 grids."""

    def __init__(self, size: int, shape: tuple[int, ...]) -> None:
        self.obs = np.zeros((size, *shape), np.uint8)
        self.next_obs = np.zeros((size, *shape), np.uint8)
        self.action = np.zeros(size, np.int64)
        self.reward = np.zeros(size, np.float32)
        self.terminated = np.zeros(size, np.float32)
        self.size, self.count, self.cursor = size, 0, 0

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, end: bool):
        i = self.cursor
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.terminated[i] = next_obs, float(end)
        self.cursor, self.count = (i + 1) % self.size, min(self.count + 1, self.size)

    def sample(self, rng: np.random.Generator, batch: int) -> list[torch.Tensor]:
        rows = rng.integers(self.count, size=batch)
        arrays = (self.obs, self.action, self.reward, self.next_obs, self.terminated)
        return [torch.from_numpy(a[rows]) for a in arrays]


def td_target(
    reward: torch.Tensor,  # [B]
    terminated: torch.Tensor,  # [B] 1.0 where the episode ended in the MDP
    next_online: torch.Tensor,  # [B, A] the online network's Q at s'
    next_target: torch.Tensor,  # [B, A] the target network's Q at s'
    gamma: float,
) -> torch.Tensor:
    """Double DQN (van Hasselt et al. 2016): the online network picks a', the target scores it."""
    best = next_online.argmax(1, keepdim=True)
    return reward + gamma * (1.0 - terminated) * next_target.gather(1, best).squeeze(1)


def td_loss(online: QNetwork, target: QNetwork, batch: list[torch.Tensor], gamma: float):
    obs, action, reward, next_obs, terminated = batch
    q = online(obs).gather(1, action[:, None]).squeeze(1)
    with torch.no_grad():
        goal = td_target(reward, terminated, online(next_obs), target(next_obs), gamma)
    return nn.functional.smooth_l1_loss(q, goal)


def epsilon(config: DqnConfig, step: int) -> float:
    fraction = min(step / max(config.explore_steps, 1), 1.0)
    return 1.0 + fraction * (config.epsilon_end - 1.0)


def act(net: QNetwork, obs: np.ndarray, eps: float, rng: np.random.Generator, n: int) -> int:
    if rng.random() < eps:
        return int(rng.integers(n))
    with torch.no_grad():
        return int(net(torch.from_numpy(obs)[None]).argmax(1))


def evaluate(net: QNetwork, config: DqnConfig, episodes: int) -> list[float]:
    env = make_env(f"minatar/{config.game}")
    rng, returns = np.random.default_rng(0), []
    for episode in range(episodes):  # seeds far from training's, the same at every evaluation
        step, total = env.reset(seed=1_000_000 + episode), 0.0
        while not step.done:
            step = env.step(act(net, step.obs, 0.0, rng, env.spec.action.n))
            total += step.reward
        returns.append(total)
    env.close()
    return returns


def train(config: DqnConfig) -> dict:
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    env = make_env(f"minatar/{config.game}", seed=config.seed)
    n = env.spec.action.n
    step = env.reset()
    online = QNetwork(step.obs.shape[0], n)
    target = QNetwork(step.obs.shape[0], n)
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=config.lr)
    replay = Replay(config.replay_size, step.obs.shape)
    evaluations, episodes, episode_return, updates = [], [], 0.0, 0
    start = time.time()
    for t in range(config.steps + 1):
        if t % config.eval_every == 0:
            returns = evaluate(online, config, config.eval_episodes)
            evaluations.append({"step": t, "mean": float(np.mean(returns)), "returns": returns})
            print(
                f"{config.game} seed {config.seed} step {t}: eval {np.mean(returns):.2f} "
                f"({time.time() - start:.0f} s)",
                flush=True,
            )
        if t == config.steps:
            break
        action = act(online, step.obs, epsilon(config, t), rng, n)
        after = env.step(action)
        replay.add(step.obs, action, after.reward, after.obs, after.terminated)
        episode_return += after.reward
        step = after
        if after.done:
            episodes.append({"end_step": t + 1, "return": episode_return})
            step, episode_return = env.reset(), 0.0
        if t >= config.learning_starts:
            loss = td_loss(online, target, replay.sample(rng, config.batch), config.gamma)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            updates += 1
        if t % config.target_every == 0:
            target.load_state_dict(online.state_dict())
    env.close()
    return {
        "config": asdict(config),
        "evaluations": evaluations,
        "episodes": episodes,
        "updates": updates,
        "wall_s": time.time() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for field, default in asdict(DqnConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    parser.add_argument("--out", type=Path, default=None, help="write the raw JSON here")
    args = vars(parser.parse_args())
    out = args.pop("out")
    result = train(DqnConfig(**args))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()

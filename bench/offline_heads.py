"""Can a launcher's world model learn a task's rewards and endings at all? Trained offline on
uniformly random play, with no search and no acting, so that what it fails to learn is the
model's and the loss's doing, not exploration's.

    python bench/offline_heads.py --launcher minatar5 --task minatar/Asterix --updates 3000
    python bench/offline_heads.py --launcher minatar5 --task minatar/Asterix --updates 3000 \\
        --set 'learner.loss_weights=[["value",0.5],["reward",1],["policy",1],["latent",1]]'

One task's replay is filled with ``--rows`` steps of random play (2 envs, the launcher's env
settings); the launcher's model is trained on it by the runs' own ``Learner`` (its loss weights,
priorities, target network, batch size and learning rate; ``--set`` changes any of them as on a
launcher). Every ``--every`` updates, one imagined step per held-out random transition (other
env seeds) is scored:

- ``reward_auc``: ROC AUC of the predicted reward r(s, a) of the played action, between steps
  that paid a reward and steps that did not (0.5: blind; 1: perfect);
- ``end_auc``: ROC AUC of -V(s') of the imagined next state, between steps that ended the
  episode and steps that did not;
- ``value_std``: the spread of V(s') over the held-out steps (0: one value for every state);
- ``latent_std``: the encoder's latent's spread over the held-out states (mean over its entries
  of each one's std): near 0 when the encoder maps every state to one latent;
- ``reward_choice_auc`` and ``end_choice_auc``: whether it knows *which action* pays or ends.
  Each held-out state is also played with every action on a copy of the game (same random
  stream, so the same spawns and sticky draws); on the states where some actions pay and others
  do not, the fraction of (paying, non-paying) action pairs whose r(s, a) ranks the paying one
  higher, and likewise V(s') ranking a surviving action above an ending one (ties count half;
  0.5: the action makes no difference to the model). ``reward_choices`` and ``end_choices``
  count those states. With an end head (``end_head``), ``end_head_auc`` and
  ``end_head_choice_auc`` score its P(end) in place of V(s').

``--reference`` first trains a classifier with MinAtar's DQN torso on as many random steps of
other seeds and scores it on the same held-out steps: how predictable both events are from
(s, a) at all.

``--replay CKPT`` trains on the replay a run saved in its checkpoint (the states its own policy
visited, with its search's policy targets) instead of random play: what an online run's data
does to the same model. ``--policy-targets`` rewrites the stored targets: ``uniform`` over the
legal actions, or ``one-hot`` on the played action (as sharp and as noisy as a search's can be).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from learning import alone
from learning import launcher_config as printed_config
from minatar_dqn import QNetwork
from scipy.stats import mannwhitneyu
from search_policy import entropy

from mtrl.agents.acting import ActingConfig, ActResult
from mtrl.agents.batching import start_row_priorities
from mtrl.agents.collect import Collector
from mtrl.agents.learner import Learner
from mtrl.agents.replay import TaskReplay
from mtrl.envs.base import TaskEnv
from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.envs.vector import ActionBatch, MultiTaskEnv
from mtrl.overrides import from_json
from mtrl.runtime import RunConfig
from mtrl.runtime.checkpoint import CheckpointError, read_checkpoint
from mtrl.runtime.replay_shard import restore_snapshot
from mtrl.runtime.topology import resolve_run_tasks
from mtrl.world_models import WorldModel
from mtrl.world_models.config import preset
from mtrl.world_models.types import observations_from_batch

# Random steps scored, 16 envs on seeds the training data never used: ~65 of them pay and ~150
# end in Asterix (3,000 left ~20 paying steps, too few for a stable AUC).
HELD_OUT_STEPS = 10_000
TARGETS = ("stored", "uniform", "one-hot")


@dataclass(frozen=True)
class HeldOut:
    obs: list[ObsBatch]  # one batch of envs per step
    actions: list[np.ndarray]  # [E] each
    paid: np.ndarray  # [steps * E] bool
    ended: np.ndarray  # [steps * E] bool
    pays: np.ndarray  # [steps * E, A] bool: would action a have paid from this state
    ends: np.ndarray  # [steps * E, A] bool: would action a have ended the episode


class RandomActor:
    """Uniformly random legal actions, stored with a uniform search policy."""

    def __init__(self, config: ActingConfig, actions: int, seed: int):
        self.config, self.actions, self.rng = config, actions, np.random.default_rng(seed)

    def act(self, obs: ObsBatch, discounts: object, temperature: float, seed: int = 0):
        policy = uniform(obs.legal[:, : self.actions])
        rows = len(policy)
        chosen = np.array([self.rng.choice(self.actions, p=p) for p in policy])
        return ActResult(
            chosen,
            np.zeros((rows, 1), np.float32),
            policy,
            np.zeros((rows, 1, 1), np.float32),
            np.zeros(rows, np.float32),
        )


def uniform(legal: np.ndarray) -> np.ndarray:
    """[N, A] bool -> [N, A] float32: each row's probability spread over its legal actions."""
    legal = legal.astype(np.float32)
    return legal / legal.sum(1, keepdims=True)


def step_rows(replay: TaskReplay) -> np.ndarray:
    """The stored rows that hold an action and a policy target (final rows hold neither)."""
    return np.flatnonzero(~replay.is_last[: len(replay)])


def launcher_config(launcher: str, task: str, sets: list[str]) -> RunConfig:
    """``launch/<launcher>.py``'s config on ``task`` alone with ``sets``, as the launcher
    itself prints and validates it (no launcher adds fields to ``RunConfig``)."""
    return from_json(RunConfig, json.dumps(printed_config(launcher, [*alone(task), *sets])))


def random_replay(tasks: TaskSet, config: RunConfig, rows: int, seed: int) -> TaskReplay:
    replay = TaskReplay(tasks.specs[0], config.replay)
    env = MultiTaskEnv(tasks, envs_per_task=2, settings=config.env, seed=seed)
    actor = RandomActor(config.acting.for_evaluation(), tasks.specs[0].action.n, seed)
    Collector(env, actor, {0: replay}, config.replay.discounts(tasks.specs)).collect(
        rows // 2, temperature=1.0
    )
    env.close()
    return replay


def checkpoint_replay(tasks: TaskSet, config: RunConfig, path: Path) -> TaskReplay:
    """The task's rows from a run checkpoint's replay snapshot (its newest
    ``replay_snapshot_rows``), in a replay as large as the snapshot: nothing is added to it."""
    spec = tasks.specs[0]
    try:
        snapshot = read_checkpoint(path)["replay"].get(spec.id)
    except CheckpointError as error:
        raise SystemExit(str(error)) from error
    if not snapshot or not int(snapshot["rows"]):
        raise SystemExit(f"{path} holds no replay rows of {spec.id}")
    replay = TaskReplay(spec, dataclasses.replace(config.replay, capacity=int(snapshot["rows"])))
    restore_snapshot(replay, snapshot)
    return replay


def retarget(replay: TaskReplay, kind: str) -> TaskReplay:
    """Rewrite the stored policy targets: ``stored`` keeps them, ``uniform`` spreads them over
    the legal actions, ``one-hot`` puts all of each on the action played."""
    steps = step_rows(replay)
    if kind == "uniform":
        replay.policy[steps] = uniform(replay.legal[steps, : replay.policy.shape[1]])
    elif kind == "one-hot":
        replay.policy[steps] = np.eye(replay.policy.shape[1], dtype=np.float32)[
            replay.action_index[steps]
        ]
    elif kind != "stored":
        raise ValueError(f"unknown policy targets {kind!r}: stored, uniform or one-hot")
    return replay


def data_summary(replay: TaskReplay) -> dict[str, float]:
    """What the training rows hold: how often a step pays or ends, and how sharp the policy
    targets are (nats; uniform over n actions is log n)."""
    steps = step_rows(replay)
    return {
        "steps": len(steps),
        "paid": float((replay.reward[steps] > 0).mean()),
        "ended": float(replay.terminated[: len(replay)].sum() / len(steps)),
        "target_entropy": float(entropy(replay.policy[steps].astype(np.float64)).mean()),
    }


def held_out(tasks: TaskSet, config: RunConfig, steps: int, seed: int, envs: int = 16) -> HeldOut:
    if tasks.specs[0].action.is_continuous:
        raise SystemExit(f"{tasks.specs[0].id} is continuous: offline_heads scores discrete tasks")
    env = MultiTaskEnv(tasks, envs_per_task=envs, settings=config.env, seed=seed)
    rng, obs = np.random.default_rng(seed), env.reset()
    seen, actions, paid, ended, pays, ends = [], [], [], [], [], []
    vectors = np.zeros((envs, max(tasks.max_action_dim, 1)), np.float32)
    for _ in range(steps // envs):
        played = np.array([rng.choice(np.flatnonzero(legal)) for legal in obs.legal])
        outcomes = [every_action(env.env(row), tasks.specs[0].action.n) for row in range(envs)]
        pays.append(np.stack([pay for pay, _ in outcomes]))
        ends.append(np.stack([end for _, end in outcomes]))
        batch = env.step(ActionBatch(played, vectors))
        seen.append(obs)
        actions.append(played)
        paid.append(batch.reward > 0)
        ended.append(batch.terminated)
        obs = batch.obs
    env.close()
    return HeldOut(
        seen,
        actions,
        np.concatenate(paid),
        np.concatenate(ended),
        np.concatenate(pays),
        np.concatenate(ends),
    )


def every_action(game: TaskEnv, actions: int) -> tuple[np.ndarray, np.ndarray]:
    """[A], [A] bool: whether each action, played once on a copy of ``game``, pays and ends the
    episode. The copy carries the game's random state, so every action meets the same draws."""
    pays, ends = np.zeros(actions, bool), np.zeros(actions, bool)
    for action in range(actions):
        step = copy.deepcopy(game).step(action)
        pays[action], ends[action] = step.reward > 0, step.terminated
    return pays, ends


def choice_auc(good: np.ndarray, scores: np.ndarray) -> tuple[float | None, int]:
    """Within-state ranking: over the states (rows) of ``good`` [N, A] where some actions are
    good and some are not, the fraction of (good, other) action pairs whose ``scores`` [N, A]
    rank the good one higher (ties count half); and how many such states there were."""
    mixed = good.any(1) & ~good.all(1)
    good, scores = good[mixed], scores[mixed]
    if not len(good):
        return None, 0
    above = (scores[:, :, None] > scores[:, None, :]) + 0.5 * (
        scores[:, :, None] == scores[:, None, :]
    )
    pairs = good[:, :, None] & ~good[:, None, :]
    return float(above[pairs].mean()), int(mixed.sum())


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of ``scores`` for boolean ``labels`` (ties count half); None with one class."""
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return None
    return float(mannwhitneyu(positive, negative).statistic / (len(positive) * len(negative)))


def choice_scores(
    pays: np.ndarray, ends: np.ndarray, reward: np.ndarray, value: np.ndarray
) -> dict[str, float | int | None]:
    """``choice_auc`` of r(s, a) for paying and of V(s') for surviving, all [N, A]."""
    reward_choice, reward_states = choice_auc(pays, reward)
    end_choice, end_states = choice_auc(~ends, value)
    return {
        "reward_choice_auc": reward_choice,
        "end_choice_auc": end_choice,
        "reward_choices": reward_states,
        "end_choices": end_states,
    }


@torch.no_grad()
def scores(model: WorldModel, data: HeldOut) -> dict[str, float | int | None]:
    model.eval()
    rewards, values, ends, latents = [], [], [], []  # [E, A] each
    for obs in data.obs:
        inputs = observations_from_batch(obs)
        root = model.initial_inference(inputs).state
        steps = [
            model.recurrent_inference(root, torch.full((obs.size,), a, dtype=torch.int64))
            for a in range(data.pays.shape[1])
        ]
        rewards.append(torch.stack([s.reward for s in steps], 1).float().numpy())
        values.append(torch.stack([s.value for s in steps], 1).float().numpy())
        ends.append(torch.stack([s.end_prob for s in steps], 1).float().numpy())
        latents.append(model.encode(inputs).float().numpy())
    reward, value, end = (np.concatenate(part) for part in (rewards, values, ends))
    rows = np.arange(len(reward))
    played = np.concatenate(data.actions)
    model.train()
    heads = {}
    if model.end_head is not None:  # the same two scores with the end head's P(end) for V(s')
        heads = {
            "end_head_auc": auc(data.ended, end[rows, played]),
            "end_head_choice_auc": choice_auc(~data.ends, -end)[0],
        }
    return {
        "reward_auc": auc(data.paid, reward[rows, played]),
        "end_auc": auc(data.ended, -value[rows, played]),
        **choice_scores(data.pays, data.ends, reward, value),
        **heads,
        "value_std": float(value[rows, played].std()),
        "latent_std": float(np.concatenate(latents).std(0).mean()),
    }


def reference_scores(
    tasks: TaskSet, updates: int, seed: int, train: HeldOut, test: HeldOut
) -> dict[str, float | None]:
    """How predictable both events are from (s, a): a classifier with MinAtar's DQN torso (one
    3x3 conv of 16 channels, 128 hidden units; Young & Tian 2019), trained with binary
    cross-entropy on ``train``'s random steps to tell the steps that pay and those that end."""
    if not train.obs[0].image_rows.size:
        raise SystemExit("--reference needs an image task")
    torch.manual_seed(seed)
    frames = torch.from_numpy(np.concatenate([o.image for o in train.obs]))  # uint8 grids
    actions = torch.from_numpy(np.concatenate(train.actions))
    labels = torch.from_numpy(np.stack([train.paid, train.ended], 1)).float()
    count, (channels, height, _) = tasks.specs[0].action.n, frames.shape[1:]
    net = QNetwork(channels, 2 * count, padding=1, grid=height)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

    def logits(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:  # [N, 2]: pays, ends
        return net(x).view(len(x), 2, count)[torch.arange(len(x)), :, a]

    for _ in range(updates):
        pick = torch.randint(0, len(frames), (256,))
        loss = F.binary_cross_entropy_with_logits(logits(frames[pick], actions[pick]), labels[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        test_frames = torch.from_numpy(np.concatenate([o.image for o in test.obs]))
        out = logits(test_frames, torch.from_numpy(np.concatenate(test.actions))).numpy()
        every = net(test_frames).view(len(test_frames), 2, count).numpy()  # [N, 2, A]
    return {
        "reward_auc": auc(test.paid, out[:, 0]),
        "end_auc": auc(test.ended, out[:, 1]),
        **choice_scores(test.pays, test.ends, every[:, 0], -every[:, 1]),
    }


def train(
    config: RunConfig, data: HeldOut, replay: TaskReplay, updates: int, every: int, seed: int
) -> list[dict]:
    """The model trained on ``replay``'s rows, scored on ``data`` every ``every`` updates."""
    torch.manual_seed(seed)
    tasks = resolve_run_tasks(config)
    model = WorldModel(tasks, preset(config.model_preset, **dict(config.model_overrides)))
    discounts = config.replay.discounts(tasks.specs)
    learner = Learner(model, tasks, config.learner, config.acting.sampled_actions, None, discounts)
    replays = {0: replay}
    rng, started, reports = np.random.default_rng(seed), time.perf_counter(), []
    for update in range(updates + 1):
        if update % every == 0 or update == updates:
            seconds = round(time.perf_counter() - started, 1)
            reports.append({"updates": update, "seconds": seconds, **scores(model, data)})
            print(json.dumps(reports[-1]), flush=True)
        if update == updates:
            break
        samples = learner.draw(replays, rng)
        metrics = learner.train_step(learner.assemble(samples))
        if config.replay.priority_exponent:
            for sample, starts, priorities in start_row_priorities(samples, metrics["priorities"]):
                sample.replay.set_priorities(starts, priorities)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--launcher", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--updates", type=int, default=3_000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--rows", type=int, default=30_000, help="random-play steps in replay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--replay", type=Path, help="train on this checkpoint's replay snapshot")
    parser.add_argument("--policy-targets", choices=TARGETS, default="stored")
    parser.add_argument(
        "--reference", action="store_true", help="first the DQN-torso classifier's AUCs"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = launcher_config(args.launcher, args.task, args.set)
    tasks = resolve_run_tasks(config)
    test = held_out(tasks, config, HELD_OUT_STEPS, args.seed + 1_000)
    if args.reference:
        data = held_out(tasks, config, args.rows, args.seed)
        reference = reference_scores(tasks, args.updates, args.seed, data, test)
        print(json.dumps({"reference": reference, "updates": args.updates}), flush=True)
    if args.replay:
        replay = checkpoint_replay(tasks, config, args.replay)
    else:
        replay = random_replay(tasks, config, args.rows, args.seed)
    retarget(replay, args.policy_targets)
    print(json.dumps({"data": str(args.replay or "random"), **data_summary(replay)}), flush=True)
    train(config, test, replay, args.updates, args.every, args.seed)


if __name__ == "__main__":
    main()

"""MinAtar grids next to Atari frames and vectors: one padded batch, one encoder per frame shape,
through inference, replay, the learner's batching and the losses."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from mtrl.agents.batching import TaskSample, bootstrap_values, unrolled_batch
from mtrl.agents.collect import row_observations
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs import get_suite, get_task
from mtrl.envs.base import Step
from mtrl.envs.batch import TaskSet, stack_observations
from mtrl.envs.make import make_env
from mtrl.world_models import Actions, WorldModel, preset
from mtrl.world_models.heads import MASKED

# Breakout and Asterix share a shape (4x10x10); Seaquest is 10x10x10; Pong (no ROM needed:
# its frames are made up below, as tests/agents/test_acting.py does) 3x64x64.
TASKS = TaskSet(
    tuple(
        get_task(t)
        for t in (
            "minatar/Breakout",
            "classic/CartPole",
            "minatar/Seaquest",
            "atari/Pong",
            "minatar/Asterix",
        )
    )
)
ROWS = [0, 1, 2, 3, 4, 2, 0]


def steps(rng: np.random.Generator) -> list[Step]:
    """A first observation of each row's task: real MinAtar grids, fake Pong, a CartPole state."""
    out = []
    for row, task in enumerate(ROWS):
        spec = TASKS[task]
        if spec.suite == "minatar":
            out.append(make_env(spec, seed=row).reset(seed=row))
        elif spec.suite == "atari":
            frame = rng.integers(0, 255, spec.obs_shape, dtype=np.uint8)
            out.append(Step(frame, 0.0, False, False, np.ones(18, bool)))
        else:
            vector = rng.normal(size=4).astype(np.float32)
            out.append(Step(vector, 0.0, False, False, np.ones(2, bool)))
    return out


def model() -> WorldModel:
    torch.manual_seed(0)
    return WorldModel(TASKS, preset("tiny"))


def test_one_encoder_per_frame_shape_and_single_shape_models_unchanged() -> None:
    encoder = model().encoder
    assert encoder.image_kinds == [
        ((4, 10, 10), 1),  # Breakout and Asterix: full resolution
        ((10, 10, 10), 1),
        ((3, 64, 64), 2),  # Atari: stride-2 stages, as before
    ]
    assert len(encoder.more_images) == 2 and encoder.image_kind.tolist() == [0, -1, 1, 2, 0]
    tiny = WorldModel(TaskSet(get_suite("tiny")), preset("tiny")).state_dict()
    assert not [k for k in tiny if "more_images" in k or "image_kind" in k]
    assert tiny["encoder.image.net.0.weight"].shape[1] == 3  # Atari's encoder, as it was


def test_object_grids_reach_the_projection_cell_by_cell() -> None:
    encoder = model().encoder
    breakout, seaquest, pong = encoder.image, *encoder.more_images
    assert breakout.proj.in_features == 16 * 10 * 10  # the tiny preset's last stage, every cell
    assert seaquest.proj.in_features == 16 * 10 * 10
    assert pong.proj.in_features == 16 * 4 * 4  # Atari frames: pooled to image_grid 4
    grid = torch.zeros(1, 4, 10, 10)
    assert breakout.net(grid).shape == (1, 16 * 10 * 10)  # no pooling between stages and proj


@torch.no_grad()
def test_mixed_shapes_encode_and_step() -> None:
    wm = model()
    obs = stack_observations(TASKS, ROWS, steps(np.random.default_rng(0)))
    assert obs.image.shape == (6, 10, 64, 64)  # every image row padded to the largest shape
    pred = wm.initial_inference(obs)
    valid = (pred.policy_logits > MASKED / 2).sum(1).tolist()
    assert valid == [3, 2, 6, 18, 5, 6, 3]  # each game's own action set
    actions = Actions(torch.tensor([2, 1, 5, 17, 4, 0, 1]))
    after = wm.recurrent_inference(pred.state, actions)
    assert torch.isfinite(after.value).all() and torch.isfinite(after.reward).all()
    # A row's latent does not depend on the padding around it: the same Seaquest grid alone,
    # unpadded, encodes to the same latent.
    alone = stack_observations(TaskSet((TASKS[2],)), [0], [steps(np.random.default_rng(0))[2]])
    assert alone.image.shape == (1, 10, 10, 10)
    single = wm.initial_inference(replace(alone, task_ids=np.array([2]))).state.latent
    torch.testing.assert_close(pred.state.latent[2:3], single, atol=1e-5, rtol=1e-5)


def test_replay_keeps_own_shapes_and_learner_batches_train() -> None:
    wm = model()
    rng = np.random.default_rng(1)
    replays = {t: TaskReplay(TASKS[t], ReplayConfig(capacity=64)) for t in range(len(TASKS))}
    obs = stack_observations(TASKS, ROWS, steps(rng))
    for t in range(12):  # padded batch rows go into replay as the Collector stores them
        for row, (frame, _) in enumerate(row_observations(obs)):
            spec = TASKS[ROWS[row]]
            policy = np.full(spec.action.n, 1 / spec.action.n, np.float32)
            legal = obs.legal[row]
            replays[ROWS[row]].add(row, frame, legal, t % spec.action.n, 1.0, policy, 0.5)
    assert replays[0].obs.shape[1:] == (4, 10, 10) and replays[2].obs.shape[1:] == (10, 10, 10)
    assert replays[3].obs.shape[1:] == (3, 64, 64)
    samples = [
        TaskSample(t, replay, replay.sample(2, np.random.default_rng(t)))
        for t, replay in replays.items()
    ]
    values = bootstrap_values(wm, TASKS, samples)
    batch = unrolled_batch(TASKS, samples, values, sampled_actions=8)
    assert batch.obs.image.shape[2:] == (10, 64, 64) and batch.obs.image_rows.numel() == 8
    losses = wm.losses(batch)
    total = losses.per_task().sum()
    total.backward()
    grads = [p.grad for p in wm.encoder.more_images.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)  # Seaquest's and Pong's encoders learn

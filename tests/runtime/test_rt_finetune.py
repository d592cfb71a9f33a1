"""Fine-tuning (``init_from``) moves every per-task tensor by task id (issue 21, defect 1).

The checks are of two kinds: named tensors compared row by row at hand-computed positions
(independent of the model's own layout declaration), and predictions of each carried task,
which must not change when the task's weights move to another slot. No Ray, no training.
"""

from __future__ import annotations

import pytest
import torch

from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import resolve_tasks
from mtrl.envs.spec import Modality
from mtrl.runtime.finetune import finetune_state
from mtrl.world_models import Actions, Observations, WorldModel, preset

TEXT = "text/tw-coin_collector-l1"
VECTOR_KEYS = ("w1", "b1", "w2", "b2")
HEADS = ("policy_head.mlp", "value_head", "reward_head", "latent_head")


def build(names: list[str], seed: int, **changes: object) -> WorldModel:
    """A random model; zero-initialised weights (policy, value and reward outputs, biases) get
    noise too, else two models would agree on them whatever fine-tuning did."""
    torch.manual_seed(seed)
    model = WorldModel(TaskSet(resolve_tasks(names)), preset("tiny", **changes))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def saved(model: WorldModel) -> dict:
    """The part of a run checkpoint that ``finetune_state`` reads."""
    return {"tasks": list(model.tasks.names), "model": model.checkpoint()}


def one_row(model: WorldModel, name: str) -> tuple[Observations, Actions]:
    """A fixed observation and action of task ``name`` as a batch of one row."""
    tasks = model.tasks
    task, spec = tasks.index(name), tasks[tasks.index(name)]
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    vector = torch.zeros(0, tasks.max_vector_dim)
    text: tuple[str, ...] = ()
    commands: tuple[tuple[str, ...], ...] = ()
    if spec.modality == Modality.VECTOR:
        vector = torch.zeros(1, tasks.max_vector_dim)
        vector[0, : spec.obs_shape[0]] = torch.randn(spec.obs_shape[0], generator=gen)
    else:
        text, commands = ("a dark room with a coin",), (("take coin", "go north", "open door"),)
    one, none = torch.zeros(1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    obs = Observations(
        task_ids=torch.tensor([task]),
        image=torch.zeros(0, 3, 64, 64, dtype=torch.uint8),
        image_rows=none,
        vector=vector,
        vector_rows=one if vector.shape[0] else none,
        text=text,
        text_rows=one if text else none,
        commands=commands,
    )
    vec = torch.zeros(1, max(tasks.max_action_dim, 1))
    vec[0, : spec.action.dim] = torch.rand(spec.action.dim, generator=gen) - 0.5
    return obs, Actions(index=torch.tensor([1]), vector=vec)


def predictions(model: WorldModel, name: str, log_std: bool = True) -> list[torch.Tensor]:
    """What the model predicts for task ``name`` at the root and after one action."""
    spec = model.tasks[model.tasks.index(name)]
    obs, action = one_row(model, name)
    out = []
    with torch.no_grad():
        root = model.initial_inference(obs)
        child = model.recurrent_inference(root.state, action)
        for pred in (root, child):
            k, n = spec.action.dim, (3 if spec.action.kind == "text" else spec.action.n)
            out += [pred.state.latent, pred.value_logits, pred.policy_logits[:, :n]]
            out += [pred.mean[:, :k]] + ([pred.log_std[:, :k]] if log_std else [])
        out.append(child.reward_logits)
    return out


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_other_tasks_carry_each_task_by_id_not_by_slot() -> None:
    old = build(["classic/CartPole", "classic/Acrobot"], seed=0)
    model = build(["classic/Acrobot", "classic/MountainCar"], seed=1)
    fresh, before = model.state_dict(), old.state_dict()
    fresh = {k: v.clone() for k, v in fresh.items()}
    weights, report = finetune_state(saved(old), model)
    for enc in ("encoder.vector", "target_encoder.vector"):
        for name in VECTOR_KEYS:
            key = f"{enc}.{name}"  # stacked per vector task: CartPole 0, Acrobot 1 in the old
            assert torch.equal(weights[key][0], before[key][1]), key
            assert torch.equal(weights[key][1], fresh[key][1]), key  # MountainCar: fresh
    table = "action_embed.discrete.weight"  # rows: CartPole 0-1, Acrobot 2-4 | Acrobot 0-2, MC 3-5
    assert torch.equal(weights[table][0:3], before[table][2:5])
    assert torch.equal(weights[table][3:6], fresh[table][3:6])
    for key in ("task_embed", *(f"{head}.task" for head in HEADS)):
        assert torch.equal(weights[key][0], before[key][1]), key
        assert torch.equal(weights[key][1], fresh[key][1]), key
    assert report["carried_tasks"] == ["classic/Acrobot"]
    assert report["fresh_tasks"] == ["classic/MountainCar"]
    model.load_state_dict(weights)
    assert_same(predictions(model, "classic/Acrobot"), predictions(old, "classic/Acrobot"))


def test_a_subset_keeps_its_encoder_and_action_table() -> None:
    old = build(["classic/CartPole", "classic/Acrobot"], seed=0)
    model = build(["classic/Acrobot"], seed=1)
    before = old.state_dict()
    weights, report = finetune_state(saved(old), model)
    for name in VECTOR_KEYS:
        key = f"encoder.vector.{name}"
        assert torch.equal(weights[key][0], before[key][1]), key
    table = "action_embed.discrete.weight"
    assert torch.equal(weights[table][0:3], before[table][2:5])
    assert report["carried_tasks"] == ["classic/Acrobot"] and report["fresh_tasks"] == []
    assert "encoder.vector.w1" in report["by_task"]
    model.load_state_dict(weights)
    assert_same(predictions(model, "classic/Acrobot"), predictions(old, "classic/Acrobot"))


@pytest.mark.parametrize("per_task_heads", [False, True])
def test_mixed_modalities_move_by_task(per_task_heads: bool) -> None:
    old_names = ["dmc/cartpole-swingup", "classic/CartPole", TEXT, "dmc/pendulum-swingup"]
    # New: reordered, one task dropped, two added; walker-walk widens the action (1 -> 6) and
    # observation (5 -> 24) padding, Acrobot shifts the discrete table.
    names = [TEXT, "dmc/pendulum-swingup", "dmc/walker-walk", "classic/Acrobot", "classic/CartPole"]
    old = build(old_names, seed=0, per_task_heads=per_task_heads)
    model = build(names, seed=1, per_task_heads=per_task_heads)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    before = old.state_dict()
    weights, report = finetune_state(saved(old), model)
    # Continuous slots: old cartpole-swingup 0, pendulum 1 | new pendulum 0, walker 1.
    assert torch.equal(weights["action_embed.cont_w"][0, :1], before["action_embed.cont_w"][1])
    assert torch.equal(weights["action_embed.cont_b"][0], before["action_embed.cont_b"][1])
    assert torch.equal(weights["action_embed.cont_w"][1], fresh["action_embed.cont_w"][1])
    # Discrete rows: old CartPole 0-1, text 2-21 | new text 0-19, Acrobot 20-22, CartPole 23-24.
    table = "action_embed.discrete.weight"
    assert torch.equal(weights[table][0:20], before[table][2:22])
    assert torch.equal(weights[table][20:23], fresh[table][20:23])
    assert torch.equal(weights[table][23:25], before[table][0:2])
    # Vector slots: old cartpole-swingup 0, CartPole 1, pendulum 2 (width 5) | new pendulum 0,
    # walker 1, Acrobot 2, CartPole 3 (width 24).
    w1 = "encoder.vector.w1"
    assert torch.equal(weights[w1][0, :3], before[w1][2, :3])
    assert torch.equal(weights[w1][3, :4], before[w1][1, :4])
    assert torch.equal(weights[w1][1], fresh[w1][1]) and torch.equal(weights[w1][2], fresh[w1][2])
    assert report["carried_tasks"] == [TEXT, "dmc/pendulum-swingup", "classic/CartPole"]
    assert report["fresh_tasks"] == ["dmc/walker-walk", "classic/Acrobot"]
    model.load_state_dict(weights)
    for name in report["carried_tasks"]:
        # A shared policy head reads log-std at columns after the widest action of the task
        # set, which walker-walk moved; per-task heads move those columns with the task.
        log_std = per_task_heads or name != "dmc/pendulum-swingup"
        assert_same(predictions(model, name, log_std), predictions(old, name, log_std))


def test_shape_mismatches_start_fresh_and_are_named() -> None:
    old = build(["classic/CartPole", "classic/Acrobot"], seed=0)
    model = build(["classic/Acrobot"], seed=1, vector_hidden=48, per_task_heads=True)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    weights, report = finetune_state(saved(old), model)
    # Shared in the checkpoint, per task here: the same shape with one task, not the same role.
    assert torch.equal(weights["value_head.w1"], fresh["value_head.w1"])
    assert "value_head.w1" in report["fresh"]
    for name in VECTOR_KEYS[:3]:  # b2 is [tasks, embed_dim]: it still fits
        key = f"encoder.vector.{name}"
        assert torch.equal(weights[key], fresh[key]), key
        assert f"{key}[classic/Acrobot]" in report["fresh"]
    assert report["carried_tasks"] == ["classic/Acrobot"]  # its task embedding and table moved


def test_every_task_dependent_tensor_is_declared_per_task() -> None:
    """Guards against a new per-task module being copied by slot: a tensor whose shape changes
    with the task set must be in the model's task layout, and tasks' parts never overlap."""
    small = ["atari/Pong", "dmc/cartpole-swingup", TEXT, "classic/CartPole"]
    more = ["atari/Pong", "atari/Boxing", "dmc/cartpole-swingup", "dmc/walker-walk", TEXT]
    more += ["text/tw-treasure_hunter-l1", "classic/CartPole", "classic/Acrobot"]
    for per_task_heads in (False, True):
        a = build(small, 0, per_task_heads=per_task_heads).state_dict()
        model = build(more, 0, per_task_heads=per_task_heads)
        layout, b = model.task_layout(), model.state_dict()
        changed = [k for k in a if a[k].shape != b[k].shape]
        assert changed and [k for k in changed if k not in layout] == []
        for key, parts in layout.items():
            used = torch.zeros(b[key].shape, dtype=torch.int64)
            for index in parts.values():
                used[index_grid(index)] += 1
            assert int(used.max()) == 1, f"{key}: tasks' parts overlap"


def index_grid(index: tuple) -> tuple[torch.Tensor, ...]:
    dims = [torch.as_tensor(i) for i in index]
    return tuple(
        d.view([-1 if j == n else 1 for j in range(len(dims))]) for n, d in enumerate(dims)
    )

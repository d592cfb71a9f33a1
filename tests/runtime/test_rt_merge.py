"""``mtrl merge`` on real checkpoints: a base trained on CartPole + Acrobot, one expert per
task fine-tuned from it (``init_from``), merged by every method into a checkpoint that
``mtrl eval`` reads and a run resumes; per-task parameters come from their owner by task id,
and experts of another base are refused."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_rt_e2e import tiny_config

from mtrl.cli import main as cli
from mtrl.runtime import read_checkpoint, train_local
from mtrl.runtime.finetune import layout_of
from mtrl.runtime.merge import MergeConfig, merge
from mtrl.world_models.task_layout import part

TASKS = ("classic/CartPole", "classic/Acrobot")


def config(run_dir: Path, tasks: tuple[str, ...], steps: int, init_from: str = ""):
    base = tiny_config(run_dir, steps)
    replay = replace(base.replay, task_discounts=())
    return replace(base, tasks=tasks, replay=replay, init_from=init_from, eval_at_start=False)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge")
    base = train_local(config(root / "base", TASKS, 80)).checkpoints[-1]
    paths = {"base": base}
    for task in TASKS:
        name = task.split("/")[1]
        run = train_local(config(root / name, (task,), 60, init_from=str(base)))
        paths[task] = run.checkpoints[-1]
    return paths


def merged(checkpoints, tmp_path: Path, **options) -> tuple[Path, dict]:
    experts = [checkpoints[t].parent.parent for t in TASKS]  # run folders stand for their newest
    path = merge(checkpoints["base"], experts, tmp_path / "merged", MergeConfig(**options))
    return path, read_checkpoint(path)


def assert_owned_parts(state: dict, checkpoints: dict) -> None:
    """Every per-task entry of the merged model is its owner's, found by task id."""
    weights, cfg = state["model"]["state"], state["model"]["config"]
    layout = layout_of(list(state["tasks"]), cfg)
    for t, task in enumerate(state["tasks"]):
        expert = read_checkpoint(checkpoints[task])
        theirs = layout_of(list(expert["tasks"]), cfg)
        mine = expert["tasks"].index(task)
        for key, parts in layout.items():
            if t in parts:
                got = part(weights[key], parts[t])
                want = part(expert["model"]["state"][key], theirs[key][mine])
                assert torch.equal(got, want), (key, task)


@pytest.mark.parametrize("method", ["task_arithmetic", "ties", "consensus", "adamerging"])
def test_every_method_writes_an_ordinary_checkpoint(checkpoints, tmp_path, method) -> None:
    options = {"ada_steps": 3, "ada_rows": 8} if method == "adamerging" else {}
    _, state = merged(checkpoints, tmp_path, method=method, **options)
    assert state["tasks"] == list(TASKS) and state["merge"]["method"] == method
    assert_owned_parts(state, checkpoints)
    base_steps = read_checkpoint(checkpoints["base"])["counters"]["env_steps"]
    assert state["counters"]["env_steps"] > base_steps  # experts' steps added
    assert set(state["replay"]) == set(TASKS)  # each task's rows from its owner


def test_task_arithmetic_adds_the_scaled_task_vectors(checkpoints, tmp_path) -> None:
    _, state = merged(checkpoints, tmp_path, method="task_arithmetic", scale=0.5)
    base = read_checkpoint(checkpoints["base"])["model"]["state"]
    experts = [read_checkpoint(checkpoints[t])["model"]["state"] for t in TASKS]
    merged_weights = state["model"]["state"]
    key = next(k for k in base if k.startswith("transformer.blocks.0.attn.q"))
    want = base[key] + 0.5 * sum(e[key] - base[key] for e in experts)
    assert torch.allclose(merged_weights[key], want, atol=1e-6)
    # The policy head's outputs are padded to the widest action set: CartPole's expert has 2,
    # the base (and Acrobot's expert) 3. Its task vector covers the common corner only.
    head = "policy_head.mlp.w2"
    cartpole, acrobot = experts
    assert cartpole[head].shape[-1] == 2 and base[head].shape[-1] == 3
    want = base[head] + 0.5 * (acrobot[head] - base[head])
    want[..., :2] += 0.5 * (cartpole[head] - base[head][..., :2])
    assert torch.allclose(merged_weights[head], want, atol=1e-6)


def test_merged_checkpoint_evaluates_and_resumes(checkpoints, tmp_path) -> None:
    path, state = merged(checkpoints, tmp_path, method="ties")
    out = tmp_path / "eval"
    assert cli(["eval", str(path), "--episodes", "1", "--out", str(out)]) == 0
    assert (out / "results.json").exists()
    resumed = config(tmp_path / "merged", TASKS, state["counters"]["env_steps"] + 30)
    result = train_local(resumed, resume=str(tmp_path / "merged"))
    assert result.env_steps >= state["counters"]["env_steps"] + 30


def test_mismatched_experts_are_refused(checkpoints, tmp_path) -> None:
    expert = read_checkpoint(checkpoints["classic/CartPole"])
    other = dict(expert, model={**expert["model"], "config": {**expert["model"]["config"]}})
    other["model"]["config"]["num_heads"] = 1
    odd = tmp_path / "odd.pt"
    torch.save(other, odd)
    with pytest.raises(ValueError, match=r"not fine-tuned from this base \(model config num_heads"):
        merge(checkpoints["base"], [odd], tmp_path / "a", MergeConfig())
    shaped = dict(expert, model={**expert["model"], "state": dict(expert["model"]["state"])})
    key = next(k for k in shaped["model"]["state"] if k.startswith("transformer.blocks.0.attn.q"))
    shaped["model"]["state"][key] = torch.zeros(3)  # another rank: not this base's tensor
    torch.save(shaped, odd)
    with pytest.raises(ValueError, match=f"parameter {key} has shape"):
        merge(checkpoints["base"], [odd], tmp_path / "b", MergeConfig())
    twice = [checkpoints["classic/CartPole"]] * 2
    with pytest.raises(ValueError, match="task classic/CartPole is in experts"):
        merge(checkpoints["base"], twice, tmp_path / "c", MergeConfig())


def test_cli_errors_are_one_line(checkpoints, tmp_path, capsys) -> None:
    base, expert = str(checkpoints["base"]), str(checkpoints["classic/CartPole"])
    assert cli(["merge", base, expert, "--out", str(tmp_path / "m"), "--method", "soup"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert cli(["merge", base, expert, "--out", str(tmp_path / "m"), "--set", "ties_keep=2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mtrl: error: ") and "keep" in err and err.strip().count("\n") == 0

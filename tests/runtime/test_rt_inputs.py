"""Bad inputs fail with one clear line: config keys and values, corrupt, partial and
mismatched checkpoints, a run folder that already holds a run. No Ray needed."""

import dataclasses
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.batch import TaskSet
from mtrl.envs.registry import resolve_tasks
from mtrl.runtime import CheckpointError, Driver, RunConfig, apply_overrides, from_json, to_json
from mtrl.runtime import checkpoint as ckpt
from mtrl.runtime.finetune import finetune_state
from mtrl.runtime.launch import main
from mtrl.runtime.replay_shard import replay_snapshot, restore_snapshot
from mtrl.runtime.transport import ReplaySlice
from mtrl.world_models import WorldModel, preset

ROOT = Path(__file__).resolve().parents[2]


def tiny_class() -> type[RunConfig]:
    spec = importlib.util.spec_from_file_location("launch_tiny_inputs", ROOT / "launch/tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyConfig


def test_overrides_parse_by_type_and_reject_unknown_keys() -> None:
    config = apply_overrides(
        RunConfig(),
        ["env_steps=5000", "learner.lr=3e-4", "tasks=classic/CartPole,dmc/cartpole-balance"],
    )
    assert config.env_steps == 5000 and config.learner.lr == 3e-4
    assert config.tasks == ("classic/CartPole", "dmc/cartpole-balance")
    with pytest.raises(ValueError, match=r"unknown config key 'learner.lrr'; valid here: .*lr"):
        apply_overrides(config, ["learner.lrr=1"])
    with pytest.raises(ValueError, match=r"bad value env_steps='1.5': input should be a valid int"):
        apply_overrides(config, ["env_steps=1.5"])
    with pytest.raises(ValueError, match="is a group"):
        apply_overrides(config, ["learner=1"])
    overrides = apply_overrides(config, ['model_overrides=[["support_size", 20]]'])
    assert overrides.model_overrides == (("support_size", 20),)
    assert apply_overrides(config, ["replay.priority_exponent=0.6"]).replay.priority_exponent == 0.6


def test_config_json_round_trip() -> None:
    cls = tiny_class()
    config = apply_overrides(cls(), ["acting.search.num_simulations=3"])
    assert from_json(cls, to_json(config)) == config
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['bogus'\]"):
        from_json(cls, to_json(config)[:-1] + ', "bogus": 1}')


def test_launch_cli_reports_a_bad_key_in_one_line(capsys) -> None:
    assert main(tiny_class(), ["--set", "nope=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown config key 'nope'") and "\n" not in err


def fake_checkpoint(tasks: list[str], **changes) -> dict:
    model = WorldModel(TaskSet(resolve_tasks(tasks)), preset("tiny"))
    state = {
        "version": 1,
        "tasks": tasks,
        "config": to_json(RunConfig(tasks=tuple(tasks))),
        "model": model.checkpoint(),
        "learner": {},
        "dps": {},
        "counters": {"env_steps": 10, "updates": 1},
    }
    state.update(changes)
    return state


def test_resume_skips_unreadable_newest_checkpoints_and_keeps_them(tmp_path, caplog) -> None:
    tasks = ["classic/CartPole", "classic/Acrobot"]
    good = ckpt.write_checkpoint(tmp_path, fake_checkpoint(tasks), 10, keep=5)
    torn = ckpt.write_checkpoint(tmp_path, fake_checkpoint(tasks), 20, keep=5)
    torn.write_bytes(torn.read_bytes()[:300])  # a torn write
    partial = ckpt.write_checkpoint(tmp_path, fake_checkpoint(tasks), 30, keep=5)
    torch.save({k: v for k, v in fake_checkpoint(tasks).items() if k != "learner"}, partial)
    explicit = torn.read_bytes()
    with caplog.at_level("WARNING", logger="mtrl.runtime.checkpoint"):
        assert ckpt.resolve_resume(tmp_path) == good
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 2 and all("\n" not in line for line in skipped)
    assert "ckpt-000000000030.pt" in skipped[0] and "incomplete" in skipped[0]
    assert "ckpt-000000000020.pt" in skipped[1] and "corrupt" in skipped[1]
    aside = tmp_path / "checkpoints" / "unreadable"
    assert sorted(p.name for p in aside.iterdir()) == [torn.name, partial.name]  # kept
    assert (aside / torn.name).read_bytes() == explicit
    assert ckpt.list_checkpoints(tmp_path) == [good]  # out of the way of pruning
    # A file passed explicitly is used as it is: an unreadable one stays a clear error.
    with pytest.raises(CheckpointError, match=r"corrupt .*older checkpoints .*ckpt-000000000010"):
        ckpt.read_checkpoint(ckpt.resolve_resume(_put_back(aside / torn.name, torn)))
    torn.unlink()
    (aside / partial.name).unlink()
    (aside / torn.name).unlink()
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        good.write_bytes(b"junk")
        ckpt.resolve_resume(tmp_path)


def _put_back(source, target):
    target.write_bytes(source.read_bytes())
    return target


def test_corrupt_partial_and_mismatched_checkpoints(tmp_path) -> None:
    tasks = ["classic/CartPole", "classic/Acrobot"]
    good = ckpt.write_checkpoint(tmp_path, fake_checkpoint(tasks), 10, keep=3)
    partial = tmp_path / "partial.pt"
    torch.save({k: v for k, v in fake_checkpoint(tasks).items() if k != "learner"}, partial)
    with pytest.raises(CheckpointError, match=r"incomplete: missing \['learner'\]"):
        ckpt.read_checkpoint(partial)
    torch.save(fake_checkpoint(tasks, version=99), partial)
    with pytest.raises(CheckpointError, match="version 99, this mtrl reads version 1"):
        ckpt.read_checkpoint(partial)
    state = ckpt.read_checkpoint(good)
    model = dataclasses.asdict(preset("tiny"))
    with pytest.raises(CheckpointError, match=r"tasks differ: checkpoint has \['classic/CartPole"):
        ckpt.check_compatible(good, state, ["classic/CartPole"], model)
    bigger = dataclasses.asdict(preset("tiny", embed_dim=64))
    with pytest.raises(CheckpointError, match=r"model shape differs .*embed_dim: 32 vs 64"):
        ckpt.check_compatible(good, state, tasks, bigger)
    # A field added after the checkpoint was written takes its default on the checkpoint's side.
    older = {k: v for k, v in state["model"]["config"].items() if k != "support_step"}
    ckpt.check_compatible(
        good, {**state, "model": {**state["model"], "config": older}}, tasks, model
    )
    finer = dataclasses.asdict(preset("tiny", support_step=0.2))
    with pytest.raises(CheckpointError, match=r"support_step: 1.0 vs 0.2"):
        ckpt.check_compatible(good, state, tasks, finer)


def test_run_dir_with_checkpoints_needs_resume(tmp_path) -> None:
    ckpt.write_checkpoint(tmp_path, fake_checkpoint(["classic/CartPole"]), 10, keep=1)
    config = RunConfig(tasks=("classic/CartPole",), run_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"already holds checkpoints .*--resume"):
        Driver(config)
    other = dataclasses.replace(config, tasks=("classic/Acrobot",))
    with pytest.raises(CheckpointError, match="tasks differ"):
        Driver(other, resume=str(tmp_path))


def test_finetune_maps_task_rows_by_name() -> None:
    old = fake_checkpoint(["classic/CartPole", "classic/Acrobot"])
    model = WorldModel(
        TaskSet(resolve_tasks(["classic/Acrobot", "classic/MountainCar"])), preset("tiny")
    )
    fresh = model.state_dict()["task_embed"].clone()
    weights, report = finetune_state(old, model)
    assert torch.equal(weights["task_embed"][0], old["model"]["state"]["task_embed"][1])
    assert torch.equal(weights["task_embed"][1], fresh[1])  # the new task starts fresh
    assert "task_embed" in report["by_task"] and report["copied"]
    model.load_state_dict(weights)


def filled_replay(spec_id: str, steps: int) -> TaskReplay:
    spec = resolve_tasks([spec_id])[0]
    replay = TaskReplay(spec, ReplayConfig(capacity=64, unroll_steps=3, n_step=2))
    rng = np.random.default_rng(0)
    for t in range(steps):
        obs = rng.normal(size=spec.obs_shape).astype(np.float32)
        replay.add(
            0,
            obs,
            np.ones(spec.action.n, bool),
            t % spec.action.n,
            1.0,
            np.full(spec.action.n, 0.5),
            0.1,
        )
        if t % 17 == 16:
            replay.end_episode(0, obs, terminated=True)
    return replay


def test_replay_snapshot_round_trip_and_slices() -> None:
    replay = filled_replay("classic/CartPole", 100)  # wrapped around the 64-row ring
    snapshot = replay_snapshot(replay, max_rows=40)
    again = TaskReplay(replay.spec, replay.config)
    restore_snapshot(again, snapshot)
    assert len(again) == 40
    shift = replay.total_added - 40
    rows = np.arange(40)
    assert np.array_equal(again.observations(rows), replay.observations(rows + shift))
    assert np.array_equal(again.next_row[:40], replay.next_row[(rows + shift) % 64] - shift)
    batch = again.sample(5, np.random.default_rng(1))
    piece = ReplaySlice(again, batch)
    assert piece.sample(5, np.random.default_rng(2)) is batch and len(piece) == 40
    assert np.array_equal(
        piece.observations(batch.bootstrap_rows), again.observations(batch.bootstrap_rows)
    )
    assert np.array_equal(piece.legal[batch.rows], again.legal[batch.rows])


def test_worker_tasks_expand_suite_names() -> None:
    from mtrl.envs import get_suite
    from mtrl.runtime.topology import worker_tasks

    atari8 = tuple(spec.id for spec in get_suite("atari8"))
    assert worker_tasks(RunConfig(tasks=("atari8",)), 0) == atari8
    both = RunConfig(
        tasks=("atari8", "classic/CartPole"),
        num_workers=2,
        worker_tasks=(("atari8",), ("classic/CartPole",)),
    )
    assert worker_tasks(both, 0) == atari8
    assert worker_tasks(both, 1) == ("classic/CartPole",)


def test_a_run_larger_than_its_local_ray_is_refused_at_once(monkeypatch) -> None:
    """A local Ray gains no nodes: the launcher refuses what would wait for ever for room."""
    from mtrl.runtime import launch
    from mtrl.runtime.topology import demand

    config = tiny_class()()  # TWO_CORES: worker 0.5 + search 0.5 + learner 1
    assert demand(config) == {"CPU": 2.0, "GPU": 0.0}
    monkeypatch.setattr(launch.ray, "cluster_resources", lambda: {"CPU": 1.0})
    with pytest.raises(ValueError, match=r"ask for 2 CPUs .*this local Ray has 1: raise --num"):
        launch.check_fits(config)
    monkeypatch.setattr(launch.ray, "cluster_resources", lambda: {"CPU": 2.0})
    launch.check_fits(config)  # it fits
    # Only GPUs short: half a GPU for the search server and one for the learner.
    res = dataclasses.replace(
        config.resources, worker_cpus=0, search_cpus=0, learner_cpus=0, search_gpus=0.5,
        learner_gpus=1.0,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"ask for 1.5 GPUs .*has 0"):
        launch.check_fits(dataclasses.replace(config, resources=res))

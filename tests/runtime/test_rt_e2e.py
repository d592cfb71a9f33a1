"""launch/tiny.py's config on a local Ray: runs, logs per-task TensorBoard tags and a CSV,
checkpoints, resumes from the checkpoint with the step counter continuing."""

import csv
import importlib.util
from dataclasses import replace
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.runtime import read_checkpoint, run
from mtrl.runtime.checkpoint import list_checkpoints
from mtrl.search import SearchConfig

LAUNCH = Path(__file__).resolve().parents[2] / "launch"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"launch_{name}", LAUNCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(run_dir: Path, env_steps: int):
    config = load_script("tiny").TinyConfig()
    return replace(
        config,
        run_dir=str(run_dir),
        env_steps=env_steps,
        envs_per_task=1,
        acting=ActingConfig(SearchConfig(algorithm="gumbel_muzero", num_simulations=2), 2),
        learner=LearnerConfig(batch_size=8, lr=1e-3),
        warmup_env_steps=30,
        replay_ratio=0.2,
        steps_per_call=4,
        updates_per_call=4,
        eval_episodes=0,
        log_every_s=1.0,
        conflict_image_every=4,
    )


def tags(run_dir: Path) -> tuple[set[str], set[str], dict[str, list[int]]]:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    steps = {t: [e.step for e in events.Scalars(t)] for t in scalars}
    return scalars, set(events.Tags()["images"]), steps


def test_tiny_runs_logs_checkpoints_and_resumes(ray_local, tmp_path) -> None:
    run_dir = tmp_path / "tiny"
    config = tiny_config(run_dir, env_steps=150)
    first = run(config)
    assert first.env_steps >= 150 and first.updates > 0
    saved = list_checkpoints(run_dir)
    assert saved and saved[-1] == first.checkpoints[-1]
    state = read_checkpoint(saved[-1])
    assert state["counters"]["env_steps"] == first.env_steps
    assert state["tasks"] == list(config.tasks)
    assert {"model", "learner", "dps", "replay", "numpy_rng", "torch_rng"} <= set(state)
    assert all(state["replay"][t]["rows"] > 0 for t in config.tasks)

    scalars, images, _ = tags(run_dir)
    for task in config.tasks:
        assert f"loss/{task}/total" in scalars
        assert any(t.startswith(f"{task}/expert_load/") for t in scalars)
    assert any(t.endswith("/return") and t.count("/") == 2 for t in scalars)  # an episode ended
    assert {"loss/value", "throughput/env_steps_per_s", "gradients/mean_cosine"} <= scalars
    assert "gradients/conflict_matrix" in images
    assert list(run_dir.glob("events.out.tfevents.*.mtrl-layout"))  # the custom-scalars layout
    with (run_dir / "scalars.csv").open() as f:
        assert {row["tag"] for row in csv.DictReader(f)} >= {"loss/value", "loss/policy"}

    # The resumed leg also evaluates (cut short: only the short episodes finish in time).
    second = run(
        replace(config, env_steps=250, eval_episodes=1, eval_max_steps=60), resume=str(run_dir)
    )
    assert second.env_steps >= 250 and second.updates > first.updates
    assert (
        read_checkpoint(list_checkpoints(run_dir)[-1])["counters"]["env_steps"] == second.env_steps
    )
    scalars, _, steps = tags(run_dir)
    assert {"dps/stage", "dps/solved_tasks"} <= scalars
    assert any(t.endswith("/eval_return") for t in scalars)
    assert second.evaluations and second.evaluations[-1]["env_steps"] == second.env_steps
    resumed = steps["loss/value"]
    assert resumed == sorted(resumed)  # the curve continues instead of restarting at 0
    assert max(resumed) > first.env_steps

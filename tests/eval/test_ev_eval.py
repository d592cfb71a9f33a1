"""`mtrl eval` on a checkpoint of a tiny training run: same returns as training's evaluation,
report files with the documented columns, clear one-line errors on bad input."""

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.cli import main
from mtrl.eval.checkpoint import load_checkpoint
from mtrl.eval.results import CSV_COLUMNS
from mtrl.eval.run import EvalOptions, evaluate_checkpoint
from mtrl.eval.runner import Unit, run_units
from mtrl.runtime import RunConfig, train_local
from mtrl.runtime.checkpoint import latest_checkpoint
from mtrl.search import SearchConfig

# CartPole (discrete, 4-dim state) and pendulum-swingup (continuous, 3-dim): a subset of one
# of them exercises the remapping of task ids, vector widths and legal masks.
TINY = RunConfig(
    tasks=("classic/CartPole", "dmc/pendulum-swingup"),
    envs_per_task=1,
    env_steps=40,
    acting=ActingConfig(SearchConfig(num_simulations=3), sampled_actions=3),
    learner=LearnerConfig(batch_size=6, lr=1e-3),
    replay=ReplayConfig(capacity=1_000, task_discounts=(("dmc", 0.9),)),
    warmup_env_steps=20,
    steps_per_call=4,
    updates_per_call=4,
    eval_every=1000,
    eval_at_start=True,  # at the start and at the end
    eval_episodes=2,
    log_every_s=1e9,
)


@pytest.fixture(scope="session")
def tiny_run(mtrl_cache, tmp_path_factory):
    """Trained once per test session, shared by pytest-xdist workers through a lock file."""
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every xdist worker
    run_dir = shared / "ev-tiny-run"
    with FileLock(str(shared / "ev-tiny-run.lock")):
        if not (run_dir / "evaluations.json").exists():
            result = train_local(replace(TINY, run_dir=str(run_dir)))
            (run_dir / "evaluations.json").write_text(json.dumps(result.evaluations))
    path = latest_checkpoint(run_dir)
    return path, json.loads((run_dir / "evaluations.json").read_text())


def test_eval_replays_the_training_evaluation(tiny_run, tmp_path) -> None:
    path, evaluations = tiny_run
    last = len(evaluations) - 1  # the final evaluation: the checkpointed weights
    seed = 10_000 + 97 * last
    options = EvalOptions(episodes=TINY.eval_episodes, seeds=(seed,), out=str(tmp_path))
    results, files = evaluate_checkpoint(path, options, say=lambda _: None)
    logged = evaluations[last]["episodes"]
    assert {row["task"]: row["episode_returns"] for row in results["tasks"]} == logged
    # report files with the documented columns
    with files["results.csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and [r["task"] for r in rows] == list(TINY.tasks)
    cartpole = rows[0]
    assert cartpole["baseline"] == "solved threshold" and float(cartpole["baseline_score"]) == 475
    assert float(cartpole["ratio_to_baseline"]) == pytest.approx(float(cartpole["mean"]) / 475)
    saved = json.loads(files["results.json"].read_text())
    assert saved["aggregates"]["normalized"]["tasks"] == ["dmc/pendulum-swingup"]
    assert saved["not_in_aggregates"] == ["classic/CartPole"]
    report = files["report.md"].read_text()
    assert f"seeds [{seed}]" in report and "final evaluation of this checkpoint" in report
    assert "temperature 0" in report
    for png in ("tasks.png", "aggregates.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in report


def test_evaluation_searches_with_each_tasks_training_discount(tiny_run) -> None:
    ckpt = load_checkpoint(tiny_run[0])
    assert ckpt.task_discounts == (("dmc", 0.9),)
    assert ckpt.discounts.tolist() == pytest.approx([0.997, 0.9])


def test_subset_in_two_processes_equals_one_process(tiny_run) -> None:
    path, _ = tiny_run
    ckpt = load_checkpoint(path)
    units = [Unit(("dmc/pendulum-swingup",), 1, seed, 0.0) for seed in (3, 4)]
    events: list[tuple] = []
    alone = run_units(ckpt, units, workers=1)
    parallel = run_units(ckpt, units, workers=2, on_episode=lambda *e: events.append(e))
    assert parallel == alone and set(alone[0]) == {"dmc/pendulum-swingup"}
    assert sorted(e[1] for e in events) == [3, 4]  # progress crossed the process boundary


def test_video_writes_clip_or_transcript(tiny_run, tmp_path) -> None:
    path, _ = tiny_run
    options = EvalOptions(episodes=1, seeds=(5,), out=str(tmp_path), video=True)
    evaluate_checkpoint(path, options, say=lambda _: None)
    transcript = (tmp_path / "videos" / "classic__CartPole.txt").read_text()
    assert transcript.startswith("classic/CartPole: no pixels") and "-> action" in transcript
    clip = tmp_path / "videos" / "dmc__pendulum-swingup.mp4"
    assert clip.stat().st_size > 1000
    assert "videos/dmc__pendulum-swingup.mp4" in (tmp_path / "report.md").read_text()


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mtrl: error: ")
    return err


def test_bad_input_is_one_line_and_writes_nothing(tiny_run, tmp_path, capsys) -> None:
    path, _ = tiny_run
    out = tmp_path / "out"
    args = ["--out", str(out), "--episodes", "1"]
    assert "does not exist" in _error(capsys, ["eval", str(tmp_path / "none.pt"), *args])
    broken = tmp_path / "broken.pt"
    broken.write_bytes(path.read_bytes()[:300])
    assert "corrupt or not an mtrl checkpoint" in _error(capsys, ["eval", str(broken), *args])
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    assert "needs keys" in _error(capsys, ["eval", str(other), *args])
    err = _error(capsys, ["eval", str(path), "--tasks", "atari/Pong", *args])
    assert "was not trained on ['atari/Pong']" in err
    table = tmp_path / "mine.csv"
    table.write_text("task,score,seed\nclassic/CartPol,1,0\n")
    err = _error(capsys, ["eval", str(path), "--baselines", str(table), *args])
    assert "unknown tasks ['classic/CartPol']" in err
    assert not Path(out).exists()

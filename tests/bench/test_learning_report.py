"""bench/learning_report.py: the learning benchmark's numbers, on hand-made run results."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_scripts import BENCH, load_bench


@pytest.fixture(scope="module")
def lr():
    return load_bench("learning_report")


TASKS = ["classic/CartPole", "dmc/cartpole-balance", "minatar/Breakout"]


def write_run(folder: Path, tasks: list[str], seed: int, finals: dict, steps: int) -> None:
    """A result.json with two evaluations: all zeros at the start, ``finals`` at the end."""
    evaluations = [
        {"env_steps": 0, "returns": {t: 0.0 for t in tasks}, "episodes": {t: [0.0] for t in tasks}},
        {
            "env_steps": steps,
            "returns": {t: float(np.mean(finals[t])) for t in tasks},
            "episodes": {t: finals[t] for t in tasks},
        },
    ]
    record = {
        "config": {"tasks": tasks, "seed": seed, "eval_every": steps},
        "env_steps": steps,
        "updates": steps // 4,
        "seconds": 60.0,
        "evaluations": evaluations,
        "train_episodes": [],
    }
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps(record))


@pytest.fixture
def runs(lr, tmp_path):
    multi = {
        0: {
            "classic/CartPole": [500.0, 300.0],
            "dmc/cartpole-balance": [700.0, 700.0],
            "minatar/Breakout": [4.0, 6.0],
        },
        1: {
            "classic/CartPole": [200.0, 200.0],
            "dmc/cartpole-balance": [650.0, 550.0],
            "minatar/Breakout": [10.0, 10.0],
        },
    }
    for seed, finals in multi.items():
        write_run(tmp_path / "multi" / f"seed{seed}", TASKS, seed, finals, 3000)
    single = {
        "classic/CartPole": (400.0, 400.0),
        "dmc/cartpole-balance": (800.0, 600.0),
        "minatar/Breakout": (10.0, 20.0),
    }
    for task, values in single.items():
        for seed, value in enumerate(values):
            folder = tmp_path / "single-steps" / lr.task_folder(task) / f"seed{seed}"
            write_run(folder, [task], seed, {task: [value]}, 1000)
    return tmp_path


def test_bars_hold_on_the_mean_or_on_the_solved_share(lr) -> None:
    assert lr.Bar(400.0).held([500.0, 300.0]) and not lr.Bar(400.0).held([500.0, 200.0])
    solved = lr.Bar(8.0, kind="solved")
    assert solved.held([8.0] * 4 + [7.0]) and not solved.held([8.0] * 3 + [7.0] * 2)


def test_summary_per_seed_ratios_and_aggregates(lr, runs) -> None:
    bars = {"classic/CartPole": lr.Bar(400.0), "dmc/cartpole-balance": lr.Bar(600.0)}
    report = lr.summarise(lr.load_runs(runs), bars)
    first, second = report["multi_runs"]
    assert first["final"]["classic/CartPole"] == 400.0
    assert first["held"] == {"classic/CartPole": True, "dmc/cartpole-balance": True}
    assert second["held"] == {"classic/CartPole": False, "dmc/cartpole-balance": True}
    assert report["seeds_holding_every_bar"] == 1
    # Multi: CartPole seeds 400, 200 (mean 300); single 400, 400: ratio 0.75.
    ratio, low, high = report["per_task"]["classic/CartPole"]["ratio_single-steps"]
    assert ratio == pytest.approx(0.75) and low <= ratio <= high
    assert (low, high) == pytest.approx((0.5, 1.0))  # the bootstrap can only draw those means
    # Scales: CartPole by its solved threshold (475), DMC by its maximum (1000), Breakout
    # (random 0.375) against the single-task mean 15.
    scales = {t: e["scale"] for t, e in report["per_task"].items()}
    assert scales["classic/CartPole"].startswith("return / 475")
    assert scales["dmc/cartpole-balance"] == "mtrl.eval normalised score"
    assert scales["minatar/Breakout"].startswith("(return - random)")
    assert lr.scale("minatar/Breakout", 0.3) == ("none", None)  # single below random: no scale
    multi = np.array(
        [
            [400 / 475, 0.7, (5 - 0.375) / (15 - 0.375)],
            [200 / 475, 0.6, (10 - 0.375) / (15 - 0.375)],
        ]
    )
    mean, low, high = report["aggregates"]["multi"]["mean"]
    assert mean == pytest.approx(multi.mean()) and low <= mean <= high
    iqm = report["aggregates"]["multi"]["iqm"][0]
    assert iqm == pytest.approx(np.sort(multi.ravel())[1:5].mean())
    assert report["aggregates"]["single-steps"]["seeds"] == 2
    table = lr.markdown(report)
    assert "| 0 | 3,000 | 750 | 1.0 | - | 400.0 ✓ | 700.0 ✓ | 5.0 | **yes** |" in table
    assert (lr._speed((171.6, 180.2)), lr._speed((172.2, 171.9))) == ("172-180", "172")
    # Per task: the measured random return, the bar, multi and single means, the ratio.
    assert "| minatar/Breakout | 0.375 | - | 7.5 | 15.0 | 0.50 [" in table


def test_minatar_games_are_held_to_five_times_random(runs) -> None:
    bench = load_bench("learning", "learning_bench")
    every = bench.bars(["text/tw-simple-dense", "minatar/Breakout", "minatar/Seaquest"])
    assert every["text/tw-simple-dense"].kind == "solved"
    assert every["minatar/Breakout"].value == pytest.approx(5 * 0.375)
    assert every["minatar/Seaquest"].value == pytest.approx(5 * 0.111)
    report = bench.lr.summarise(bench.lr.load_runs(runs), every)
    assert [r["held"] for r in report["multi_runs"]] == [
        {"minatar/Breakout": True},  # 5 >= 1.875
        {"minatar/Breakout": True},
    ]
    assert report["per_task"]["minatar/Breakout"]["bar"] == pytest.approx(1.875)
    # launch/dmc100k.py's bar: DreamerV3 at 100k (../shared/baselines/dmc18_tdmpc2.csv), where
    # the column has the task; the proxy's own bars elsewhere.
    published = bench.bars(["dmc/cartpole-balance", "classic/CartPole"], "dreamerv3@100k")
    assert published["dmc/cartpole-balance"].value == pytest.approx(912.6)
    assert published["classic/CartPole"].value == 400.0


def test_curves_band_over_seeds_on_per_task_steps(lr, runs, tmp_path) -> None:
    loaded = lr.load_runs(runs)
    steps, mean, low, high = lr.band(loaded["multi"]["all"], "classic/CartPole", 3)
    assert steps.tolist() == [0.0, 1000.0]
    assert mean.tolist() == [0.0, 300.0] and low.tolist() == [0.0, 200.0]
    assert high.tolist() == [0.0, 400.0]
    lr.plot(loaded, {}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_training_curves_start_where_every_seed_has_episodes(lr) -> None:
    """A resumed run's first kept episode may end late: the band is not extended back to 0."""
    late = {"train_episodes": [(600.0, "t", 1.0), (1200.0, "t", 3.0)]}  # minutes 10 and 20
    early = {"train_episodes": [(300.0, "t", 2.0), (1500.0, "t", 2.0), (1800.0, "t", 9.0)]}
    minutes, mean, low, high = lr.training_band([late, early], "t", window=1, points=3)
    assert minutes.tolist() == [10.0, 15.0, 20.0]
    assert low.tolist() == [1.0, 2.0, 2.0] and high.tolist() == [2.0, 2.0, 3.0]
    assert mean.tolist() == [1.5, 2.0, 2.5]


def test_a_folder_without_multi_task_runs_is_refused(lr, tmp_path) -> None:
    with pytest.raises(SystemExit, match="no multi-task run"):
        lr.load_runs(tmp_path)


def test_the_runner_makes_every_run_through_the_launcher_once(tmp_path) -> None:
    """bench/learning.py run: seeds in parallel, each task alone at the multi-task run's
    per-task env steps and at its wall time, evaluated at the same per-task steps; a second
    call keeps what exists."""
    import subprocess

    command = [
        sys.executable, str(BENCH / "learning.py"), "run",
        "--launcher", str(Path(__file__).with_name("fake_launcher.py")),
        "--seeds", "0", "1", "--single", "steps", "time", "--parallel", "2",
        "--out", str(tmp_path),
    ]  # fmt: skip
    first = subprocess.run(command, capture_output=True, text=True, check=True)
    single = json.loads((tmp_path / "single-steps/classic_CartPole/seed1/result.json").read_text())[
        "config"
    ]
    assert (single["tasks"], single["seed"], single["env_steps"]) == (["classic/CartPole"], 1, 500)
    assert (single["max_seconds"], single["eval_every"]) == (0.0, 250)
    assert single["replay"]["task_discounts"] == [["dmc", 0.99], ["classic", 0.98]]  # as given
    timed = json.loads((tmp_path / "single-time/classic_CartPole/seed0/result.json").read_text())
    assert timed["config"]["max_seconds"] == 10.0  # the multi-task run's 1,000 steps / 100
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["per_task"]["dmc/cartpole-balance"]["multi"] == [50.0, 100.0]
    assert report["per_task"]["dmc/cartpole-balance"]["ratio_single-steps"] == [0.5, 0.25, 1.0]
    assert (tmp_path / "curves.png").exists() and "| 1 | 1,000 |" in first.stdout
    # The box's speed at each run's start and end, in its folder and in the per-seed table.
    box = json.loads((tmp_path / "multi/seed0/machine.json").read_text())
    assert [entry["when"] for entry in box] == ["start", "end"]
    assert all(entry["matmul_gflops"] > 0 and entry["cpus"] >= 1 for entry in box)
    gflops = report["multi_runs"][0]["box_gflops"]
    assert gflops == [min(e["matmul_gflops"] for e in box), max(e["matmul_gflops"] for e in box)]
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert again.stdout.count("[bench] kept") == 2 + 2 * 2 * 2
    bad = subprocess.run(
        [*command[:3], "--launcher", "nope", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode and "no launcher 'nope'" in bad.stderr and "proxy3" in bad.stderr


def test_the_runner_goes_seed_by_seed_and_continues_a_stopped_run(tmp_path) -> None:
    """One at a time, a seed's multi-task run comes before its tasks alone and the next seed;
    a run folder with a checkpoint and no result is resumed, and so is one whose result says a
    signal stopped it; the others start afresh."""
    import subprocess

    for folder in ("multi/seed1", "single-steps/classic_CartPole/seed0"):
        (tmp_path / folder / "checkpoints").mkdir(parents=True)
        (tmp_path / folder / "checkpoints/ckpt-000000000300.pt").write_bytes(b"")
    signalled = {"config": {}, "env_steps": 300, "stopped_by": "SIGTERM", "evaluations": []}
    signalled_result = tmp_path / "single-steps/classic_CartPole/seed0/result.json"
    signalled_result.write_text(json.dumps(signalled))
    command = [
        sys.executable, str(BENCH / "learning.py"), "run",
        "--launcher", str(Path(__file__).with_name("fake_launcher.py")),
        "--seeds", "0", "1", "--single", "steps", "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    order = [
        line.split("run_dir=")[1].removeprefix(str(tmp_path) + "/")
        for line in done.stdout.splitlines()
        if line.startswith("[bench] ") and "run_dir=" in line
    ]
    assert order == [
        "multi/seed0",
        "single-steps/classic_CartPole/seed0",
        "single-steps/dmc_cartpole-balance/seed0",
        "multi/seed1",
        "single-steps/classic_CartPole/seed1",
        "single-steps/dmc_cartpole-balance/seed1",
    ]
    assert (tmp_path / "multi/seed1/resumed").read_text() == str(tmp_path / "multi/seed1")
    signalled_dir = signalled_result.parent
    assert (signalled_dir / "resumed").read_text() == str(signalled_dir)
    assert json.loads(signalled_result.read_text())["stopped_by"] == ""  # now run to its end
    assert not (tmp_path / "multi/seed0/resumed").exists()


def test_compare_gives_the_difference_of_two_configurations(lr, runs, tmp_path) -> None:
    loaded = lr.load_runs(runs)
    table = lr.compare(loaded, loaded)
    assert "| classic/CartPole | 300.0 | 300.0 | +0.0 [-" in table  # itself: a CI around 0
    diff = lr.two_sample_ci(np.array([3.0, 5.0]), np.array([1.0, 1.0]), "difference")
    assert diff == (3.0, 2.0, 4.0)

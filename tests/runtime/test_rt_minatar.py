"""The ``minatar`` suite end to end on a tiny budget, through the launcher's config: train two
games of different frame shapes, checkpoint, evaluate in training and with ``mtrl eval``."""

from dataclasses import replace

from launch_scripts import config_class

from mtrl.cli import main as mtrl_main
from mtrl.runtime import RunConfig, from_json, read_checkpoint, to_json, train_local
from mtrl.runtime.launch import build_config, parse_args

GAMES = ("minatar/Breakout", "minatar/Seaquest")  # 4x10x10 and 10x10x10: one padded batch


def launcher_config() -> type[RunConfig]:
    """``launch/minatar5.py``'s config class, loaded from its file as the launcher tests do."""
    return config_class("minatar5")


def test_two_games_train_checkpoint_and_evaluate(mtrl_cache, tmp_path) -> None:
    config = build_config(launcher_config(), parse_args(["--smoke"]))
    config = replace(
        config,
        tasks=GAMES,
        env_steps=160,
        warmup_env_steps=32,
        eval_at_start=True,
        eval_episodes=1,
        eval_max_steps=200,
        run_dir=str(tmp_path / "run"),
    )
    result = train_local(from_json(RunConfig, to_json(config)))
    assert result.env_steps >= 160 and result.updates >= 1
    assert [e["env_steps"] for e in result.evaluations] == [0, result.env_steps]
    assert set(result.evaluations[-1]["returns"]) <= set(GAMES)
    state = read_checkpoint(result.checkpoints[-1])
    assert state["tasks"] == list(GAMES)
    weights = state["model"]["state"]
    shapes = {name: tuple(v.shape) for name, v in weights.items() if "net.0.weight" in name}
    assert shapes["encoder.image.net.0.weight"][1] == 4  # Breakout's own channels
    assert shapes["encoder.more_images.0.net.0.weight"][1] == 10  # Seaquest's

    out = tmp_path / "eval"
    argv = [str(result.checkpoints[-1]), "--episodes", "1", "--seeds", "1", "--out", str(out)]
    assert mtrl_main(["eval", *argv]) == 0
    report = (out / "results.json").read_text()
    assert all(game in report for game in GAMES) and "random" in report

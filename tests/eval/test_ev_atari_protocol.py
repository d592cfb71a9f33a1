"""`mtrl eval` on Atari plays the evaluation protocol (random no-op starts, 30 by default),
`--noop-max` changes it, and results.json records what the episodes ran with."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from mtrl.agents.acting import ActingConfig
from mtrl.cli import main
from mtrl.envs.atari import AtariEnv
from mtrl.envs.batch import TaskSet
from mtrl.envs.settings import EnvSettings
from mtrl.eval.checkpoint import run_tasks
from mtrl.search import SearchConfig
from mtrl.world_models import WorldModel, preset

# Episodes capped at 160 emulator frames (no-ops included): at most 40 agent steps each.
SHORT = EnvSettings().with_overrides({"atari.max_frames": 160})


@pytest.fixture(scope="module")
def pong_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained Pong checkpoint in the layout training writes (training used 0 no-ops)."""
    tasks: TaskSet = run_tasks(["atari/Pong"], SHORT)
    torch.manual_seed(0)
    config = {
        "acting": dataclasses.asdict(ActingConfig(SearchConfig(num_simulations=2))),
        "env": dataclasses.asdict(SHORT),
    }
    state = {
        "version": 1,
        "tasks": ["atari/Pong"],
        "config": json.dumps(config),
        "model": WorldModel(tasks, preset("tiny")).checkpoint(),
    }
    path = tmp_path_factory.mktemp("pong") / "checkpoint.pt"
    torch.save(state, path)
    return path


@pytest.fixture
def frames_at_reset(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Emulator frames already played when each Atari episode starts: its no-op count."""
    frames: list[int] = []
    reset = AtariEnv.reset

    def recording_reset(self: AtariEnv, seed: int | None = None):
        step = reset(self, seed)
        frames.append(self._ale.getEpisodeFrameNumber())
        return step

    monkeypatch.setattr(AtariEnv, "reset", recording_reset)
    return frames


def _eval(checkpoint: Path, out: Path, *extra: str) -> dict:
    code = main(["eval", str(checkpoint), "--episodes", "3", "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_eval_plays_30_random_noop_starts_by_default(
    pong_checkpoint: Path, frames_at_reset: list[int], tmp_path: Path
) -> None:
    results = _eval(pong_checkpoint, tmp_path)
    assert len(frames_at_reset) >= 3  # each environment's first episode (and any later ones)
    assert all(1 <= f <= 30 for f in frames_at_reset) and len(set(frames_at_reset)) > 1
    assert results["env_settings"]["atari"]["noop_max"] == 30
    assert results["env_settings"]["atari"]["max_frames"] == 160  # the run's other settings
    assert "up to 30 random no-ops" in results["atari_protocol"]
    assert "up to 30 random no-ops" in (tmp_path / "report.md").read_text()


def test_noop_max_option_changes_the_protocol(
    pong_checkpoint: Path, frames_at_reset: list[int], tmp_path: Path
) -> None:
    results = _eval(pong_checkpoint, tmp_path, "--noop-max", "0")
    assert len(frames_at_reset) >= 3 and set(frames_at_reset) == {0}
    assert results["env_settings"]["atari"]["noop_max"] == 0
    assert "no no-op starts" in results["atari_protocol"]


def test_bad_noop_max_is_a_one_line_error(
    pong_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(pong_checkpoint), "--noop-max", "-1", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error == "mtrl: error: bad --noop-max -1: expected an integer >= 0\n"

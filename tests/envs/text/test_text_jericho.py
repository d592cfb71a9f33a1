"""Jericho adapter: game-file lookup and, on a TextWorld-compiled .z8, real FrotzEnv play.

The games Jericho supports are played in ``test_text_jericho_real.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtrl.envs.registry import get_task
from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text import jericho_env, make_text_env
from mtrl.envs.text.jericho_env import JERICHO_DIR_ENV, JerichoEnv, find_game_file


def test_missing_game_file_names_the_file_and_the_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MTRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(JERICHO_DIR_ENV, str(tmp_path / "env-dir"))
    settings = TextSettings(game_dir=str(tmp_path / "games"))
    with pytest.raises(FileNotFoundError) as error:
        make_text_env(get_task("text/zork1"), settings)
    message = str(error.value)
    assert "\n" not in message and "'zork1.z5'" in message
    for folder in ("games", "env-dir", "cache/jericho"):
        assert str(tmp_path / folder) in message
    assert "text.game_dir" in message and JERICHO_DIR_ENV in message


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MTRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(JERICHO_DIR_ENV, raising=False)
    for folder in ("games", "env-dir", "cache/jericho"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "detective.z5").write_bytes(b"")
    settings = TextSettings(game_dir=str(tmp_path / "games"))
    assert find_game_file("detective.z5", settings) == tmp_path / "games" / "detective.z5"
    monkeypatch.setenv(JERICHO_DIR_ENV, str(tmp_path / "env-dir"))
    assert find_game_file("detective.z5", TextSettings()).parent == tmp_path / "env-dir"
    monkeypatch.delenv(JERICHO_DIR_ENV)
    assert find_game_file("detective.z5", TextSettings()).parent == tmp_path / "cache/jericho"


@pytest.fixture
def z8_env(coin_game_file: Path, coin_spec: TaskSpec) -> JerichoEnv:
    """The coin-collector game file, played by Jericho's emulator instead of TextWorld."""
    return JerichoEnv(coin_spec, TextSettings(), coin_game_file, seed=0)


def test_plays_a_z_machine_file(z8_env: JerichoEnv) -> None:
    assert not z8_env.supported  # unknown to Jericho: the generic path
    step = z8_env.reset(seed=2)
    assert isinstance(step.obs, str) and "coin" in step.obs and "Inventory:" in step.obs
    assert step.reward == 0.0 and step.legal.shape == (z8_env.spec.action.n,)
    # Only commands that change something survive: no refused moves, no "examine".
    assert step.commands == ("take coin",) and step.legal.sum() == 1
    last = z8_env.step(0)
    assert last.reward == 1.0 and last.terminated and last.info["won"]
    assert last.info["score"] == 1.0 and last.commands == ()
    with pytest.raises(RuntimeError):
        z8_env.step(0)
    z8_env.reset()
    with pytest.raises(ValueError, match="illegal action"):
        z8_env.step(1)


def test_z_machine_play_is_deterministic(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    def first_steps(seed: int) -> list[tuple[str, tuple[str, ...] | None]]:
        env = JerichoEnv(coin_spec, TextSettings(), coin_game_file, seed=seed)
        step = env.reset()
        trace = [(step.obs, step.commands)]
        step = env.step(int(np.flatnonzero(step.legal)[0]))
        return [*trace, (step.obs, step.commands)]

    assert first_steps(4) == first_steps(4)


def test_spacy_free_object_extraction_is_swapped_in_and_out(z8_env: JerichoEnv) -> None:
    jericho_util = jericho_env.jericho_util()
    original = jericho_util.extract_objs
    monkey = pytest.MonkeyPatch()
    monkey.setattr(jericho_env, "_spacy_model_available", lambda: False)
    try:
        with z8_env._object_extraction():
            found = jericho_util.extract_objs("There is a coin on the floor of the studio.")
            assert ("coin", "NOUN") in found and ("the", "NOUN") not in found
        assert jericho_util.extract_objs is original
    finally:
        monkey.undo()

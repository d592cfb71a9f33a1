"""The text factory: which adapter each game gets, settings, lazy imports, missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mtrl.envs.registry import get_task
from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text import make_text_env
from mtrl.envs.text.adventure_env import AdventureEnv
from mtrl.envs.text.common import import_extra
from mtrl.envs.text.games import JERICHO_SUITE, TEXT_SUITE, TINY_TEXT_TASK, text_specs
from mtrl.envs.text.textworld_env import TextWorldEnv


def test_factory_picks_the_adapter(coin_game_file: Path, coin_spec: TaskSpec) -> None:
    env = make_text_env(coin_spec, TextSettings(max_commands=7), seed=0)
    assert isinstance(env, TextWorldEnv) and env.spec.action.n == 7
    assert env.reset().legal.shape == (7,)
    adventure = make_text_env(get_task("text/adventure"), TextSettings(), seed=0)
    assert isinstance(adventure, AdventureEnv)


def test_table() -> None:
    ids = {spec.id for spec in text_specs()}
    assert TINY_TEXT_TASK in TEXT_SUITE and set(TEXT_SUITE) | set(JERICHO_SUITE) == ids
    assert {i.partition("/")[2] for i in JERICHO_SUITE} == {
        "detective",
        "acorncourt",
        "omniquest",
        "zork1",
    }


def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "textworld", None)  # makes `import textworld` fail
    with pytest.raises(ImportError, match=r"pip install 'mtrl-scalezero\[text\]'"):
        import_extra("textworld")

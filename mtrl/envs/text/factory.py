"""Build the text environment of a task spec (heavy packages are imported only here, lazily)."""

from __future__ import annotations

from mtrl.envs.base import TaskEnv
from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.games import game


def make_text_env(spec: TaskSpec, settings: TextSettings, seed: int | None = None) -> TaskEnv:
    """The environment for ``spec`` (a ``text/<game>`` task).

    Raises ``ValueError`` for an unknown game, ``FileNotFoundError`` for a missing Jericho
    game file and ``ImportError`` (with the install command) without the ``text`` extra.
    """
    entry = game(spec.name)
    if entry.kind == "textworld":
        from mtrl.envs.text.textworld_env import TextWorldEnv

        return TextWorldEnv(spec, settings, entry, seed)
    if entry.kind == "adventure":
        from mtrl.envs.text.adventure_env import AdventureEnv

        return AdventureEnv(spec, settings, seed)
    from mtrl.envs.text.jericho_env import JerichoEnv, find_game_file

    return JerichoEnv(spec, settings, find_game_file(entry.file_name, settings), seed)

"""TextWorld games generated offline at fixed (challenge, level, seed), cached on disk.

Generation (Inform 7 compiler bundled with ``textworld``) takes ~4 s and gives the same game
for the same seed; a game is generated once into ``cache_dir()/textworld/<key>/`` and never
again. Commands are TextWorld's admissible commands (exact: computed from the game's logic).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from mtrl.envs.settings import TextSettings, cache_dir
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.common import GameView, TextGameEnv, import_extra
from mtrl.envs.text.games import TextGame

GAME_FILE = "game.z8"  # plus game.json (TextWorld's metadata, needed for admissible commands)


def game_key(game: TextGame) -> str:
    """Cache folder name: the generation parameters and the TextWorld version."""
    textworld = import_extra("textworld")
    options = "".join(f"-{k}={v}" for k, v in game.options)
    return f"{game.challenge}-l{game.level}-s{game.seed}{options}-tw{textworld.__version__}"


def game_path(game: TextGame) -> Path:
    """The cached game file, generating it first if it is not there yet."""
    folder = cache_dir() / "textworld" / game_key(game)
    if not (folder / GAME_FILE).is_file():
        _generate_into(folder, game)
    return folder / GAME_FILE


def _generate_into(folder: Path, game: TextGame) -> None:
    # Generate in a private temp folder and rename it into place: rename is atomic, so a
    # concurrent reader sees no folder or a complete one; when two processes race, the
    # second rename fails because the folder exists, and that process discards its copy.
    folder.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        generate_game(game, temp / GAME_FILE)
        try:
            os.rename(temp, folder)
        except OSError:
            if not (folder / GAME_FILE).is_file():
                raise
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def generate_game(game: TextGame, path: Path) -> None:
    """Generate and compile ``game`` to ``path`` (a .z8 file, with its .json beside it)."""
    textworld = import_extra("textworld")
    from textworld.challenges import CHALLENGES

    if game.challenge not in CHALLENGES:
        valid = ", ".join(sorted(CHALLENGES))
        raise ValueError(f"unknown TextWorld challenge {game.challenge!r}; valid: {valid}")
    options = textworld.GameOptions()
    options.seeds = game.seed
    options.path = str(path)
    options.file_ext = path.suffix
    _, make, _ = CHALLENGES[game.challenge]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Jericho's "unknown game" warning, as above
        generated = make(_challenge_settings(game), options)
        textworld.generator.compile_game(generated, options)


def _challenge_settings(game: TextGame) -> dict[str, Any]:
    settings: dict[str, Any] = dict(game.options)
    if game.level:
        settings["level"] = game.level
    if game.challenge == "tw-simple":
        # tw-simple reads these three keys; "test" picks the held-out object names.
        settings.setdefault("rewards", "dense")
        settings.setdefault("goal", "detailed")
        settings["test"] = settings.get("test") == "true"
    return settings


class TextWorldEnv(TextGameEnv):
    """A generated TextWorld game.

    Commands: TextWorld's admissible commands for the state (the game logic's own list, so
    every one is valid). The games are deterministic: the episode seed only seeds the
    Z-machine's random generator, which these challenges do not use.
    """

    def __init__(
        self,
        spec: TaskSpec,
        settings: TextSettings,
        game: TextGame,
        seed: int | None = None,
    ) -> None:
        super().__init__(spec, settings, seed)
        textworld = import_extra("textworld")
        self.game = game
        self.path = game_path(game)
        infos = textworld.EnvInfos(
            admissible_commands=True,
            description=True,
            inventory=True,
            objective=True,
            score=True,
            max_score=True,
            won=True,
            lost=True,
        )
        with warnings.catch_warnings():
            # TextWorld plays through Jericho, which warns that it does not know this game
            # (true, and harmless: TextWorld tracks score and state itself).
            warnings.simplefilter("ignore")
            self._env: Any = textworld.start(str(self.path), request_infos=infos)
        # The generated game's own maximum score (TextWorld's game.max_score).
        self.max_score = float(textworld.Game.load(str(self.path.with_suffix(".json"))).max_score)

    def _start(self, seed: int) -> GameView:
        self._env.seed(seed)
        state = self._env.reset()
        # The intro is an ASCII-art banner followed by the objective and the room; the room is
        # in the observation's Location part anyway, so the feedback is just the objective.
        return self._view(state, feedback=state["objective"])

    def _play(self, command: str) -> GameView:
        state, _, _ = self._env.step(command)
        return self._view(state, feedback=state["feedback"])

    @staticmethod
    def _view(state: Any, feedback: str) -> GameView:
        return GameView(
            feedback=feedback,
            score=float(state["score"]),
            won=bool(state["won"]),
            lost=bool(state["lost"]),
            location=state["description"] or "",
            inventory=state["inventory"] or "",
            commands=tuple(state["admissible_commands"] or ()),
        )

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

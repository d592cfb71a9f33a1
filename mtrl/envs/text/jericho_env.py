"""Classic Z-machine games (detective, acorncourt, omniquest, zork1) through Jericho's FrotzEnv.

Jericho ships no games: users put the story files (``zork1.z5``...) in ``settings.game_dir``,
``$MTRL_JERICHO_DIR`` or ``cache_dir()/jericho``.

Valid commands. Jericho's ``get_valid_actions`` fills the game's grammar templates with the
names of nearby objects and keeps the commands that change the world (tested in its C
emulator); :class:`~mtrl.envs.text.jericho_actions.ValidActions` runs the same steps, cached
per world state (see there for what that changes). To find object names Jericho runs spaCy's
``en_core_web_sm`` over the room text, and that model is not installed and cannot be downloaded
offline (Jericho would try, and fail). So, unless that model is importable, the spaCy noun
extraction is swapped, during the call only, for a spaCy-free one: the words of the text that
the game's own dictionary marks as nouns, less function and number words (spaCy tags numbers
NUM, which Jericho skips). Everything else (object tree names, templates, world-change filter)
is Jericho's own.

Games Jericho does not know (not in its table of supported games, e.g. a TextWorld-compiled
``.z8``) have no templates, score or change detection in Jericho. They still play: score is
read from the game's standard Inform messages ("scored X out of a possible Y"), the end from
its ``*** ... ***`` banner, and the commands from a small generic template set (directions,
take/drop/open/close/eat X, put/unlock X with Y) over the dictionary nouns in sight, kept when
the room description, inventory or score changes (each candidate tried on a saved state).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mtrl.envs.base import Step
from mtrl.envs.settings import TextSettings, cache_dir
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.common import DIRECTIONS, GameView, TextGameEnv, clean_text, import_extra
from mtrl.envs.text.jericho_actions import ValidActions, game_cache, jericho_util
from mtrl.envs.text.jericho_pool import ThreadedFilter, default_threads

JERICHO_DIR_ENV = "MTRL_JERICHO_DIR"

_SCORE = re.compile(r"scored (-?\d+) out of a possible (\d+)")
_END_BANNER = re.compile(r"\*\*\*\s*(.+?)\s*\*\*\*")
_LOST_WORDS = ("died", "dead", "lost", "killed")
# Function words some games' dictionaries mark as nouns; never objects.
_STOP_WORDS = frozenset(
    {"a", "an", "the", "and", "all", "it", "them", "every", "everything", "each", "both"}
    | {"but", "except", "me", "myself", "you", "yourself", "her", "him", "his", "its", "my"}
    | {"your", "this", "that", "these", "those", "here", "there"}
    # Number words ("two or three stories up"): "two" alone is a quantity, not an object.
    | {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"}
    | {"twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"}
    | {"nineteen", "twenty", "thirty", "forty", "fifty", "hundred", "thousand"}
)
_VERBS_1 = ("take", "drop", "open", "close", "eat")
_VERBS_2 = ("put {a} on {b}", "put {a} in {b}", "unlock {b} with {a}")


def search_dirs(settings: TextSettings) -> list[Path]:
    """Where game files are looked for, in order."""
    dirs = [Path(settings.game_dir)] if settings.game_dir else []
    if os.environ.get(JERICHO_DIR_ENV):
        dirs.append(Path(os.environ[JERICHO_DIR_ENV]))
    return [*dirs, cache_dir() / "jericho"]


def find_game_file(file_name: str, settings: TextSettings) -> Path:
    """The first ``file_name`` found in :func:`search_dirs`, else a one-line FileNotFoundError."""
    dirs = search_dirs(settings)
    for folder in dirs:
        if (folder / file_name).is_file():
            return folder / file_name
    searched = ", ".join(str(d) for d in dirs)
    raise FileNotFoundError(
        f"Jericho game file {file_name!r} not found in: {searched}; put it in one of these "
        f"(set text.game_dir or ${JERICHO_DIR_ENV} to choose the folder)"
    )


class JerichoEnv(TextGameEnv):
    """A Z-machine story file played by Jericho; the episode seed seeds the game's RNG."""

    def __init__(
        self,
        spec: TaskSpec,
        settings: TextSettings,
        path: Path,
        seed: int | None = None,
    ) -> None:
        super().__init__(spec, settings, seed)
        jericho = import_extra("jericho")
        self.path = Path(path)
        with warnings.catch_warnings():
            # Unknown games warn that score/change detection are off; handled below.
            warnings.simplefilter("ignore")
            # A positive seed: FrotzEnv treats 0/None as "time-dependent" for unknown games.
            self._env: Any = jericho.FrotzEnv(str(self.path), seed=1)
        self.supported = bool(self._env.is_fully_supported and self._env.bindings)
        words = self._env.get_dictionary()
        self._word_length = max(len(w.word) for w in words)
        self._nouns = frozenset(w.word for w in words if _is_object_word(w))
        self._location = self._inventory = ""
        self._known_score = 0.0  # unknown games: the last score the game printed
        threads = default_threads()
        self.valid_actions = ValidActions(
            self._env,
            self._object_extraction,
            game_cache(self.path.read_bytes()),
            threaded=(lambda: ThreadedFilter(str(self.path), threads)) if threads > 1 else None,
        )

    def close(self) -> None:
        self.valid_actions.close()
        self._env.close()

    def _start(self, seed: int) -> GameView:
        self._env.seed(seed)
        self._known_score = 0.0
        intro, _ = self._env.reset()
        return self._view(intro)

    def _play(self, command: str) -> GameView:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # over-long commands are truncated, not fatal
            text = self._env.step(command)[0]
        return self._view(text)

    def walkthrough(self) -> list[str]:
        """The game's solution from Jericho's tables (empty for games Jericho does not know)."""
        return list(self._env.get_walkthrough()) if self.supported else []

    def fast_forward(self, commands: Sequence[str]) -> Step:
        """Play ``commands`` (any text, e.g. a prefix of :meth:`walkthrough`) as one step.

        Valid commands are found once, for the state after the last command, so a late state
        of a slow game is reached quickly (tests, start-state curricula). The reward is the
        score change over all of them, each counts as a step, and play stops where the game
        ends or at ``max_episode_steps``.
        """
        if self._state != "running":
            when = "before reset()" if self._state == "new" else "after the episode ended"
            raise RuntimeError(f"{self.spec.id}: fast_forward() called {when}; reset() first")
        if not commands:
            raise ValueError(f"{self.spec.id}: fast_forward() needs at least one command")
        played = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # over-long commands are truncated, not fatal
            room = self.spec.max_episode_steps - self._steps
            for played, command in enumerate(commands[:room], start=1):  # noqa: B007 - count used
                text = self._env.step(command)[0]
                if any(self._outcome(text)):
                    break
        view = self._view(text)
        reward = view.score - self._score
        self._score, self._steps = view.score, self._steps + played
        return self._emit(view, reward=reward, command=commands[played - 1])

    def _view(self, text: str) -> GameView:
        won, lost = self._outcome(text)
        over = won or lost
        if not over:
            self._location, self._inventory = self._peek("look"), self._peek("inventory")
        return GameView(
            feedback=text,
            score=self._read_score(text),
            won=won,
            lost=lost,
            location=self._location,
            inventory=self._inventory,
            commands=() if over else tuple(self._valid_commands()),
        )

    def _peek(self, command: str) -> str:
        """The game's reply to ``command``, with the game state restored afterwards."""
        state = self._env.get_state()
        text = self._env.step(command)[0]
        self._env.set_state(state)
        return clean_text(text)

    def _outcome(self, text: str) -> tuple[bool, bool]:
        if self.supported:
            # Jericho's game_over() is true at any end, won ones too (Acorn Court).
            won = bool(self._env.victory())
            return won, not won and bool(self._env.game_over())
        banner = _END_BANNER.search(text)
        if banner is None:
            return False, False
        lost = any(word in banner.group(1).lower() for word in _LOST_WORDS)
        return not lost, lost

    def _read_score(self, text: str) -> float:
        if self.supported:
            return float(self._env.get_score())
        found = _SCORE.search(text) or _SCORE.search(self._peek("score"))
        if found:
            self._known_score = float(found.group(1))
        return self._known_score

    # ---- valid commands -------------------------------------------------------------------

    def _valid_commands(self) -> list[str]:
        if self.supported:
            return self.valid_actions(self._location, self._inventory)
        return self._generic_valid_commands()

    @contextmanager
    def _object_extraction(self) -> Iterator[None]:
        """Swap spaCy's noun extraction for the dictionary one when spaCy's model is absent."""
        util = jericho_util()

        if _spacy_model_available():
            yield
            return
        original = util.extract_objs
        util.extract_objs = self._dictionary_objects
        try:
            yield
        finally:
            util.extract_objs = original

    def _dictionary_objects(self, text: str) -> set[tuple[str, str]]:
        return {(word, "NOUN") for word in self._object_words(text)}

    def _object_words(self, text: str) -> list[str]:
        words = re.findall(r"[a-z][a-z'-]*", text.lower())
        found = {w for w in words if w[: self._word_length] in self._nouns}
        return sorted(found - _STOP_WORDS)

    def _generic_valid_commands(self) -> list[str]:
        state = self._env.get_state()
        before = (self._location, self._inventory)
        nouns = self._object_words(f"{self._location} {self._inventory}")
        carried = [n for n in nouns if n in self._object_words(self._inventory)]
        candidates = [*DIRECTIONS, *(f"{v} {n}" for v in _VERBS_1 for n in nouns)]
        candidates += [
            t.format(a=a, b=b) for t in _VERBS_2 for a in carried for b in nouns if a != b
        ]
        # One command per outcome, like Jericho's own filter: "open trunk" and "open antique"
        # (two names of one object) lead to the same state, and only the first is kept.
        outcomes: dict[tuple[str, ...], str] = {}
        for command in candidates:
            outcome = self._outcome_of(state, command, before)
            if outcome is not None:
                outcomes.setdefault(outcome, command)
        self._env.set_state(state)
        return list(outcomes.values())

    def _outcome_of(
        self, state: Any, command: str, before: tuple[str, str]
    ) -> tuple[str, ...] | None:
        """What ``command`` changes from ``state``; ``None`` if refused or without effect."""
        util = jericho_util()

        self._env.set_state(state)
        reply = self._env.step(command)[0]
        if not util.recognized(util.clean(reply)):
            return None
        if _END_BANNER.search(reply) or "score has" in reply:
            return (clean_text(reply),)
        after = (self._peek("look"), self._peek("inventory"))
        return after if after != before else None


def _is_object_word(word: Any) -> bool:
    flags = (word.is_verb, word.is_prep, word.is_meta, word.is_dir, word.is_special)
    return bool(word.is_noun) and not any(flags) and len(word.word) > 1


_SPACY_MODEL: list[bool] = []


def _spacy_model_available() -> bool:
    """Whether spaCy's ``en_core_web_sm`` (what Jericho asks for) can be loaded offline."""
    if not _SPACY_MODEL:
        import importlib.util

        _SPACY_MODEL.append(importlib.util.find_spec("en_core_web_sm") is not None)
    return _SPACY_MODEL[0]

"""Valid commands of a Jericho-supported game, found once per world state.

Jericho's ``FrotzEnv.get_valid_actions`` fills the game's grammar templates with the names of
the objects in sight and tries every resulting command in its C emulator, keeping one command
per distinct change of the world. That try is the cost: each command runs the game's parser and
action routines (about 0.02 ms of CPU a command in Zork I, 0.25-0.6 ms in the Inform 6 games),
and a room with 16 objects gives 9,000 commands (most of them two-object templates, which grow with
the square of the object count). :class:`ValidActions` does the same search, built from
Jericho's own steps (object identification, name scoring, template generation, the C filter,
the choice of one command per change), with these differences:

* Results are cached per world state. The key is the world (Jericho's cleaned object tree and
  the game's special RAM addresses, the same things ``get_world_state_hash`` covers) plus the
  ``look`` and ``inventory`` text. A cached list is re-tried in the emulator before it is
  returned (a few commands, not thousands); if any of them no longer changes the world, or two
  now do the same thing, the full search runs again. So a cached list never offers a command
  that does nothing now; what a hit can miss is a command that became valid through something
  outside the key (a timer, the random number generator) while nothing in the key changed.
* Objects whose ``examine`` reply is a parser refusal are dropped before the templates are
  filled: "Which do you mean, the north wall or the south wall?" (ambiguous) and "I only
  understood you as far as ..." (a name the parser cannot read). Jericho drops only the
  refusals in its own list. With such a name every command stops in the parser before any
  action, so none of them could change the world: the valid list is the same, only found
  sooner.

Jericho's order of names (and so its choice between commands with the same effect and equal
verb counts) followed Python's string-hash seed; here it is sorted, the same in every process.
Where a game is slow per command, the full search's filter runs on threads
(:mod:`mtrl.envs.text.jericho_pool`), with the same result.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

from mtrl.envs.text.jericho_pool import ThreadedFilter, try_commands

# Parser replies (to "examine NAME") that mean NAME does not pick out one object.
_PARSER_REFUSALS = (
    re.compile(r"^Which\b.*\bdo you mean\b"),  # Inform and Infocom disambiguation questions
    re.compile(r"^I only understood you as far as\b"),  # Inform: words after NAME unread
)
# CPU seconds per tried command (as the threads try them) above which threads pay: a sample of
# Zork I's takes about 5e-5, of the three Inform 6 games' 4e-4 to 8e-4.
SLOW_COMMAND_S = 2e-4
PROBE_COMMANDS = 64
DEFAULT_CACHE_SIZE = 4096  # world states per game file; a list is ~20 short strings


class CommandCache:
    """A bounded least-recently-used map from world-state keys to valid-command lists."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        if size < 0:
            raise ValueError(f"bad cache size {size}: expected an integer >= 0")
        self.size = size
        self._entries: OrderedDict[bytes, tuple[str, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[str, ...] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: bytes, commands: tuple[str, ...]) -> None:
        if not self.size:
            return
        self._entries[key] = commands
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


# One cache per game file (by content) and process: the envs of a rollout worker that play the
# same game share what each of them found.
_GAME_CACHES: dict[str, CommandCache] = {}


def game_cache(story: bytes) -> CommandCache:
    """The process's cache for the game file with contents ``story``."""
    return _GAME_CACHES.setdefault(hashlib.sha256(story).hexdigest(), CommandCache())


def jericho_util() -> ModuleType:
    """``jericho.util`` itself: ``import jericho.util`` can return ``ctypes.util`` instead.

    jericho's package does ``from .jericho import *`` and that module ``from ctypes import *``;
    once anything has imported ``ctypes.util``, the star import rebinds the package attribute
    ``jericho.util`` to it. ``sys.modules`` keeps the real module.
    """
    return importlib.import_module("jericho.util")


def is_parser_refusal(reply: str) -> bool:
    """Whether ``reply`` (to ``examine NAME``) says the parser could not resolve NAME."""
    return any(pattern.search(reply) for pattern in _PARSER_REFUSALS)


class ValidActions:
    """The valid commands of a supported game's current state, cached per world state.

    ``extraction`` is entered around Jericho's object identification (the adapter uses it to
    swap in a spaCy-free noun extractor). ``cache`` defaults to a private one. ``threaded``
    makes a :class:`~mtrl.envs.text.jericho_pool.ThreadedFilter`; it is called once, if a
    sample of the first search's commands is slow to try (the Inform games, not Zork I, whose
    commands cost too little to pay for the threads). Counters: ``searches`` (full searches run) and
    ``hits`` (cached lists confirmed and returned).
    """

    def __init__(
        self,
        env: Any,
        extraction: Callable[[], AbstractContextManager[None]],
        cache: CommandCache | None = None,
        threaded: Callable[[], ThreadedFilter] | None = None,
    ) -> None:
        self._env = env
        self._extraction = extraction
        self.cache = CommandCache() if cache is None else cache
        self._make_threaded = threaded
        self.threaded: ThreadedFilter | None = None
        self.searches = 0
        self.hits = 0

    def close(self) -> None:
        if self.threaded is not None:
            self.threaded.close()
            self.threaded = None

    def __call__(self, location: str, inventory: str) -> list[str]:
        """Valid commands now; ``location``/``inventory`` are the game's look/inventory text."""
        key = self._key(location, inventory)
        cached = self.cache.get(key)
        if cached is not None and self._confirmed(cached):
            self.hits += 1
            return list(cached)
        commands = self.search()
        self.cache.put(key, tuple(commands))
        return commands

    def search(self) -> list[str]:
        """The full search, uncached: Jericho's ``get_valid_actions`` less the refused names."""
        self.searches += 1
        env = self._env
        with self._extraction():
            groups = env._identify_interactive_objects(use_object_tree=True)
        # Jericho builds the groups from sets, so their order, and with it the choice between
        # equally good names and commands, followed the process's string-hash seed: sort them.
        groups = {
            reply: sorted(objs)
            for reply, objs in sorted(groups.items())
            if not is_parser_refusal(reply)
        }
        candidates = env.act_gen.generate_actions(env._score_object_names(groups))
        changes = self._filter(candidates)
        # Of the commands with the same effect, Jericho offers the one players use most.
        return [max(acts, key=jericho_util().verb_usage_count) for acts in changes.values()]

    def _filter(self, candidates: list[str]) -> dict[Any, list[str]]:
        if self._make_threaded is not None:
            make, self._make_threaded = self._make_threaded, None  # decided once per game
            if self._slow_to_try(candidates):
                self.threaded = make()
        if self.threaded is not None:
            return self.threaded(self._env, candidates)
        return self._env._filter_candidate_actions(candidates, use_ctypes=True, use_parallel=False)

    def _slow_to_try(self, candidates: list[str]) -> bool:
        """Whether a sample of the candidates, tried as the threads would, is slow per command."""
        sample = candidates[:: max(1, len(candidates) // PROBE_COMMANDS)][:PROBE_COMMANDS]
        start = time.thread_time()  # CPU of this thread: the emulator runs in it
        try_commands(self._env, self._env.get_state(), sample)
        return (time.thread_time() - start) / max(len(sample), 1) >= SLOW_COMMAND_S

    def _confirmed(self, commands: tuple[str, ...]) -> bool:
        """Whether each command still changes the world, each in its own way."""
        if not commands:
            return False  # nothing to re-try: an empty list is only trusted fresh
        changes = self._env._filter_candidate_actions(
            list(commands), use_ctypes=True, use_parallel=False
        )
        return len(changes) == len(commands) and sum(map(len, changes.values())) == len(commands)

    def _key(self, location: str, inventory: str) -> bytes:
        # The raw object records (name, parent, sibling, child, attributes, properties) and
        # special RAM: what get_world_state_hash formats as text, 25x cheaper as bytes.
        digest = hashlib.blake2b(bytes(self._env.get_world_objects(clean=True)))
        digest.update(self._env._get_special_ram().tobytes())
        digest.update(f"{location}\0{inventory}".encode())
        return digest.digest()

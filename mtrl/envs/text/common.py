"""What all text adapters share: the observation format, the command cap, episode bookkeeping.

Observation (one string, the same layout for every text game)::

    <feedback: what the game said in reply to the last command; at reset, the game's intro>

    Location: <the current room description, as `look` would print it>

    Inventory: <what the player carries, as `inventory` would print it>

Why location and inventory in every observation: the game's reply alone ("Taken.") says little,
and a MuZero-style representation network sees one observation at a time; adding the room and
the inventory makes each observation close to a full description of the state. Whitespace is
normalised (runs of blank lines collapsed, the Z-machine's prompt and status line removed).

Commands: each backend lists the currently valid commands (how is backend-specific, see the
adapters); the list is deduplicated and capped at ``n`` by :func:`cap_commands`, then offered in
sorted order, so the same state always gives the same list and the same indices.
"""

from __future__ import annotations

import importlib
import re
from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import ModuleType

import numpy as np

from mtrl.envs.base import Action, Step, TaskEnv, check_index_action
from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import ActionSpace, TaskSpec

TEXT_EXTRA_HINT = "pip install 'mtrl-scalezero[text]'"

DIRECTIONS = (
    "north",
    "south",
    "east",
    "west",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
    "up",
    "down",
    "in",
    "out",
)
_SHORT_DIRECTIONS = ("n", "s", "e", "w", "ne", "nw", "se", "sw", "u", "d")
_INFO_VERBS = ("look", "l", "inventory", "i", "examine", "x")

# Offered when a live state yields no command at all, so an agent is never stuck without a
# legal action; every parser game (and Colossal Cave) understands it and it changes nothing.
FALLBACK_COMMAND = "look"


def import_extra(module: str) -> ModuleType:
    """Import a package of the optional ``text`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"text games need the {module!r} package: {TEXT_EXTRA_HINT}") from error


def clean_text(text: str) -> str:
    """Game output without the prompt/status line, trailing spaces and runs of blank lines."""
    # Z-machine output ends with the '>' prompt, often followed by the status line.
    text = re.split(r"\n>", "\n" + text)[0]
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def format_observation(feedback: str, location: str, inventory: str) -> str:
    return (
        f"{clean_text(feedback)}\n\nLocation: {clean_text(location)}"
        f"\n\nInventory: {clean_text(inventory)}"
    )


def command_tier(command: str) -> int:
    """Keep-priority of a command when capping: 0 movement, 1 acting on things, 2 looking.

    Looking (look, inventory, examine) goes first because the observation already contains
    the room and the inventory; movement is kept first because without it an agent is stuck.
    """
    words = command.split()
    if not words:
        return 2
    if words[0] == "go" or command in DIRECTIONS or command in _SHORT_DIRECTIONS:
        return 0
    return 2 if words[0] in _INFO_VERBS else 1


def cap_commands(
    commands: Iterable[str], n: int, tier: Callable[[str], int] = command_tier
) -> tuple[str, ...]:
    """At most ``n`` distinct commands, in sorted order.

    When there are more than ``n``: lower tiers first (see :func:`command_tier`); within a
    tier, round-robin over verbs (first words, alphabetical), each verb's commands in
    alphabetical order, so a long list of one verb cannot crowd out every other verb.
    """
    unique = sorted({c.strip() for c in commands if c.strip()})
    if len(unique) <= n:
        return tuple(unique)
    kept: list[str] = []
    for level in sorted({tier(c) for c in unique}):
        kept.extend(_round_robin([c for c in unique if tier(c) == level], n - len(kept)))
        if len(kept) >= n:
            break
    return tuple(sorted(kept))


def _round_robin(commands: list[str], budget: int) -> list[str]:
    by_verb: dict[str, list[str]] = {}
    for command in commands:
        by_verb.setdefault(command.split()[0], []).append(command)
    queues = [by_verb[verb] for verb in sorted(by_verb)]
    picked: list[str] = []
    depth = 0
    while len(picked) < budget and any(depth < len(q) for q in queues):
        picked.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return picked[:budget]


@dataclass(frozen=True)
class GameView:
    """What a backend reports after a reset or a command (before capping)."""

    feedback: str
    score: float
    won: bool
    lost: bool
    location: str
    inventory: str
    commands: tuple[str, ...]  # valid commands, uncapped; ignored once the game is over

    @property
    def over(self) -> bool:
        return self.won or self.lost


def text_spec(spec: TaskSpec, settings: TextSettings) -> TaskSpec:
    """The spec resolved for these settings: ``action.n`` is ``settings.max_commands``."""
    return replace(spec, action=ActionSpace("text", n=settings.max_commands))


class TextGameEnv(TaskEnv):
    """Episode bookkeeping shared by the text adapters; backends implement ``_start``/``_play``.

    Reward is the change in the game's score. ``terminated`` when the game is won or lost,
    ``truncated`` after ``spec.max_episode_steps`` commands. After termination no command is
    offered (``legal`` all false). Stepping a finished episode raises ``RuntimeError``.

    Seeds: ``reset(seed)`` reseeds the episode stream; ``reset()`` draws the next episode seed
    from it (stream seeded by the constructor's ``seed``), as gymnasium does.
    """

    def __init__(self, spec: TaskSpec, settings: TextSettings, seed: int | None = None) -> None:
        self.spec = text_spec(spec, settings)
        self._n = self.spec.action.n
        self._seeds = np.random.default_rng(seed)
        self._commands: tuple[str, ...] = ()
        self._legal = np.zeros(self._n, dtype=bool)
        self._score = 0.0
        self._steps = 0
        self._state = "new"  # new | running | done

    @abstractmethod
    def _start(self, seed: int) -> GameView:
        """Start a new game (deterministic given ``seed``)."""

    @abstractmethod
    def _play(self, command: str) -> GameView:
        """Send one command to the running game."""

    def reset(self, seed: int | None = None) -> Step:
        if seed is not None:
            self._seeds = np.random.default_rng(seed)
        view = self._start(int(self._seeds.integers(1, 2**31 - 1)))
        self._score, self._steps, self._state = view.score, 0, "running"
        return self._emit(view, reward=0.0, command=None)

    def step(self, action: Action) -> Step:
        if self._state != "running":
            when = "before reset()" if self._state == "new" else "after the episode ended"
            raise RuntimeError(f"{self.spec.id}: step() called {when}; call reset() first")
        command = self._commands[check_index_action(self.spec, action, self._legal)]
        view = self._play(command)
        reward = view.score - self._score
        self._score, self._steps = view.score, self._steps + 1
        return self._emit(view, reward=reward, command=command)

    def _emit(self, view: GameView, reward: float, command: str | None) -> Step:
        truncated = not view.over and self._steps >= self.spec.max_episode_steps
        if view.over or truncated:
            self._state = "done"
        commands = () if view.over else cap_commands(view.commands, self._n)
        if not commands and not view.over:
            commands = (FALLBACK_COMMAND,)
        self._commands = commands
        self._legal = np.zeros(self._n, dtype=bool)
        self._legal[: len(commands)] = True
        info = {"score": view.score, "won": view.won, "lost": view.lost, "command": command}
        return Step(
            obs=format_observation(view.feedback, view.location, view.inventory),
            reward=float(reward),
            terminated=view.over,
            truncated=truncated,
            legal=self._legal.copy(),
            commands=commands,
            info=info,
        )

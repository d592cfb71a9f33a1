"""Colossal Cave Adventure (Crowther & Woods) from the pure-Python ``adventure`` package.

Score: the game's own ``compute_score`` (350 points in all). A new game already holds 36 of
them (2 for starting, 30 for three unused lives, 4 for not having quit), so the best possible
episode return, the table's ``max_score``, is 350 - 36 = 314.

The game has no list of valid commands, so one is built from the game state each turn:

* a pending yes/no question (instructions, a hint, reincarnation): ``yes`` and ``no`` only;
* movement: for each entry of the room's travel table, one of its words that no earlier entry
  claims (the game takes the first matching entry, so later duplicates do nothing), a compass
  word when the entry has one, else its first word (``xyzzy``, ``depression``...);
* objects: ``take X`` for loose objects here (none when the room is dark), ``drop X`` for
  carried ones, and the verbs the game's rules give a purpose for that object (``AFFORDANCES``,
  read off the game's verb handlers: light the lamp, unlock the grate, feed the bear...);
  ``throw X`` for carried objects when a creature is here.

The candidates are honest (only words the game knows, only objects that are really here or
carried) but not filtered by simulation: a command may still be refused ("YOU CAN'T BE
SERIOUS"), as a player's could be.
"""

from __future__ import annotations

from typing import Any

from mtrl.envs.settings import TextSettings
from mtrl.envs.spec import TaskSpec
from mtrl.envs.text.common import GameView, TextGameEnv, import_extra

# Verbs with an effect on a given object in this game (besides take/drop), by object name.
AFFORDANCES: dict[str, tuple[str, ...]] = {
    "lamp": ("light", "extinguish"),
    "grate": ("unlock", "lock"),
    "chain": ("unlock", "lock"),
    "clam": ("open",),
    "oyster": ("open", "read"),
    "door": ("open",),
    "rod": ("wave",),
    "food": ("eat",),
    "water": ("drink", "pour"),
    "oil": ("pour",),
    "bottle": ("fill",),
    "magazine": ("read",),
    "tablet": ("read",),
    "message": ("read",),
    "vase": ("break",),
    "mirror": ("break",),
    "bird": ("feed",),
    "snake": ("attack", "feed"),
    "dragon": ("attack",),
    "troll": ("attack", "feed"),
    "bear": ("attack", "feed"),
    "dwarf": ("attack", "feed", "wake"),
    "plant": ("pour",),
    "machine": ("break",),
}
CREATURES = frozenset({"snake", "dragon", "troll", "bear", "dwarf"})
ANSWERS = ("no", "yes")
COMPASS = ("north", "south", "east", "west", "ne", "nw", "se", "sw", "upward", "d", "out")


class AdventureEnv(TextGameEnv):
    """Colossal Cave; the episode seed seeds the game's random generator (dwarves, pirate)."""

    def __init__(self, spec: TaskSpec, settings: TextSettings, seed: int | None = None) -> None:
        super().__init__(spec, settings, seed)
        self._adventure = import_extra("adventure")
        self._game: Any = None

    def _start(self, seed: int) -> GameView:
        from adventure.game import Game

        game = Game(seed)
        self._adventure.load_advent_dat(game)
        game.start()
        # The game opens by asking whether to print the instructions; "no" keeps the lamp's
        # standard battery life (the instructions extend it to 1000 turns).
        intro = game.do_command(["no"])
        self._game = game
        return self._view(intro)

    def _play(self, command: str) -> GameView:
        return self._view(self._game.do_command(command.split()))

    def _view(self, output: str) -> GameView:
        game = self._game
        over = bool(game.is_finished)
        # Winning means surviving to the end game (the cave closed); any other end is a loss.
        won = over and bool(game.is_closed) and not game.is_dead
        return GameView(
            feedback=output.lower(),
            score=float(game.compute_score()[0]),
            won=won,
            lost=over and not won,
            location=self._location(),
            inventory=self._inventory(),
            commands=() if over else tuple(adventure_commands(game)),
        )

    def _location(self) -> str:
        game = self._game
        if game.is_dark:
            return "it is now pitch dark."
        room = game.loc
        text = room.long_description or room.short_description
        seen = [obj.names[0] for obj in game.objects_here if not obj.is_toting]
        listed = f"\nyou see: {', '.join(seen)}." if seen else ""
        return text.lower().strip() + listed

    def _inventory(self) -> str:
        carried = [obj.names[0] for obj in self._game.inventory]
        return ", ".join(carried) + "." if carried else "nothing."


def adventure_commands(game: Any) -> list[str]:
    """Candidate commands for the current state of a running ``adventure.game.Game``."""
    if game.yesno_callback:
        return list(ANSWERS)
    return motion_words(game.loc) + object_commands(game)


def motion_words(room: Any) -> list[str]:
    claimed: set[str] = set()
    words: list[str] = []
    for move in room.travel_table:
        texts = [verb.text for verb in move.verbs if verb.text]
        fresh = [t for t in texts if t not in claimed]
        claimed.update(texts)
        if fresh and not move.is_forced:
            compass = sorted((t for t in fresh if t in COMPASS), key=COMPASS.index)
            words.append((compass or fresh)[0])
    return words


def object_commands(game: Any) -> list[str]:
    # In the dark only what is carried can be used (lighting the lamp, above all).
    here = [] if game.is_dark else [obj for obj in game.objects_here if not obj.is_toting]
    carried = list(game.inventory)
    names_here = {obj.names[0] for obj in here}
    if not game.is_dark and any(dwarf.room is game.loc for dwarf in game.dwarves):
        names_here.add("dwarf")
    commands = [f"take {obj.names[0]}" for obj in here if not obj.is_fixed]
    commands += [f"drop {obj.names[0]}" for obj in carried]
    for name in sorted(names_here | {obj.names[0] for obj in carried}):
        commands += [f"{verb} {name}" for verb in AFFORDANCES.get(name, ())]
    if names_here & CREATURES:
        commands += [f"throw {obj.names[0]}" for obj in carried]
    return commands

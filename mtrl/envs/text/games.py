"""The text tasks: which games exist, their limits and scores (data only; adapters elsewhere).

Offline games need no download: TextWorld games generated at fixed seeds (cached on disk after
the first generation) and Colossal Cave from the ``adventure`` package. Jericho games are
classic Z-machine files that users supply themselves (see ``mtrl.envs.text.jericho_env``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mtrl.envs.spec import ActionSpace, Modality, TaskSpec

MAX_COMMANDS = 20  # commands offered per step; longer valid-command lists are capped


@dataclass(frozen=True)
class TextGame:
    name: str  # task name: the id is text/<name>
    kind: str  # "textworld" | "adventure" | "jericho"
    max_episode_steps: int
    max_score: float
    # textworld: (challenge, level, seed) for generation; jericho: the game file name.
    challenge: str = ""
    level: int = 0
    seed: int = 0
    file_name: str = ""
    # textworld: extra challenge settings, e.g. (("rewards", "dense"),) for tw-simple.
    options: tuple[tuple[str, str], ...] = ()


# Max scores are the best possible episode return (sum of score deltas):
# * TextWorld: the generated game's game.max_score (checked in tests/envs/text).
# * adventure: the game's scale is 350 (compute_score's maximum), of which a new game already
#   holds 36 (2 for starting, 30 for unused lives, 4 for not quitting): 350 - 36 = 314.
# * Jericho: the maxima Jericho reports for these games (its paper's table; the values live
#   in its compiled library, so they cannot be read without the game files).
GAMES: tuple[TextGame, ...] = (
    TextGame("tw-coin_collector-l1", "textworld", 50, 1.0, "tw-coin_collector", 1, 1),
    TextGame("tw-treasure_hunter-l1", "textworld", 50, 1.0, "tw-treasure_hunter", 1, 1),
    TextGame(
        "tw-simple-dense",
        "textworld",
        100,
        8.0,
        "tw-simple",
        0,
        1,
        options=(("rewards", "dense"), ("goal", "detailed")),
    ),
    TextGame("adventure", "adventure", 400, 314.0),
    TextGame("detective", "jericho", 400, 360.0, file_name="detective.z5"),
    TextGame("acorncourt", "jericho", 400, 30.0, file_name="acorncourt.z5"),
    TextGame("omniquest", "jericho", 400, 50.0, file_name="omniquest.z5"),
    TextGame("zork1", "jericho", 400, 350.0, file_name="zork1.z5"),
)

TEXT_SUITE = tuple(f"text/{g.name}" for g in GAMES if g.kind != "jericho")
JERICHO_SUITE = tuple(f"text/{g.name}" for g in GAMES if g.kind == "jericho")
TINY_TEXT_TASK = "text/tw-coin_collector-l1"


def game(name: str) -> TextGame:
    for candidate in GAMES:
        if candidate.name == name:
            return candidate
    raise ValueError(f"unknown text game {name!r}; valid: {', '.join(g.name for g in GAMES)}")


def text_specs() -> list[TaskSpec]:
    return [
        TaskSpec(
            id=f"text/{g.name}",
            modality=Modality.TEXT,
            obs_shape=(),
            action=ActionSpace("text", n=MAX_COMMANDS),
            max_episode_steps=g.max_episode_steps,
            max_score=g.max_score,
            target_score=g.max_score,
            source=g.file_name or g.challenge or g.kind,
        )
        for g in GAMES
    ]

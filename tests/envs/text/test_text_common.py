"""The shared text-env pieces: command capping, text cleaning, observation layout."""

from __future__ import annotations

from mtrl.envs.text.common import cap_commands, clean_text, command_tier, format_observation


def test_cap_keeps_all_sorted_and_unique_when_short() -> None:
    assert cap_commands(["take coin", "go north", "take coin", " look "], 5) == (
        "go north",
        "look",
        "take coin",
    )


def test_cap_prefers_movement_then_actions_then_looking() -> None:
    commands = ["examine coin", "look", "inventory", "take coin", "go east", "drop key"]
    assert cap_commands(commands, 3) == ("drop key", "go east", "take coin")
    assert cap_commands(commands, 1) == ("go east",)
    assert [command_tier(c) for c in ("go east", "north", "open box", "examine box")] == [
        0,
        0,
        1,
        2,
    ]


def test_cap_round_robins_over_verbs() -> None:
    takes = [f"take thing{i}" for i in range(10)]
    capped = cap_commands([*takes, "open box", "unlock box with key"], 4)
    # One of each verb first, then the second "take": "take" cannot crowd out the others.
    assert capped == ("open box", "take thing0", "take thing1", "unlock box with key")


def test_cap_is_deterministic_under_input_order() -> None:
    commands = [f"{v} {o}" for v in ("take", "open", "eat") for o in ("a", "b", "c", "d")]
    assert cap_commands(commands, 5) == cap_commands(list(reversed(commands)), 5)


def test_clean_text_drops_prompt_status_and_blank_runs() -> None:
    raw = "\nYou see a coin.\n\n\n\n\nIt shines.   \n\n>      -= Studio =-0/1"
    assert clean_text(raw) == "You see a coin.\n\nIt shines."


def test_observation_layout() -> None:
    obs = format_observation("Taken.\n>", "-= Room =-\nA room.", "You carry a coin.")
    assert obs == "Taken.\n\nLocation: -= Room =-\nA room.\n\nInventory: You carry a coin."

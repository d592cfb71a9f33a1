"""int8 inference copies: close to fp32, share what is not quantised, follow weight changes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mtrl.envs.batch import TaskSet
from mtrl.world_models import WorldModel
from mtrl.world_models.quantize import Int8Cache, int8_inference_copy


def test_copy_quantises_the_transformer_only_and_stays_close(model: WorldModel) -> None:
    torch.manual_seed(1)
    x = torch.randn(64, model.cfg.embed_dim)
    copy = int8_inference_copy(model)
    linears = [m for m in copy.transformer.modules() if type(m) is nn.Linear]
    assert not linears  # every transformer linear was swapped for its int8 twin
    assert any(type(m) is nn.Linear for m in model.transformer.modules())  # source untouched
    assert copy.encoder is model.encoder and copy.value_head is model.value_head
    with torch.inference_mode():
        cache = model.transformer.empty_cache(64, x.device, x.dtype)
        want, _, _ = model.transformer.step(x, cache)
        got, _, _ = copy.transformer.step(x, cache)
    error = (got - want).norm() / want.norm()
    assert 0 < error < 0.05  # quantised (not identical), and close


def test_cache_rebuilds_after_weight_or_stage_changes_only(model: WorldModel) -> None:
    cache = Int8Cache(model)
    first = cache.get()
    assert cache.get() is first  # nothing changed: no rebuild
    with torch.no_grad():
        model.transformer.blocks[0].attn.q.base.weight.mul_(2.0)
    second = cache.get()
    assert second is not first
    probe = second.transformer.blocks[0].attn.q.base.weight()  # the int8 twin's weight
    torch.testing.assert_close(
        probe.dequantize(), model.transformer.blocks[0].attn.q.base.weight, rtol=0.02, atol=0.02
    )
    model.load_state_dict(model.state_dict())  # a weight broadcast with equal values
    assert cache.get() is not second
    third = cache.get()
    model.set_active_adapters(1)  # DPS stage change: no parameter changes
    assert cache.get() is not third
    assert cache.get().active_adapters == 1


def test_non_cpu_model_is_refused(tasks: TaskSet, cfg) -> None:
    meta = WorldModel(tasks, cfg).to("meta")
    with pytest.raises(ValueError, match="CPU only"):
        int8_inference_copy(meta)

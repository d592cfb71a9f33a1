"""int8 inference for CPU search: the transformer's linears as dynamically quantised matmuls.

Search on a CPU is bound by the transformer's matmuls (a 768-d, 4-layer model spends ~95% of a
simulation in them). This CPU has no bf16 units (bf16 GEMMs run ~6x slower than fp32 here),
but fbgemm's int8 GEMMs run ~2x faster than fp32. Weights are quantised per output channel
once per weight change; activations are quantised per call (dynamic quantisation), so nothing
needs calibration. Encoders, heads, embeddings and the routed MoE experts (grouped matmuls on
raw parameters) stay fp32. Training never sees this copy.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from mtrl.world_models.model import WorldModel


def weights_version(model: nn.Module) -> int:
    """Changes whenever any parameter is modified in place (optimizer steps, ``load_*``)."""
    return sum(p._version for p in model.parameters())


def int8_inference_copy(model: WorldModel) -> WorldModel:
    """A copy of ``model`` whose transformer linears run in int8; the rest is shared, not copied.

    Raises on a non-CPU model: fbgemm's kernels are CPU-only (use bf16 autocast on GPUs).
    """
    if model.device.type != "cpu":
        raise ValueError(
            f"int8 inference runs on CPU only, the model is on {model.device}; "
            "turn acting.int8_inference off on GPUs"
        )
    with warnings.catch_warnings():  # torch.ao's "migrate to torchao" notice, once per call
        warnings.simplefilter("ignore")
        transformer = quantize_dynamic(
            model.transformer,
            {nn.Linear: per_channel_dynamic_qconfig},
            dtype=torch.qint8,
            inplace=False,
        )
    quantized = copy.copy(model)  # a new module object sharing the other submodules
    quantized._modules = dict(model._modules)
    quantized._modules["transformer"] = transformer
    return quantized.eval()


class Int8Cache:
    """The int8 copy of a model, rebuilt only when the model's weights or its DPS stage (the
    active adapters, a plain attribute the copy would not follow) changed since."""

    def __init__(self, model: WorldModel) -> None:
        self.model = model
        self.version: tuple[int, int] = (-1, -1)
        self.copy: WorldModel | None = None

    def get(self) -> WorldModel:
        version = (weights_version(self.model), self.model.active_adapters)
        if self.copy is None or version != self.version:
            self.copy, self.version = int8_inference_copy(self.model), version
        return self.copy

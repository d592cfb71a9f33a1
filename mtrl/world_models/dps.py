"""Dynamic Parameter Scaling stages (ScaleZero, 2025) as a pure object.

Stage 0 trains the whole model (no adapter in the forward pass). Stage ``s >= 1`` (up to the
bank size ``lora_count``) freezes the backbone, keeps adapters ``0 .. s-2`` frozen *but active*,
and trains adapter ``s - 1`` — its A, B and scale, in every wrapped linear (attention q/k/v/out,
routed experts, shared expert). Adapters are 0-indexed, so stage ``s`` owns adapter ``s - 1``.

What trains at each stage (``frozen_prefixes`` decides the backbone):

==========================================  =========  ======================
parameters                                  stage 0    stage s >= 1
==========================================  =========  ======================
``encoder.*`` (image/vector/text encoders)  train      frozen
``transformer.*`` base weights, router,     train      frozen
positions, norms
LoRA adapter ``s - 1`` (A, B, scale)        —          train
LoRA adapters ``< s - 1``                   —          frozen, active
LoRA adapters ``>= s``                      —          inactive
heads, action embeddings, task embeddings   train      train (per-task parts
                                                       must keep adapting)
``target_encoder.*`` (EMA copy)             never      never
==========================================  =========  ======================

``set_stage`` sets ``requires_grad`` exactly and edits an optimizer in place so that its
parameters are exactly the trainable ones: parameters that stop training leave it (with their
state), parameters that keep training keep their group and their state (e.g. Adam moments of
the heads), new ones join in a new group named ``dps_stage_<s>``. The controller that decides
*when* to switch lives in the agent.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim import Optimizer

from mtrl.world_models.lora import LoRABank, set_active_adapters

NEVER_TRAIN = ("target_encoder.",)


class DPSStages:
    def __init__(
        self, model: nn.Module, frozen_prefixes: tuple[str, ...] = ("encoder.", "transformer.")
    ) -> None:
        self.model = model
        self.frozen_prefixes = frozen_prefixes
        self.banks = [m for m in model.modules() if isinstance(m, LoRABank)]
        self.num_stages = 1 + min((b.count for b in self.banks), default=0)
        adapter_ids = {
            id(p) for b in self.banks for i in range(b.count) for p in b.adapter_parameters(i)
        }
        self.stage = 0
        self._adapter_ids = adapter_ids

    def adapter_parameters(self, index: int) -> list[nn.Parameter]:
        return [p for bank in self.banks for p in bank.adapter_parameters(index)]

    def trainable(self, stage: int) -> list[nn.Parameter]:
        """The parameters that train at ``stage``, in model order."""
        self._check(stage)
        chosen = {id(p) for p in self.adapter_parameters(stage - 1)} if stage else set()
        out = []
        for name, p in self.model.named_parameters():
            if id(p) in self._adapter_ids:
                keep = id(p) in chosen
            elif name.startswith(NEVER_TRAIN):
                keep = False
            else:
                keep = stage == 0 or not name.startswith(self.frozen_prefixes)
            if keep:
                out.append(p)
        return out

    def set_stage(self, stage: int, optimizer: Optimizer | None = None, **group: Any) -> None:
        """Switch to ``stage``: adapters in the forward pass, ``requires_grad``, optimizer.

        ``group`` overrides hyper-parameters (e.g. ``lr``) of the group of newly added params.
        """
        self._check(stage)
        set_active_adapters(self.model, stage)
        train = {id(p) for p in self.trainable(stage)}
        for p in self.model.parameters():
            p.requires_grad_(id(p) in train)
        if optimizer is not None:
            sync_optimizer(
                optimizer, [p for p in self.model.parameters() if id(p) in train], stage, group
            )
        self.stage = stage

    def state_dict(self) -> dict[str, int]:
        return {"stage": self.stage}

    def load_state_dict(self, state: dict[str, int], optimizer: Optimizer | None = None) -> None:
        self.set_stage(int(state["stage"]), optimizer)

    def _check(self, stage: int) -> None:
        if not 0 <= stage < self.num_stages:
            raise ValueError(f"DPS stage must be in [0, {self.num_stages - 1}], got {stage}")


def sync_optimizer(
    optimizer: Optimizer, params: list[nn.Parameter], stage: int, group: dict[str, Any]
) -> None:
    """Make ``optimizer`` hold exactly ``params``, keeping state of those it already had."""
    keep = {id(p) for p in params}
    for g in optimizer.param_groups:
        g["params"] = [p for p in g["params"] if id(p) in keep]
    optimizer.param_groups = [g for g in optimizer.param_groups if g["params"]]
    for p in [p for p in optimizer.state if id(p) not in keep]:
        del optimizer.state[p]
    present = {id(p) for g in optimizer.param_groups for p in g["params"]}
    new = [p for p in params if id(p) not in present]
    if new:
        optimizer.add_param_group({"params": new, "name": f"dps_stage_{stage}", **group})

"""DPS stages: exactly the intended parameters train, are in the optimizer, and change."""

import pytest
import torch
from wm_helpers import random_batch

from mtrl.envs.batch import TaskSet
from mtrl.world_models import DPSStages, WorldModel
from mtrl.world_models.lora import LoRABank

IDS = [0, 2, 4, 5, 1, 3]


def names_where(model: WorldModel, keep) -> set[str]:
    return {n for n, p in model.named_parameters() if keep(n, p)}


def intended(model: WorldModel, stage: int) -> set[str]:
    """The documented rule, written independently of DPSStages."""

    def trains(name: str, _: torch.nn.Parameter) -> bool:
        if name.startswith("target_encoder."):
            return False
        if "lora" in name:  # ...lora.A.<i>, ...up_lora.theta.<i>: adapter i
            index = int(name.rsplit(".", 1)[1])
            return stage >= 1 and index == stage - 1
        return stage == 0 or not name.startswith(("encoder.", "transformer."))

    return names_where(model, trains)


def optimizer_names(model: WorldModel, optimizer: torch.optim.Optimizer) -> set[str]:
    ids = {id(p) for g in optimizer.param_groups for p in g["params"]}
    return names_where(model, lambda _, p: id(p) in ids)


def train(model: WorldModel, optimizer: torch.optim.Optimizer, tasks: TaskSet, steps: int):
    for i in range(steps):
        losses = model.losses(random_batch(tasks, IDS, steps=3, seed=i))
        optimizer.zero_grad()
        losses.total().backward()
        optimizer.step()


def test_each_stage_trains_exactly_its_parameters(model: WorldModel, tasks: TaskSet) -> None:
    dps = DPSStages(model)
    assert dps.num_stages == 1 + model.cfg.lora_count
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    dps.set_stage(0, optimizer)
    for stage in range(dps.num_stages):
        if stage:
            dps.set_stage(stage, optimizer)
        want = intended(model, stage)
        assert names_where(model, lambda _, p: p.requires_grad) == want
        assert optimizer_names(model, optimizer) == want
        assert all(b.active == stage for b in model.modules() if isinstance(b, LoRABank))
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        train(model, optimizer, tasks, steps=3)  # B starts at 0: A moves from step 2 on
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
        assert changed <= want, f"frozen parameters changed: {sorted(changed - want)[:5]}"
        adapters = {n for n in want if "lora" in n}
        assert adapters <= changed, f"adapters did not train: {sorted(adapters - changed)[:5]}"
        assert "value_head.w2" in changed  # heads train at every stage


def test_state_of_still_training_parameters_is_kept(model: WorldModel, tasks: TaskSet) -> None:
    dps = DPSStages(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dps.set_stage(0, optimizer)  # drops the adapters and the EMA target from the optimizer
    train(model, optimizer, tasks, steps=1)
    head = model.value_head.w2
    moment = optimizer.state[head]["exp_avg"].clone()
    backbone = model.transformer.blocks[0].attn.q.base.weight
    dps.set_stage(1, optimizer)
    torch.testing.assert_close(optimizer.state[head]["exp_avg"], moment)
    assert backbone not in optimizer.state
    assert optimizer.param_groups[-1]["name"] == "dps_stage_1"


def test_adapter_scales_stay_bounded(model: WorldModel) -> None:
    bank = model.transformer.blocks[0].attn.q.lora
    with torch.no_grad():
        bank.theta[0].fill_(100.0)
        bank.theta[1].fill_(-100.0)
    assert 0.8 - 1e-6 <= bank.scale(1) < bank.scale(0) <= 1.2 + 1e-6


def test_bad_stage_is_rejected(model: WorldModel) -> None:
    with pytest.raises(ValueError, match="DPS stage"):
        DPSStages(model).set_stage(model.cfg.lora_count + 1)

"""AdaMerging, layer-wise (Yang et al. 2024): one coefficient per expert and per layer, learned
by minimising the entropy of the merged model's predictions on unlabeled observations.

``theta_layer = base_layer + sum_e lambda[e, layer] * tau_e,layer`` over the shared parameters
(per-task ones come from their owners, as in every merge). The unlabeled observations are
each task's stored rows from its owner's checkpoint (its replay snapshot), encoded at the root
as acting encodes them. The objective per row is the entropy of the value distribution (every
task kind predicts one, as a classifier predicts its classes: the paper's case) plus, on
discrete and text rows, the entropy of the policy prior; the mean is taken per task, then over
tasks, so a task with more stored rows does not weigh more. Continuous rows contribute no
policy term: the Gaussian's entropy depends on its log-std alone, and minimising it would
reward collapsing exploration, not agreeing with the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from mtrl.agents.reanalyse import stored_observations
from mtrl.agents.replay import ReplayConfig, TaskReplay
from mtrl.envs.batch import ObsBatch
from mtrl.runtime.replay_shard import restore_snapshot
from mtrl.world_models import Prediction, WorldModel
from mtrl.world_models.types import LatentState, TaskGroups, observations_from_batch

if TYPE_CHECKING:
    from mtrl.runtime.merge import Inputs, MergeConfig

Tensors = dict[str, torch.Tensor]


def layer_of(key: str) -> str:
    """The layer a parameter belongs to: up to its first block index
    (``transformer.blocks.3.attn.qkv.weight`` -> ``transformer.blocks.3``), else its first two
    names (``encoder.text.bag.weight`` -> ``encoder.text``)."""
    parts = key.split(".")
    for i, name in enumerate(parts):
        if name.isdigit():
            return ".".join(parts[: i + 1])
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


class _Roots(nn.Module):
    """``functional_call`` runs ``forward``: this one is the model's root inference, computed
    as a length-1 sequence (the same numbers as ``initial_inference``, whose KV-cache writes
    happen in place and so cannot be differentiated)."""

    def __init__(self, model: WorldModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: ObsBatch) -> Prediction:
        model = self.model
        obs = observations_from_batch(batch, model.device)
        groups = TaskGroups.of(obs.task_ids)
        latent = model.encode(obs)
        commands, command_mask = model.commands(obs)
        h, _ = model.transformer(model.token(latent, groups)[:, None])
        cache = model.transformer.empty_cache(obs.size, model.device, latent.dtype)
        state = LatentState(cache, latent, commands, command_mask, groups)
        return model.predict(h[:, 0], state, reward_logits=None)


def adamerging(
    model: WorldModel,
    state: Tensors,
    base: Tensors,
    deltas: list[Tensors],
    inputs: Inputs,
    config: MergeConfig,
) -> Tensors:
    """The merged shared parameters with learned coefficients (``state`` holds the rest)."""
    layers = sorted({layer_of(k) for k in base})
    which = {k: layers.index(layer_of(k)) for k in base}
    coeffs = torch.full((len(deltas), len(layers)), config.ada_init, requires_grad=True)
    optimiser = torch.optim.Adam([coeffs], lr=config.ada_lr)
    replays = task_replays(model, inputs)
    rng = np.random.default_rng(config.seed)
    roots, fixed = (
        _Roots(model.eval()),
        {f"model.{k}": v for k, v in state.items() if k not in base},
    )

    def merged() -> Tensors:
        return {
            k: base[k].float() + sum(coeffs[e, which[k]] * d[k] for e, d in enumerate(deltas))
            for k in base
        }

    for _ in range(config.ada_steps):
        obs = sample_roots(model, replays, config.ada_rows, rng)
        params = {**fixed, **{f"model.{k}": v for k, v in merged().items()}}
        loss = prediction_entropy(functional_call(roots, params, (obs,)), model, obs)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            coeffs.clamp_(0.0, 1.0)
    with torch.no_grad():
        return {k: v.to(base[k].dtype) for k, v in merged().items()}


def task_replays(model: WorldModel, inputs: Inputs) -> dict[int, TaskReplay]:
    """Each task's stored rows, from its owner's replay snapshot."""
    replays = {}
    for task, spec in enumerate(model.tasks.specs):
        index = inputs.owner[spec.id]
        snapshot = inputs.experts[index]["replay"].get(spec.id)
        if not snapshot or int(snapshot["rows"]) == 0:
            raise ValueError(
                f"adamerging needs observations of {spec.id}, but expert {inputs.paths[index]} "
                "holds no replay rows of it (was replay_snapshot_rows 0?)"
            )
        replay = TaskReplay(spec, ReplayConfig(capacity=int(snapshot["rows"])))
        restore_snapshot(replay, snapshot)
        replays[task] = replay
    return replays


def sample_roots(
    model: WorldModel, replays: dict[int, TaskReplay], rows: int, rng: np.random.Generator
) -> ObsBatch:
    picks: list[tuple[int, Any, np.ndarray]] = []
    for task, replay in replays.items():
        first = replay.total_added - len(replay)
        picks.append((task, replay, first + rng.integers(0, len(replay), size=rows)))
    return stored_observations(picks, model.tasks)


def prediction_entropy(pred: Prediction, model: WorldModel, obs: ObsBatch) -> torch.Tensor:
    """Mean over tasks of the mean per-row entropy (value distribution, and policy prior on
    discrete and text rows)."""
    value = torch.distributions.Categorical(logits=pred.value_logits.float()).entropy()
    policy = torch.distributions.Categorical(logits=pred.policy_logits.float()).entropy()
    task = torch.as_tensor(obs.task_ids, device=value.device)
    continuous = torch.tensor([s.action.is_continuous for s in model.tasks.specs])[task.cpu()]
    per_row = value + torch.where(continuous.to(value.device), 0.0, policy)
    count = len(model.tasks)
    sums = torch.zeros(count, device=value.device).index_add(0, task, per_row)
    rows = torch.zeros(count, device=value.device).index_add(0, task, torch.ones_like(per_row))
    present = rows > 0
    return (sums[present] / rows[present]).mean()

"""The learning step: per-task unrolled losses, conflict-aware aggregation, clipping, AdamW.

Value targets bootstrap from a *target network*: a full copy of the world model that follows
the online one by an exponential moving average (``target_tau`` per update); the model's own
momentum encoder (next-latent targets) is stepped as well. The MoE balance loss is one shared
term: each present task carries an equal share of it, so the per-task losses still sum to the
model's ``Losses.total``. With DPS, a stage change edits the optimizer in place (state of
still-training parameters kept) and re-splits shared/task-specific parameters.

Batch policy ``by_need``: a task's share of each batch follows its recent loss (an exponential
moving average of its per-task loss; the value, reward and policy terms are cross-entropies in
nats, so they compare across tasks), bounded to ``NEED_BOUNDS`` times the equal share so that
no task floods the batch or starves. A task the learner has not seen yet counts as average.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from mtrl.agents.acting import BatchedActor
from mtrl.agents.batching import TaskSample, bootstrap_values, unrolled_batch
from mtrl.agents.gradients import (
    GradientConfig,
    MultiTaskUpdate,
    SamConfig,
    by_prefix,
    split_parameters,
)
from mtrl.agents.gradients.update import ReduceFn
from mtrl.agents.reanalyse import reanalyse
from mtrl.agents.replay import ReplayConfig, batch_sizes
from mtrl.agents.seams import SampleSource
from mtrl.envs.batch import TaskSet
from mtrl.world_models import DPSStages, UnrolledBatch, WorldModel
from mtrl.world_models.losses import COMPONENTS

DEFAULT_LOSS_WEIGHTS = (
    ("value", 0.5),
    ("reward", 1.0),
    ("policy", 1.0),
    ("latent", 10.0),
    ("end", 1.0),
    ("q", 0.5),  # as the value's: the same targets
)
NEED_BOUNDS = (0.5, 2.0)  # by_need: a task's weight relative to the equal share
NEED_TAU = 0.02  # by_need: EMA rate of the per-task loss per update (~50 updates)


@dataclass(frozen=True)
class LearnerConfig:
    batch_size: int = 64  # sequences per update, over all tasks
    batch_policy: str = "equal"  # or "by_need": in proportion to per-task need weights
    lr: float = 1e-4  # ScaleZero / UniZero: AdamW 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    target_tau: float = 0.01  # EMA rate of the value target network per update
    loss_weights: tuple[tuple[str, float], ...] = DEFAULT_LOSS_WEIGHTS
    shared_prefixes: tuple[str, ...] = ("encoder.", "transformer.")
    gradients: GradientConfig = field(default_factory=GradientConfig)
    # Task-based SAM (mtrl.agents.gradients.sam): off at rho 0; one more forward and backward
    # per present task and update when on.
    sam: SamConfig = field(default_factory=SamConfig)
    # Autocast the forward pass to bfloat16. None: on when the learner's model is on a CUDA
    # device, off on CPUs (most have no bf16 units: ~6x slower matmuls on the 2-core dev box).
    bf16: bool | None = None
    # Of each task's sequences: fresh search policies from the current model. Off by default:
    # 0.5 doubled SpaceInvaders' greedy return at 25k env steps on seed 0 but not on seeds 1-2
    # (bench/learning.md, sessions 21-22).
    reanalyse_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_policy not in ("equal", "by_need"):
            raise ValueError(f"unknown batch_policy {self.batch_policy!r}; valid: equal, by_need")
        unknown = sorted({name for name, _ in self.loss_weights} - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown loss_weights {unknown}; valid: {', '.join(COMPONENTS)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.reanalyse_fraction <= 1.0:
            raise ValueError(f"reanalyse_fraction must be in [0, 1], got {self.reanalyse_fraction}")


class Learner:
    """``reduce_fn`` (e.g. ``all_reduce_mean``): data parallelism, see ``MultiTaskUpdate``.
    Every rank then holds the same all-reduced gradients before clipping (so the global norm
    and the optimizer step agree) and applies the same update."""

    def __init__(
        self,
        model: WorldModel,
        tasks: TaskSet,
        config: LearnerConfig,
        sampled_actions: int,
        reduce_fn: ReduceFn | None = None,
        discounts: torch.Tensor | None = None,
    ) -> None:
        self.model, self.tasks, self.config = model, tasks, config
        # Per task [num_tasks], for the value-gradient policy term (replay's default otherwise).
        self.discounts = (
            ReplayConfig().discounts(tasks.specs) if discounts is None else discounts.float()
        ).to(model.device)
        self.bf16 = config.bf16 if config.bf16 is not None else model.device.type == "cuda"
        self.sampled_actions, self.reduce_fn = sampled_actions, reduce_fn
        self.target = copy.deepcopy(model).requires_grad_(False).eval()
        self.dps = DPSStages(model)
        self.dps.set_stage(0)
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            trainable, lr=config.lr, weight_decay=config.weight_decay
        )
        self.updates = 0
        self.loss_ema = torch.full((len(tasks),), math.nan)  # by_need's per-task loss EMA
        self._build_update()

    def _build_update(self) -> None:
        split = split_parameters(self.model, by_prefix(*self.config.shared_prefixes))
        names = list(self.tasks.names)
        self.update = MultiTaskUpdate.from_config(
            split, names, self.config.gradients, self.reduce_fn, sam=self.config.sam
        )

    def set_stage(self, stage: int) -> None:
        """Move DPS to ``stage`` (optimizer edited in place, target network follows)."""
        self.dps.set_stage(stage, self.optimizer)
        self.target.set_active_adapters(self.model.active_adapters)
        aggregator_state = self.update.aggregator.state_dict()
        self._build_update()
        self.update.aggregator.load_state_dict(aggregator_state)

    def sample(
        self,
        replays: Mapping[int, SampleSource],
        rng: np.random.Generator,
        need: Mapping[int, float] | None = None,
        actor: BatchedActor | None = None,
    ) -> UnrolledBatch:
        """One batch over the tasks in ``replays`` (only tasks still trained should be there);
        with ``actor`` and ``reanalyse_fraction`` > 0, part of its policies are recomputed."""
        return self.assemble(self.draw(replays, rng, need), actor)

    def draw(
        self,
        replays: Mapping[int, SampleSource],
        rng: np.random.Generator,
        need: Mapping[int, float] | None = None,
    ) -> list[TaskSample]:
        """The sequences of one batch, per task (rows laid out in this order by ``assemble``)."""
        ids = [t for t in sorted(replays) if len(replays[t])]
        if not ids:
            raise ValueError("no task has replay data to learn from")
        weights = None
        if self.config.batch_policy == "by_need":
            weights = self.need_weights(ids) if need is None else {t: need[t] for t in ids}
        sizes = batch_sizes(self.config.batch_size, ids, weights)
        return [
            TaskSample(t, replays[t], replays[t].sample(sizes[t], rng)) for t in ids if sizes[t] > 0
        ]

    def need_weights(self, ids: list[int]) -> dict[int, float]:
        """``by_need``'s weight per task of ``ids``: its loss EMA over their mean, bounded."""
        ema = self.loss_ema[ids]
        known = ema[~ema.isnan()]
        if not known.numel():
            return {t: 1.0 for t in ids}
        ratio = ema.nan_to_num(float(known.mean())) / known.mean().clamp(min=1e-8)
        return dict(zip(ids, ratio.clamp(*NEED_BOUNDS).tolist(), strict=True))

    def assemble(
        self, samples: list[TaskSample], actor: BatchedActor | None = None
    ) -> UnrolledBatch:
        """The training batch of ``samples``: reanalysed in part (see ``sample``), bootstrap
        values from the target network."""
        if actor is not None and self.config.reanalyse_fraction > 0:
            samples = reanalyse(actor, samples, self.config.reanalyse_fraction, seed=self.updates)
        values = bootstrap_values(self.target, self.tasks, samples)
        return unrolled_batch(self.tasks, samples, values, self.sampled_actions)

    def losses(self, batch: UnrolledBatch) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Per-task losses [num_tasks] (balance share included), which tasks are in the batch
        [num_tasks] bool, and the loss parts for logging."""
        return self._losses(batch)[:3]

    def _losses(
        self, batch: UnrolledBatch
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float], torch.Tensor]:
        """``losses`` plus each row's replay priority [B] (CPU, no gradient)."""
        device_type = self.model.device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
            parts = self.model.losses(batch, self.target, self.discounts)
        per_task = parts.per_task(dict(self.config.loss_weights)).float()
        present = parts.present.float()
        share = parts.balance_coef * parts.moe_balance.float() / present.sum().clamp(min=1)
        per_task = per_task + share * present
        with torch.no_grad():
            logs = {
                f"loss/{name}": float((getattr(parts, name) * present).sum() / present.sum())
                for name in COMPONENTS
            }
        logs["loss/moe_balance"] = float(parts.moe_balance.detach())
        for task, loss in zip(self.tasks.names, per_task.detach().tolist(), strict=True):
            logs[f"loss/task/{task}"] = loss
        return per_task, parts.present, logs, parts.priority.cpu()

    def train_step(self, batch: UnrolledBatch) -> dict[str, float | torch.Tensor]:
        """One update. Besides float metrics: ``"priorities"`` [B], each row's new replay
        priority (value error at its first step), in the batch's row order."""
        self.model.train()
        per_task, present, logs, priorities = self._losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        # Absent tasks (solved, or no data yet) must not look like tasks with loss 0 to
        # loss-balancing aggregators (FAMO, GradNorm, uncertainty weighting).
        closure = (lambda: self._losses(batch)[0]) if self.config.sam.enabled else None
        conflict = self.update.backward(per_task, present=present, closure=closure)
        params = [p for p in self.model.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.optimizer.step()
        self._follow_target()
        self._follow_losses(per_task.detach().cpu(), present.cpu())
        self.updates += 1
        return {
            **logs,
            **conflict,
            "learner/grad_norm": float(grad_norm),
            "learner/updates": float(self.updates),
            "priorities": priorities,
        }

    def _follow_losses(self, per_task: torch.Tensor, present: torch.Tensor) -> None:
        seen = present & self.loss_ema.isnan()
        self.loss_ema[seen] = per_task[seen]
        rest = present & ~seen
        self.loss_ema[rest] = self.loss_ema[rest].lerp(per_task[rest], NEED_TAU)

    @torch.no_grad()
    def _follow_target(self) -> None:
        self.model.update_target()
        for target, online in zip(self.target.parameters(), self.model.parameters(), strict=True):
            target.lerp_(online, self.config.target_tau)

    def state_dict(self) -> dict:
        return {
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "aggregator": self.update.aggregator.state_dict(),
            "dps": self.dps.state_dict(),
            "updates": self.updates,
            "loss_ema": self.loss_ema.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.set_stage(int(state["dps"]["stage"]))
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.update.aggregator.load_state_dict(state["aggregator"])
        self.updates = int(state["updates"])
        if "loss_ema" in state:  # checkpoints from before by_need's EMA start it afresh
            self.loss_ema = state["loss_ema"].clone()

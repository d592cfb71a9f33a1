"""``MultiTaskUpdate``: per-task losses in, ``.grad`` of every parameter filled, metrics out.

Use (the agent clips and steps afterwards)::

    split = split_parameters(model, by_prefix("encoder.", "transformer.", "embed."))
    update = MultiTaskUpdate.from_config(split, task_names, GradientConfig(aggregator="upgrad"))
    optimizer.zero_grad()
    metrics = update.backward({"pong": loss_pong, "breakout": loss_breakout})
    clip_grad_norm_(model.parameters(), 5.0); optimizer.step()

With a gradient-based aggregator, shared parameters get the aggregator's update and
task-specific ones the ordinary gradient of the summed loss. A loss-based aggregator (sum,
mean, FAMO, uncertainty) defines the training objective itself, so every parameter, heads
included, gets the gradient of its combined scalar, as in those papers.

Cost: gradient-based aggregators need the per-task Jacobian on the shared parameters
(``jacobian.task_jacobian``: one vmapped backward); loss-based ones need one plain backward and
pay for the Jacobian only on the updates that log conflict metrics.

DDP: the gradients are taken with ``torch.autograd.grad``, which does not fire DDP's reducer,
so run the forward and this backward inside ``ddp_model.no_sync()`` and pass
``reduce_fn=all_reduce_mean``. Before aggregating, the update then all-reduces the present-task
mask (a task is present if any rank has it), the per-task loss values, the per-task Jacobian
``[T, n]`` and the remaining gradients (means), so every rank aggregates the same global
per-task gradients and its stateful aggregator (FAMO, MoCo, GradNorm, uncertainty) stays
identical across ranks; PCGrad's random order needs the same torch seed on every rank.
The price is ``T`` times the usual all-reduce volume for gradient-based aggregators; the
cheaper alternative (aggregate locally, let DDP average the aggregated gradients) aggregates
per-rank noise and is not what this code does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from mtrl.agents.gradients.base import Aggregator, GradientAggregator, LossAggregator
from mtrl.agents.gradients.config import GradientConfig
from mtrl.agents.gradients.jacobian import (
    ParameterSplit,
    accumulate_flat,
    flatten_grads,
    task_jacobian,
)
from mtrl.agents.gradients.metrics import conflict_metrics, metrics_to_log_dict
from mtrl.agents.gradients.registry import build_aggregator
from mtrl.agents.gradients.sam import SamConfig, ascent_steps, perturbed

ReduceFn = Callable[[Tensor], Tensor]
LogDict = dict[str, float | Tensor]
Closure = Callable[[], Tensor]  # the per-task losses [T] again, at the current parameters


def all_reduce_mean(tensor: Tensor) -> Tensor:
    """Averages ``tensor`` over the default process group (identity when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    reduced = tensor.contiguous().clone()
    dist.all_reduce(reduced, op=dist.ReduceOp.SUM)
    return reduced / dist.get_world_size()


class MultiTaskUpdate:
    """Fills ``.grad`` from per-task losses with a conflict-aware aggregator; returns metrics."""

    def __init__(
        self,
        shared_params: Sequence[nn.Parameter],
        specific_params: Sequence[nn.Parameter],
        aggregator: Aggregator,
        task_names: Sequence[str],
        *,
        metrics_every: int = 1,
        jacobian_chunk_size: int | None = None,
        reduce_fn: ReduceFn | None = None,
        sam: SamConfig | None = None,
    ) -> None:
        self.shared = tuple(shared_params)
        self.specific = tuple(specific_params)
        self.task_names = tuple(task_names)
        _check_setup(self.shared, self.specific, self.task_names, aggregator)
        self.aggregator = aggregator
        self.metrics_every = metrics_every
        self.jacobian_chunk_size = jacobian_chunk_size
        self.reduce_fn = reduce_fn
        self.sam = sam or SamConfig()
        self.num_updates = 0

    @classmethod
    def from_config(
        cls,
        split: ParameterSplit,
        task_names: Sequence[str],
        config: GradientConfig,
        reduce_fn: ReduceFn | None = None,
        sam: SamConfig | None = None,
    ) -> MultiTaskUpdate:
        return cls(
            split.shared,
            split.specific,
            build_aggregator(config, len(task_names)),
            task_names,
            metrics_every=config.metrics_every,
            jacobian_chunk_size=config.jacobian_chunk_size,
            reduce_fn=reduce_fn,
            sam=sam,
        )

    def backward(
        self,
        losses: Mapping[str, Tensor] | Tensor,
        present: Tensor | None = None,
        closure: Closure | None = None,
    ) -> LogDict:
        """Accumulates into ``.grad`` (like ``loss.backward()``) and frees the graph.

        ``present`` (bool ``[T]``, default all): tasks absent from this batch are left out of
        the aggregation, the metrics and the aggregator's state; their losses are ignored.
        ``closure`` recomputes the losses; task-based SAM (``sam.rho > 0``) needs it.
        """
        vector = self._global_values(self.stack_losses(losses))
        mask = self._global_mask(self.aggregator.resolve_mask(present, vector.device))
        log_now = self.metrics_every > 0 and self.num_updates % self.metrics_every == 0
        self.num_updates += 1
        if self.sam.enabled:
            if closure is None:
                raise ValueError("task-based SAM needs a closure that recomputes the losses")
            return self._sam_backward(vector, mask, closure, log_now)
        if isinstance(self.aggregator, GradientAggregator):
            jacobian = self._jacobian(vector[mask])
            update = self.aggregator.aggregate(jacobian, vector.detach(), mask)
            accumulate_flat(self.shared, update)
            if self.specific:
                self._grad_into(vector[mask].sum(), self.specific)
        else:
            jacobian = self._jacobian(vector[mask]) if log_now else None
            assert isinstance(self.aggregator, LossAggregator)
            combined = self.aggregator.aggregate(vector, mask)
            self._grad_into(combined, self.shared + self.specific)
        if jacobian is None or not log_now:
            return {}
        names = [n for n, keep in zip(self.task_names, mask.tolist(), strict=True) if keep]
        weights = self.aggregator.last_weights
        return metrics_to_log_dict(
            conflict_metrics(jacobian), names, None if weights is None else weights[mask]
        )

    def _sam_backward(
        self, vector: Tensor, mask: Tensor, closure: Closure, log_now: bool
    ) -> LogDict:
        """Each present task's gradient at its own ascent point, then the aggregator."""
        moved = self.shared if self.sam.params == "shared" else self.shared + self.specific
        everything = self.shared + self.specific
        at_theta = self._reduce(
            task_jacobian(vector[mask], moved, self.jacobian_chunk_size, retain_graph=True)
        )
        weights = None
        if isinstance(self.aggregator, LossAggregator):
            combined = self.aggregator.aggregate(vector, mask)
            weights = torch.autograd.grad(combined, vector)[0].detach()  # d combined / d L_t
        else:
            vector = vector.detach()  # the forward at theta is no longer needed
        steps = ascent_steps(at_theta, moved, self.sam)
        rows = []
        for step, task in zip(steps, mask.nonzero()[:, 0].tolist(), strict=True):
            with perturbed(moved, step):
                loss = self.stack_losses(closure())[task]
                grads = torch.autograd.grad(loss, everything, allow_unused=True)
            rows.append(flatten_grads(grads, everything, rows=1)[0])
        per_task = self._reduce(torch.stack(rows))  # [T present, n shared + n specific]
        shared_size = sum(p.numel() for p in self.shared)
        if weights is None:
            assert isinstance(self.aggregator, GradientAggregator)
            update = self.aggregator.aggregate(per_task[:, :shared_size], vector, mask)
            accumulate_flat(self.shared, update)
            if self.specific:
                accumulate_flat(self.specific, per_task[:, shared_size:].sum(0))
        else:
            accumulate_flat(everything, (weights[mask][:, None] * per_task).sum(0))
        if not log_now:
            return {}
        names = [n for n, keep in zip(self.task_names, mask.tolist(), strict=True) if keep]
        shared_rows = at_theta[:, :shared_size]
        last = self.aggregator.last_weights
        return metrics_to_log_dict(
            conflict_metrics(shared_rows), names, None if last is None else last[mask]
        )

    def observe_losses_after_step(
        self, losses: Mapping[str, Tensor] | Tensor, present: Tensor | None = None
    ) -> None:
        """Optional: the same batch's losses after the optimizer step (FAMO's weight update)."""
        with torch.no_grad():
            vector = self._reduce(self.stack_losses(losses).detach())
        self.aggregator.observe_losses_after_step(vector, present)

    def stack_losses(self, losses: Mapping[str, Tensor] | Tensor) -> Tensor:
        """``[T]`` losses in ``task_names`` order; names and shapes are checked."""
        if isinstance(losses, Tensor):
            if losses.shape != (len(self.task_names),):
                raise ValueError(
                    f"expected {len(self.task_names)} task losses {list(self.task_names)}, "
                    f"got a tensor of shape {tuple(losses.shape)}"
                )
            return losses
        missing = [n for n in self.task_names if n not in losses]
        unknown = [n for n in losses if n not in self.task_names]
        if missing or unknown:
            raise ValueError(f"task losses mismatch: missing {missing}, unknown {unknown}")
        for name in self.task_names:
            if losses[name].ndim != 0:
                raise ValueError(
                    f"loss of task {name!r} must be a scalar, got {tuple(losses[name].shape)}"
                )
        return torch.stack([losses[name] for name in self.task_names])

    def state_dict(self) -> dict[str, Tensor]:
        state = {f"aggregator.{k}": v for k, v in self.aggregator.state_dict().items()}
        state["num_updates"] = torch.tensor(self.num_updates, dtype=torch.int64)
        return state

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        if "num_updates" not in state:
            raise KeyError("MultiTaskUpdate state has no 'num_updates'")
        prefix = "aggregator."
        inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        self.aggregator.load_state_dict(inner)
        self.num_updates = int(state["num_updates"])

    def _global_values(self, losses: Tensor) -> Tensor:
        """Losses whose values are the all-ranks mean but whose gradient stays local."""
        if self.reduce_fn is None:
            return losses
        reduced = self._reduce(losses.detach())
        return losses + (reduced - losses.detach())

    def _global_mask(self, mask: Tensor) -> Tensor:
        """Under DDP a task counts as present if any rank has it, so all ranks agree."""
        if self.reduce_fn is None:
            return mask
        return self.reduce_fn(mask.to(torch.float32)) > 0

    def _jacobian(self, losses: Tensor) -> Tensor:
        """Per-task gradients on the shared parameters, all-reduced when distributed."""
        jacobian = task_jacobian(losses, self.shared, self.jacobian_chunk_size, retain_graph=True)
        return self._reduce(jacobian)

    def _reduce(self, tensor: Tensor) -> Tensor:
        return tensor if self.reduce_fn is None else self.reduce_fn(tensor)

    def _grad_into(self, scalar: Tensor, params: Sequence[nn.Parameter]) -> None:
        grads = torch.autograd.grad(scalar, params, allow_unused=True)
        if self.reduce_fn is not None:
            # Every rank must send the same layout, so unused parameters send zeros.
            flat = self.reduce_fn(flatten_grads(grads, params, rows=1)[0])
            accumulate_flat(params, flat)
            return
        for param, grad in zip(params, grads, strict=True):
            if grad is None:
                continue
            if param.grad is None:
                param.grad = grad.detach().clone()
            else:
                param.grad.add_(grad)


def _check_setup(
    shared: tuple[nn.Parameter, ...],
    specific: tuple[nn.Parameter, ...],
    task_names: tuple[str, ...],
    aggregator: Aggregator,
) -> None:
    if not shared:
        raise ValueError("MultiTaskUpdate needs at least one shared parameter, got none")
    overlap = {id(p) for p in shared} & {id(p) for p in specific}
    if overlap:
        raise ValueError(f"{len(overlap)} parameters are both shared and task-specific")
    if len(set(task_names)) != len(task_names) or not task_names:
        raise ValueError(f"task names must be unique and non-empty, got {list(task_names)}")
    if not isinstance(aggregator, GradientAggregator | LossAggregator):
        raise TypeError(
            f"aggregator must be a GradientAggregator or LossAggregator, "
            f"got {type(aggregator).__name__}"
        )
    if aggregator.num_tasks != len(task_names):
        raise ValueError(
            f"aggregator {aggregator.name!r} was built for {aggregator.num_tasks} tasks, "
            f"got {len(task_names)} task names"
        )

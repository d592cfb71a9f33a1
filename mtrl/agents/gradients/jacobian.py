"""Which parameters are shared, and the per-task Jacobian of the losses on them.

The Jacobian comes from one forward: ``torch.autograd.grad(losses, shared, grad_outputs=I_T,
is_grads_batched=True)`` is a single vmapped backward whose ``T`` rows are the task gradients
(autograd prunes every branch that does not reach a shared parameter). Its cost is about ``T``
backward passes of arithmetic but one graph walk, and it can be chunked to bound memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

ParamSelector = Callable[[str, nn.Parameter], bool]


@dataclass(frozen=True)
class ParameterSplit:
    """Shared parameters (aggregated across tasks) and the rest (task-specific: summed loss)."""

    shared: tuple[nn.Parameter, ...]
    specific: tuple[nn.Parameter, ...]
    shared_names: tuple[str, ...]
    specific_names: tuple[str, ...]


def by_prefix(*prefixes: str) -> ParamSelector:
    """Selector for parameters whose qualified name starts with any of ``prefixes``."""
    if not prefixes:
        raise ValueError("by_prefix needs at least one prefix")
    return lambda name, _param: name.startswith(prefixes)


def by_module(model: nn.Module, *modules: nn.Module) -> ParamSelector:
    """Selector for the parameters of the given submodules of ``model``."""
    ids = {id(p) for module in modules for p in module.parameters()}
    if not ids:
        raise ValueError("by_module got modules without parameters")
    return lambda _name, param: id(param) in ids


def split_parameters(model: nn.Module, is_shared: ParamSelector) -> ParameterSplit:
    """Splits trainable parameters of ``model``; raises if none or all are shared by mistake."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    shared = [(n, p) for n, p in named if is_shared(n, p)]
    specific = [(n, p) for n, p in named if not is_shared(n, p)]
    if not shared:
        sample = ", ".join(n for n, _ in named[:8])
        raise ValueError(f"no shared parameters selected; trainable parameters start: {sample}")
    return ParameterSplit(
        shared=tuple(p for _, p in shared),
        specific=tuple(p for _, p in specific),
        shared_names=tuple(n for n, _ in shared),
        specific_names=tuple(n for n, _ in specific),
    )


def flatten_grads(grads: Sequence[Tensor | None], params: Sequence[Tensor], rows: int) -> Tensor:
    """Concatenates per-parameter ``[rows, *shape]`` grads into ``[rows, n]`` (None -> zeros)."""
    pieces = []
    for grad, param in zip(grads, params, strict=True):
        if grad is None:
            pieces.append(param.new_zeros(rows, param.numel()))
        else:
            pieces.append(grad.reshape(rows, param.numel()))
    return torch.cat(pieces, dim=1)


def task_jacobian(
    losses: Tensor,
    params: Sequence[Tensor],
    chunk_size: int | None = None,
    retain_graph: bool = True,
) -> Tensor:
    """``[T, n]`` gradients of each loss on ``params`` (flattened and concatenated)."""
    if losses.ndim != 1:
        raise ValueError(f"losses must be a [T] vector, got shape {tuple(losses.shape)}")
    num_tasks = losses.shape[0]
    chunk = num_tasks if chunk_size is None else chunk_size
    eye = torch.eye(num_tasks, dtype=losses.dtype, device=losses.device)
    rows = []
    for start in range(0, num_tasks, chunk):
        block = eye[start : start + chunk]
        last = start + chunk >= num_tasks
        keep = retain_graph or not last
        if block.shape[0] == 1:
            grads = torch.autograd.grad(
                losses, params, grad_outputs=block[0], retain_graph=keep, allow_unused=True
            )
            grads = tuple(None if g is None else g.unsqueeze(0) for g in grads)
        else:
            grads = torch.autograd.grad(
                losses,
                params,
                grad_outputs=block,
                retain_graph=keep,
                allow_unused=True,
                is_grads_batched=True,
            )
        rows.append(flatten_grads(grads, params, block.shape[0]))
    return torch.cat(rows, dim=0)


def accumulate_flat(params: Iterable[nn.Parameter], flat: Tensor) -> None:
    """Adds a flat update into ``.grad`` of ``params`` the way ``backward`` accumulates."""
    offset = 0
    for param in params:
        size = param.numel()
        piece = flat[offset : offset + size].view_as(param).to(param.dtype)
        offset += size
        if param.grad is None:
            param.grad = piece.clone()
        else:
            param.grad.add_(piece)
    if offset != flat.numel():
        raise ValueError(f"update has {flat.numel()} entries, parameters have {offset}")

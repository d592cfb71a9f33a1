"""The batched search loop: one model call per simulation for all trees of all tasks."""

from __future__ import annotations

import torch

from mtrl.search.backends import TreeBackend, make_backend, resolve_backend
from mtrl.search.summary import summarize
from mtrl.search.tree import Tree, init_tree
from mtrl.search.types import ModelOutput, RecurrentFn, RootInput, SearchConfig, SearchOutput


def search(
    root: RootInput,
    recurrent_fn: RecurrentFn,
    config: SearchConfig,
    *,
    seed: int = 0,
    backend: str | None = None,
) -> SearchOutput:
    """Run config.num_simulations simulations on B trees at once.

    ``backend`` overrides ``config.backend``. The random draws (Dirichlet and Gumbel noise) come
    from ``seed`` and are made before the loop, so every backend sees the same noise. The
    model's output is checked in full on the first simulation (the C++ backend also checks
    sizes and dtypes on every call).
    """
    name = resolve_backend(backend or config.backend, root.prior_logits.device)
    generator = torch.Generator().manual_seed(seed)
    tree = init_tree(root, config, generator)
    kernels = make_backend(name, tree, config)
    run_simulations(kernels, tree, recurrent_fn, config)
    # A backend may summarise natively (the C++ one does Gumbel's root summary in one call);
    # the torch summary is the reference for all.
    native_summary = getattr(kernels, "summarize", None)
    return native_summary() if native_summary is not None else summarize(tree, config)


def run_simulations(
    kernels: TreeBackend, tree: Tree, recurrent_fn: RecurrentFn, config: SearchConfig
) -> None:
    """The S simulations: select, one model call for all trees, expand and back up. Nothing
    here reads a device value, so on a GPU the loop can be captured in a CUDA graph."""
    for sim in range(config.num_simulations):
        parent_embedding, action = kernels.select(sim)
        out = as_model_output(recurrent_fn(parent_embedding, action))
        if sim == 0:
            check_model_output(out, tree.batch_size, tree.num_actions, tree.device)
        kernels.expand_and_backup(sim, out)


def as_model_output(out: ModelOutput | tuple[torch.Tensor, ...]) -> ModelOutput:
    if isinstance(out, ModelOutput):
        return out
    if isinstance(out, tuple) and len(out) in (4, 5):
        return ModelOutput(*out)
    raise TypeError(
        "recurrent_fn must return a ModelOutput or a tuple (prior_logits, value, reward, "
        f"embedding_id[, terminal]), got {type(out).__name__}"
    )


def check_model_output(
    out: ModelOutput, batch: int, num_actions: int, device: torch.device | None = None
) -> None:
    expected = {
        "prior_logits": ((batch, num_actions), torch.float32),
        "value": ((batch,), torch.float32),
        "reward": ((batch,), torch.float32),
        "embedding_id": ((batch,), torch.int64),
        "terminal": ((batch,), torch.bool),
    }
    for name, (shape, dtype) in expected.items():
        tensor = getattr(out, name)
        if tensor is None and name == "terminal":
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"recurrent_fn output {name} must be a torch.Tensor, got {tensor!r}")
        if tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise ValueError(
                f"recurrent_fn output {name} must be {dtype} of shape {shape}, got "
                f"{tensor.dtype} of shape {tuple(tensor.shape)}"
            )
        if device is not None and tensor.device.type != device.type:
            raise ValueError(
                f"recurrent_fn output {name} must be on the roots' device {device}, got "
                f"{tensor.device}"
            )

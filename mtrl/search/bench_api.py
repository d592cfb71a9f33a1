"""A numpy entry point with a fixed signature for benchmarks and outside harnesses.

``search(root_logits, root_values, root_ids, model_fn, num_simulations, ...)`` takes and
returns numpy arrays; ``model_fn(parent_ids [B] int64, actions [B] int64) -> (logits [B, A]
f32, values [B] f32, rewards [B] f32, child_ids [B] int64)``. The arrays handed to model_fn
are views of reused buffers: copy them to keep them past the call.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from mtrl.search.loop import search as run_search
from mtrl.search.types import ALGORITHMS, ModelOutput, RootInput, SearchConfig

NumpyModelFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]


def _tensor(array: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    return tensor if tensor.dtype == dtype else tensor.to(dtype)


def search(
    root_logits: np.ndarray,
    root_values: np.ndarray,
    root_ids: np.ndarray,
    model_fn: NumpyModelFn,
    num_simulations: int,
    *,
    algorithm: str = "muzero",
    discount: float = 0.997,
    pb_c_init: float = 1.25,
    pb_c_base: float = 19652.0,
    max_num_considered_actions: int = 16,
    seed: int = 0,
    search_backend: str = "auto",
) -> dict[str, np.ndarray]:
    """-> {"visit_counts": [B, A] int32 (rows sum to S), "root_value": [B] float32,
    "leaf_depths": [S, B] int32}. ``search_backend`` picks the tree kernels (default auto)."""
    config = SearchConfig(
        algorithm=algorithm,
        num_simulations=num_simulations,
        pb_c_init=pb_c_init,
        pb_c_base=pb_c_base,
        max_num_considered_actions=max_num_considered_actions,
        backend=search_backend,
    )
    root = RootInput(
        prior_logits=_tensor(root_logits, torch.float32),
        value=_tensor(root_values, torch.float32),
        embedding_id=_tensor(root_ids, torch.int64),
        discount=discount,
    )

    def torch_model(parent_ids: torch.Tensor, actions: torch.Tensor) -> ModelOutput:
        logits, values, rewards, child_ids = model_fn(parent_ids.numpy(), actions.numpy())
        return ModelOutput(
            prior_logits=_tensor(logits, torch.float32),
            value=_tensor(values, torch.float32),
            reward=_tensor(rewards, torch.float32),
            embedding_id=_tensor(child_ids, torch.int64),
        )

    out = run_search(root, torch_model, config, seed=seed)
    return {
        "visit_counts": out.visit_counts.numpy(),
        "root_value": out.root_value.numpy(),
        "leaf_depths": out.leaf_depths.numpy(),
    }


search.backend = "numpy"  # type: ignore[attr-defined]
search.algorithms = ALGORITHMS  # type: ignore[attr-defined]

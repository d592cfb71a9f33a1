"""A whole search captured once in a CUDA graph and replayed: one launch for S simulations.

Without a graph each simulation costs two kernel launches plus the model's launches, all issued
from Python. Capturing the S-simulation loop (tree kernels and model together) removes that
per-launch CPU cost. It needs a model with static shapes that never reads a device value back
(no ``.item()``, ``.cpu()``, ``nonzero``); its outputs must depend on the inputs only through
tensor ops, since Python-side state is frozen at capture time.

The tree buffers of the first search are kept and refilled in place for every later search of
the same shape (B, A); a new shape is captured anew.
"""

from __future__ import annotations

import dataclasses

import torch

from mtrl.search.backends import make_backend
from mtrl.search.loop import run_simulations
from mtrl.search.summary import summarize
from mtrl.search.tree import Tree, init_tree
from mtrl.search.types import RecurrentFn, RootInput, SearchConfig, SearchOutput


class GraphedSearch:
    """``GraphedSearch(recurrent_fn, config)(root, seed)`` equals ``search(root, recurrent_fn,
    config, seed=seed, backend="cuda")`` but replays a captured CUDA graph.

    ``warmup`` eager searches run before the capture (on a side stream, as torch requires) so
    that the model's lazy initialisation (cuBLAS handles, workspaces) is not captured. The
    ``tree`` of a returned SearchOutput is the graph's static buffer: valid until the next call.
    """

    def __init__(self, recurrent_fn: RecurrentFn, config: SearchConfig, warmup: int = 1) -> None:
        if config.backend not in ("auto", "cuda"):
            raise ValueError(f"a CUDA graph search runs the 'cuda' backend, not {config.backend!r}")
        self.recurrent_fn = recurrent_fn
        self.config = dataclasses.replace(config, backend="cuda")
        self.warmup = warmup
        self._graph: torch.cuda.CUDAGraph | None = None
        self._tree: Tree | None = None
        self._shape: tuple[int, int, torch.device] | None = None

    def __call__(self, root: RootInput, seed: int = 0) -> SearchOutput:
        if root.prior_logits.device.type != "cuda":
            raise ValueError(
                f"a CUDA graph search needs the roots on a CUDA device, got "
                f"{root.prior_logits.device}"
            )
        fresh = init_tree(root, self.config, torch.Generator().manual_seed(seed))
        shape = (fresh.batch_size, fresh.num_actions, fresh.device)
        if shape != self._shape:
            self._capture(fresh)
            self._shape = shape
        else:
            assert self._tree is not None
            _copy_tree(self._tree, fresh)
        assert self._graph is not None and self._tree is not None
        self._graph.replay()
        return summarize(self._tree, self.config)

    def _run_simulations(self, tree: Tree) -> None:
        run_simulations(
            make_backend("cuda", tree, self.config), tree, self.recurrent_fn, self.config
        )

    def _capture(self, fresh: Tree) -> None:
        initial = _clone_tree(fresh)
        side = torch.cuda.Stream(device=fresh.device)
        side.wait_stream(torch.cuda.current_stream(fresh.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                _copy_tree(fresh, initial)
                self._run_simulations(fresh)
        torch.cuda.current_stream(fresh.device).wait_stream(side)
        _copy_tree(fresh, initial)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._run_simulations(fresh)
        # Capturing records the launches without running them: the tree still holds the
        # initial state, which the first replay starts from.
        self._graph, self._tree = graph, fresh


def _clone_tree(tree: Tree) -> Tree:
    return Tree(**{f.name: getattr(tree, f.name).clone() for f in dataclasses.fields(Tree)})


def _copy_tree(target: Tree, source: Tree) -> None:
    for f in dataclasses.fields(Tree):
        getattr(target, f.name).copy_(getattr(source, f.name))

"""Batched MCTS over the roots of all tasks at once (MuZero pUCT, Gumbel MuZero, sampled).

``search`` runs one search over B trees with a ``[B, N, A]`` struct-of-arrays layout (see
``tree.Tree``); backends ("torch" reference, "cpp" CPU kernels, "cuda" GPU kernels) are
interchangeable behind it and build identical trees. Tasks with fewer actions pad A and pass
masks; each tree has its own discount and min-max value bounds::

    root = RootInput(prior_logits=logits, value=values, embedding_id=ids,     # [B, A], [B], [B]
                     legal_mask=legal, discount=per_task_discount)            # [B, A], [B]
    def recurrent_fn(parent_ids, actions):                                    # [B] int64 each
        return ModelOutput(child_logits, child_values, rewards, child_ids)    # one batched step
    out = search(root, recurrent_fn, SearchConfig(algorithm="gumbel_muzero",
                                                  num_simulations=16))
    out.action, out.action_weights, out.visit_counts, out.root_value

What an algorithm means to its callers (how acting picks the action to play, what evaluation
reports it plays) is ``get_algorithm(config.algorithm)``; callers never compare names.

Continuous actions: ``sampled_search`` (K samples per node). On a GPU, ``GraphedSearch``
replays the whole search as one CUDA graph. Numpy harnesses: ``mtrl.search.bench_api.search``.
"""

from mtrl.search.algorithms import Algorithm, get_algorithm
from mtrl.search.cuda_graph import GraphedSearch
from mtrl.search.loop import search
from mtrl.search.sampled import (
    ContinuousModelOutput,
    ContinuousRecurrentFn,
    SampledOutput,
    SampledRoot,
    sampled_search,
)
from mtrl.search.tree import Tree, init_tree
from mtrl.search.types import (
    ALGORITHMS,
    BACKENDS,
    ModelOutput,
    RecurrentFn,
    RootInput,
    SearchConfig,
    SearchOutput,
)

__all__ = [
    "ALGORITHMS",
    "BACKENDS",
    "Algorithm",
    "ContinuousModelOutput",
    "ContinuousRecurrentFn",
    "GraphedSearch",
    "ModelOutput",
    "RecurrentFn",
    "RootInput",
    "SampledOutput",
    "SampledRoot",
    "SearchConfig",
    "SearchOutput",
    "Tree",
    "get_algorithm",
    "init_tree",
    "sampled_search",
    "search",
]

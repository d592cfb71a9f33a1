"""Acting: one representation call and one batched search over the roots of every task.

Discrete, text and continuous tasks share one tree batch. Continuous roots and nodes search
over K actions sampled from the model's Gaussian policy (Sampled MuZero, Hubert et al. 2021):
with the proposal equal to the policy, the search prior over the K samples is uniform, and the
visit distribution over the samples is the policy target. The tree's action axis is padded to
``max(choices of any discrete/text task, K)``; each row's masks say which entries exist.

The model keeps one latent state per node in a ``NodeStore`` keyed by the node's embedding id
(``sim * B + tree``, roots are ``0 .. B-1``), preallocated for the whole search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.search import (
    ModelOutput,
    RootInput,
    SearchConfig,
    SearchOutput,
    get_algorithm,
    search,
)
from mtrl.world_models import WorldModel
from mtrl.world_models.quantize import Int8Cache
from mtrl.world_models.transformer import KVCache
from mtrl.world_models.types import Actions, LatentState, Prediction, observations_from_batch

MASKED_LOGIT = -1e9  # finite, so softmax over a row never sees only -inf


@dataclass(frozen=True)
class ActingConfig:
    search: SearchConfig = field(
        default_factory=lambda: SearchConfig(algorithm="gumbel_muzero", num_simulations=16)
    )
    sampled_actions: int = 8  # K, for continuous tasks
    # Candidate 0 of every continuous node is the policy's mean instead of a draw: the search
    # can always pick the noise-free action (drawn samples carry the exploration).
    mean_candidate: bool = False
    # CPU search with the transformer's linears in int8 (``mtrl.world_models.quantize``): ~1.5x
    # faster acting on CPUs without bf16 units; rebuilt whenever the weights change.
    int8_inference: bool = False
    # Collection only (temperature > 0): the share of rows that play a uniformly random legal
    # action (continuous rows: one of the K samples) instead of the search's. The search's
    # policy is still what replay stores. Gumbel MuZero explores only as widely as its prior,
    # which can collapse before a sparse reward was ever seen (a text game's last command).
    explore_epsilon: float = 0.0
    discount: float = 0.997  # per-task values come from ``discounts`` in ``act``

    def __post_init__(self) -> None:
        if self.sampled_actions < 1:
            raise ValueError(f"sampled_actions must be >= 1, got {self.sampled_actions}")
        if not 0.0 <= self.explore_epsilon <= 1.0:
            raise ValueError(f"explore_epsilon must be in [0, 1], got {self.explore_epsilon}")


@dataclass(frozen=True)
class ActResult:
    """What acting decided for E environment rows, and the targets replay stores."""

    action_index: np.ndarray  # [E] int64 (discrete/text rows)
    action_vector: np.ndarray  # [E, Da] float32 (continuous rows)
    policy: np.ndarray  # [E, A] float32 search policy over the row's choices / K samples
    sampled: np.ndarray  # [E, K, Da] float32 root samples (continuous rows; zeros elsewhere)
    root_value: np.ndarray  # [E] float32
    # The raw search (trees, visit counts); None when the search ran on a search server,
    # which ships back only the arrays above.
    search: SearchOutput | None = None


class NodeStore:
    """Latent states of every node of one search, preallocated: ``[L, B*N, ...]`` caches."""

    def __init__(self, root: LatentState, nodes_per_tree: int) -> None:
        batch = root.latent.shape[0]
        size = batch * nodes_per_tree
        keys = root.cache.keys
        self.keys = keys.new_zeros((keys.shape[0], size, *keys.shape[2:]))
        self.values = torch.zeros_like(self.keys)
        self.count = root.cache.count.new_zeros(size)
        self.latent = root.latent.new_zeros((size, root.latent.shape[1]))
        self.root = root  # commands and task groups are per tree and never change in a search
        self.write(torch.arange(batch, device=keys.device), root)

    def write(self, ids: torch.Tensor, state: LatentState) -> None:
        self.keys.index_copy_(1, ids, state.cache.keys)
        self.values.index_copy_(1, ids, state.cache.values)
        self.count.index_copy_(0, ids, state.cache.count)
        self.latent.index_copy_(0, ids, state.latent)

    def read(self, ids: torch.Tensor) -> LatentState:
        """States of ``ids``, where ``ids[b]`` is a node of tree ``b`` (row order = trees)."""
        cache = KVCache(self.keys[:, ids], self.values[:, ids], self.count[ids])
        return LatentState(
            cache, self.latent[ids], self.root.commands, self.root.command_mask, self.root.groups
        )


class BatchedActor:
    """Builds roots for a task set and runs the joint search; stateless between calls."""

    def __init__(self, model: WorldModel, tasks: TaskSet, config: ActingConfig) -> None:
        self.model, self.tasks, self.config = model, tasks, config
        self.int8 = Int8Cache(model) if config.int8_inference else None
        specs = tasks.specs
        self.continuous = torch.tensor([s.action.is_continuous for s in specs])
        self.choices = torch.tensor([0 if s.action.is_continuous else s.action.n for s in specs])
        self.text = torch.tensor([s.action.kind == "text" for s in specs])
        k = config.sampled_actions if bool(self.continuous.any()) else 0
        self.width = max(tasks.max_choices, k, 1)
        self.action_dim = max(tasks.max_action_dim, 1)

    @torch.inference_mode()
    def act(
        self,
        obs: ObsBatch,
        discounts: torch.Tensor | None = None,  # [num_tasks]
        temperature: float = 1.0,
        seed: int = 0,
    ) -> ActResult:
        model, k = self._inference_model(), self.config.sampled_actions
        generator = torch.Generator().manual_seed(seed)
        root = model.initial_inference(observations_from_batch(obs, model.device))
        task = root.state.task_ids.cpu()
        continuous = self.continuous[task]
        batch, nodes = task.shape[0], self.config.search.num_simulations + 1
        store = NodeStore(root.state, nodes)
        samples = torch.zeros(batch * nodes, k, self.action_dim)
        samples[:batch] = self._samples(root, k, generator)
        legal = self._root_legal(obs, continuous)
        interior = self._interior(root.state, task, continuous)
        discount = (
            discounts
            if discounts is not None
            else torch.full((len(self.tasks),), self.config.discount)
        )[task]
        root_input = RootInput(
            self._logits(root, continuous),
            root.value.float(),
            torch.arange(batch),
            legal,
            interior,
            discount.float(),
        )
        step = {"sim": 0}

        def recurrent_fn(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
            step["sim"] += 1
            vector = samples[parent, action.clamp(max=k - 1)] * continuous[:, None]
            pred = model.recurrent_inference(store.read(parent), Actions(action.clone(), vector))
            child = step["sim"] * batch + torch.arange(batch)
            store.write(child, pred.state)
            samples[child] = self._samples(pred, k, generator)
            logits = self._logits(pred, continuous)
            return ModelOutput(logits, pred.value.float(), pred.reward.float(), child)

        out = search(root_input, recurrent_fn, self.config.search, seed=seed)
        return self._result(out, samples[:batch], continuous, legal, temperature, generator)

    def _inference_model(self) -> WorldModel:
        return self.model if self.int8 is None else self.int8.get()

    def _samples(self, pred: Prediction, k: int, generator: torch.Generator) -> torch.Tensor:
        if not bool(self.continuous.any()):
            return torch.zeros(pred.value.shape[0], k, self.action_dim)
        drawn = self.model.sample_actions(pred, k, generator).float().cpu()
        if self.config.mean_candidate:
            drawn[:, 0] = pred.mean.float().cpu()  # in bounds already (tanh-scaled), 0-padded
        return torch.nn.functional.pad(drawn, (0, self.action_dim - drawn.shape[-1]))

    def _logits(self, pred: Prediction, continuous: torch.Tensor) -> torch.Tensor:
        batch = pred.value.shape[0]
        logits = torch.full((batch, self.width), MASKED_LOGIT)
        width = min(pred.policy_logits.shape[1], self.width)
        logits[:, :width] = pred.policy_logits[:, :width].float().cpu().clamp(min=MASKED_LOGIT)
        uniform = torch.where(
            torch.arange(self.width) < self.config.sampled_actions, 0.0, MASKED_LOGIT
        )
        return torch.where(continuous[:, None], uniform, logits)

    def _root_legal(self, obs: ObsBatch, continuous: torch.Tensor) -> torch.Tensor:
        legal = torch.zeros(obs.size, self.width, dtype=torch.bool)
        # A copy: arrays from the object store are read-only, which torch warns about.
        legal[:, : obs.legal.shape[1]] = torch.from_numpy(obs.legal[:, : self.width].copy())
        sampled = torch.arange(self.width) < self.config.sampled_actions
        return torch.where(continuous[:, None], sampled, legal)

    def _interior(
        self, state: LatentState, task: torch.Tensor, continuous: torch.Tensor
    ) -> torch.Tensor:
        """Actions that exist below the root: the task's action set (text: root's commands)."""
        interior = torch.arange(self.width) < self.choices[task][:, None]
        mask = state.command_mask.cpu()
        if mask.shape[1]:
            text = self.text[task]
            commands = torch.zeros_like(interior)
            commands[:, : mask.shape[1]] = mask[:, : self.width]
            interior = torch.where(text[:, None], commands, interior)
        sampled = torch.arange(self.width) < self.config.sampled_actions
        return torch.where(continuous[:, None], sampled, interior)

    def _result(
        self,
        out: SearchOutput,
        root_samples: torch.Tensor,
        continuous: torch.Tensor,
        legal: torch.Tensor,
        temperature: float,
        generator: torch.Generator,
    ) -> ActResult:
        choice = select_actions(out, temperature, self.config.search.algorithm, generator)
        if temperature > 0 and self.config.explore_epsilon > 0:
            choice = explore(choice, legal, self.config.explore_epsilon, generator)
        rows = torch.arange(choice.shape[0])
        vector = root_samples[rows, choice.clamp(max=root_samples.shape[1] - 1)]
        vector = vector * continuous[:, None]
        return ActResult(
            action_index=torch.where(continuous, 0, choice).numpy(),
            action_vector=vector[:, : max(self.tasks.max_action_dim, 0)].numpy(),
            policy=out.action_weights.numpy(),
            sampled=(root_samples * continuous[:, None, None]).numpy(),
            root_value=out.root_value.numpy(),
            search=out,
        )


def explore(
    choice: torch.Tensor, legal: torch.Tensor, epsilon: float, generator: torch.Generator
) -> torch.Tensor:
    """``choice`` [B] with each row replaced, with probability ``epsilon``, by a uniformly
    random action among its ``legal`` [B, A] ones."""
    coin = torch.rand(choice.shape[0], generator=generator) < epsilon
    random = torch.multinomial(legal.float(), 1, generator=generator)[:, 0]
    return torch.where(coin, random, choice)


def select_actions(
    out: SearchOutput, temperature: float, algorithm: str, generator: torch.Generator
) -> torch.Tensor:
    """The action to play per tree [B] int64, by ``algorithm``'s own rule at ``temperature``
    (``mtrl.search.algorithms``: MuZero samples visit counts, Gumbel MuZero plays its search's
    choice; both are greedy at temperature 0)."""
    return get_algorithm(algorithm).choose(out, temperature, generator)

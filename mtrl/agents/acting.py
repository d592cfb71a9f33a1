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

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from mtrl.envs.batch import ObsBatch, TaskSet
from mtrl.envs.registry import refuse_unknown, task_setting
from mtrl.envs.spec import TaskSpec
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
    # Collection only: hold each exploring row's random action for n steps, n drawn from a
    # zeta distribution with this exponent (at most ``explore_max_hold``): εz-greedy (Dabney,
    # Ostrovski & Barreto 2021), whose long runs of one action reach what single random steps
    # do not (Freeway's far side is 27 consecutive "up" steps away). Its per-row state lives
    # in the collector (``mtrl.agents.exploration``). 0: one step, plain ε-greedy.
    explore_hold: float = 0.0
    # (task id or suite, exponent) pairs overriding ``explore_hold``; a task id wins over its
    # suite, 0 turns holds off for it. Holds are a trade: Freeway needs them to see a crossing,
    # while Breakout learned slower with them at 15k steps (bench/learning.md, session 15).
    task_explore_holds: tuple[tuple[str, float], ...] = ()
    explore_max_hold: int = 100
    # The model's recurrent step through torch.compile (inductor, one graph): less time per
    # simulation at small batches once compiled, but each new batch layout (size, mix of
    # tasks) or DPS stage compiles again, tens of seconds on a small CPU (bench/README.md).
    compile_step: bool = False
    discount: float = 0.997  # per-task values come from ``discounts`` in ``act``

    def __post_init__(self) -> None:
        if self.sampled_actions < 1:
            raise ValueError(f"sampled_actions must be >= 1, got {self.sampled_actions}")
        if not 0.0 <= self.explore_epsilon <= 1.0:
            raise ValueError(f"explore_epsilon must be in [0, 1], got {self.explore_epsilon}")
        # JSON (a checkpoint's config) gives lists; a frozen config keeps hashable tuples.
        pairs = tuple((str(key), float(value)) for key, value in self.task_explore_holds)
        object.__setattr__(self, "task_explore_holds", pairs)
        for task, hold in (("", self.explore_hold), *pairs):
            if hold and not hold > 1.0:
                where = f" of {task}" if task else ""
                raise ValueError(f"explore_hold{where} must be 0 (off) or > 1, got {hold}")
        if self.explore_max_hold < 1:
            raise ValueError(f"explore_max_hold must be >= 1, got {self.explore_max_hold}")

    @property
    def holds_exploration(self) -> bool:
        """Whether collection's ε-exploration is held for any task: then the collector explores
        every row (a row without holds takes single random steps), not the actor."""
        holds = (self.explore_hold, *(hold for _, hold in self.task_explore_holds))
        return self.explore_epsilon > 0 and any(hold > 0 for hold in holds)

    def explore_holds(self, specs: Sequence[TaskSpec]) -> np.ndarray:
        """Each task's hold exponent [len(specs)] (0: single steps); names of no registered
        task or suite are refused."""
        refuse_unknown(self.task_explore_holds, "task_explore_holds")
        holds = [task_setting(self.task_explore_holds, s, self.explore_hold) for s in specs]
        return np.array(holds, np.float64)

    def for_evaluation(self) -> ActingConfig:
        """The same search without collection's exploration (at any temperature)."""
        return replace(self, explore_epsilon=0.0, explore_hold=0.0, task_explore_holds=())


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


@dataclass(frozen=True)
class TaskTable:
    """Per-task facts and per-slot masks that acting indexes, on one device."""

    continuous: torch.Tensor  # [T] bool
    choices: torch.Tensor  # [T] int64 actions of discrete tasks (0 for continuous)
    text: torch.Tensor  # [T] bool
    slots: torch.Tensor  # [A] int64 0..A-1, the tree's action axis
    sampled: torch.Tensor  # [A] bool: the K sampled candidates of a continuous row
    uniform: torch.Tensor  # [A] float32 logits: uniform over the K candidates, masked after


class BatchedActor:
    """Builds roots for a task set and runs the joint search; stateless between calls.

    One search lives on the model's device from root inference to the chosen actions: node
    store, sampled candidates (drawn with a generator on that device), masks, logits and the
    tree (the CUDA backend on a GPU). The simulation loop reads nothing back from the device
    and branches on no device value; the ``ActResult`` arrays are copied to the host once.
    """

    def __init__(self, model: WorldModel, tasks: TaskSet, config: ActingConfig) -> None:
        self.model, self.tasks, self.config = model, tasks, config
        self.int8 = Int8Cache(model) if config.int8_inference else None
        self.any_continuous = any(s.action.is_continuous for s in tasks.specs)
        k = config.sampled_actions if self.any_continuous else 0
        self.width = max(tasks.max_choices, k, 1)
        self.action_dim = max(tasks.max_action_dim, 1)
        self.tables: dict[torch.device, TaskTable] = {}
        self.compiled_step: Any = None

    def table(self, device: torch.device) -> TaskTable:
        if device not in self.tables:
            specs, k = self.tasks.specs, self.config.sampled_actions
            slots = torch.arange(self.width, device=device)
            self.tables[device] = TaskTable(
                continuous=torch.tensor([s.action.is_continuous for s in specs], device=device),
                choices=torch.tensor(
                    [0 if s.action.is_continuous else s.action.n for s in specs], device=device
                ),
                text=torch.tensor([s.action.kind == "text" for s in specs], device=device),
                slots=slots,
                sampled=slots < k,
                uniform=torch.where(slots < k, 0.0, MASKED_LOGIT),
            )
        return self.tables[device]

    @torch.inference_mode()
    def act(
        self,
        obs: ObsBatch,
        discounts: torch.Tensor | None = None,  # [num_tasks]
        temperature: float = 1.0,
        seed: int = 0,
    ) -> ActResult:
        model, k, device = self._inference_model(), self.config.sampled_actions, self.model.device
        table = self.table(device)
        generator = torch.Generator(device=device).manual_seed(seed)
        root = model.initial_inference(observations_from_batch(obs, device))
        task = root.state.task_ids
        continuous = table.continuous[task]
        batch, nodes = task.shape[0], self.config.search.num_simulations + 1
        rows = torch.arange(batch, device=device)
        store = NodeStore(root.state, nodes)
        samples = torch.zeros(batch * nodes, k, self.action_dim, device=device)
        samples[:batch] = self._samples(root, k, generator)
        legal = self._root_legal(obs, continuous, table)
        if discounts is None:
            discounts = torch.full((len(self.tasks),), self.config.discount)
        root_input = RootInput(
            self._logits(root, continuous, table),
            root.value.float(),
            rows,
            legal,
            self._interior(root.state, task, continuous, table),
            discounts.to(device)[task].float(),
        )
        step, step_fn = {"sim": 0}, self._recurrent_step(model)

        def recurrent_fn(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
            step["sim"] += 1
            vector = samples[parent, action.clamp(max=k - 1)] * continuous[:, None]
            pred = step_fn(store.read(parent), Actions(action.clone(), vector))
            child = step["sim"] * batch + rows
            store.write(child, pred.state)
            samples[child] = self._samples(pred, k, generator)
            logits = self._logits(pred, continuous, table)
            # Without an end head nothing ends: no terminal mask for the search to apply.
            ended = pred.ended if model.end_head is not None else None
            value = child_value(pred, root_input.discount)
            return ModelOutput(logits, value, pred.reward.float(), child, ended)

        out = search(root_input, recurrent_fn, self.config.search, seed=seed)
        return self._result(out, samples[:batch], continuous, legal, temperature, generator)

    def _inference_model(self) -> WorldModel:
        return self.model if self.int8 is None else self.int8.get()

    def _recurrent_step(self, model: WorldModel) -> Any:
        if not self.config.compile_step or model is not self.model:  # int8 copies: eager
            return model.recurrent_inference
        if self.compiled_step is None:
            self.compiled_step = torch.compile(model.recurrent_inference, fullgraph=True)
        return self.compiled_step

    def _samples(self, pred: Prediction, k: int, generator: torch.Generator) -> torch.Tensor:
        device = pred.value.device
        if not self.any_continuous:
            return torch.zeros(pred.value.shape[0], k, self.action_dim, device=device)
        drawn = self.model.sample_actions(pred, k, generator).float()
        if self.config.mean_candidate:
            drawn[:, 0] = pred.mean.float()  # in bounds already (tanh-scaled), 0-padded
        return torch.nn.functional.pad(drawn, (0, self.action_dim - drawn.shape[-1]))

    def _logits(self, pred: Prediction, continuous: torch.Tensor, table: TaskTable) -> torch.Tensor:
        batch = pred.value.shape[0]
        logits = torch.full((batch, self.width), MASKED_LOGIT, device=pred.value.device)
        width = min(pred.policy_logits.shape[1], self.width)
        logits[:, :width] = pred.policy_logits[:, :width].float().clamp(min=MASKED_LOGIT)
        return torch.where(continuous[:, None], table.uniform, logits)

    def _root_legal(
        self, obs: ObsBatch, continuous: torch.Tensor, table: TaskTable
    ) -> torch.Tensor:
        legal = torch.zeros(obs.size, self.width, dtype=torch.bool)
        # A copy: arrays from the object store are read-only, which torch warns about.
        legal[:, : obs.legal.shape[1]] = torch.from_numpy(obs.legal[:, : self.width].copy())
        return torch.where(continuous[:, None], table.sampled, legal.to(continuous.device))

    def _interior(
        self, state: LatentState, task: torch.Tensor, continuous: torch.Tensor, table: TaskTable
    ) -> torch.Tensor:
        """Actions that exist below the root: the task's action set (text: root's commands)."""
        interior = table.slots < table.choices[task][:, None]
        mask = state.command_mask
        if mask.shape[1]:
            commands = torch.zeros_like(interior)
            commands[:, : mask.shape[1]] = mask[:, : self.width]
            interior = torch.where(table.text[task][:, None], commands, interior)
        return torch.where(continuous[:, None], table.sampled, interior)

    def _result(
        self,
        out: SearchOutput,
        root_samples: torch.Tensor,
        continuous: torch.Tensor,
        legal: torch.Tensor,
        temperature: float,
        generator: torch.Generator,
    ) -> ActResult:
        """The host's copy of what was decided: one transfer per array, after the search."""
        choice = select_actions(out, temperature, self.config.search.algorithm, generator)
        held = self.config.holds_exploration  # then the collector explores, not the actor
        if temperature > 0 and self.config.explore_epsilon > 0 and not held:
            choice = explore(choice, legal, self.config.explore_epsilon, generator)
        rows = torch.arange(choice.shape[0], device=choice.device)
        vector = root_samples[rows, choice.clamp(max=root_samples.shape[1] - 1)]
        vector = vector * continuous[:, None]
        return ActResult(
            action_index=torch.where(continuous, 0, choice).cpu().numpy(),
            action_vector=vector[:, : max(self.tasks.max_action_dim, 0)].cpu().numpy(),
            policy=out.action_weights.cpu().numpy(),
            sampled=(root_samples * continuous[:, None, None]).cpu().numpy(),
            root_value=out.root_value.cpu().numpy(),
            search=out,
        )


def child_value(pred: Prediction, discount: torch.Tensor | float) -> torch.Tensor:
    """[B] float32 a new child's value as the search scores it. With a Q head, (Q - r) /
    discount: the search backs r + discount * v up to the parent's edge, which is then worth
    the Q head's Q(s, a). Otherwise V of the imagined latent, weighed by P(the episode goes
    on) with an end head. A child the end head ends is absorbing either way (worth 0)."""
    if pred.q is None:
        return pred.continued_value
    return torch.where(pred.ended, 0.0, (pred.q.float() - pred.reward.float()) / discount)


def explore(
    choice: torch.Tensor, legal: torch.Tensor, epsilon: float, generator: torch.Generator
) -> torch.Tensor:
    """``choice`` [B] with each row replaced, with probability ``epsilon``, by a uniformly
    random action among its ``legal`` [B, A] ones."""
    coin = torch.rand(choice.shape[0], generator=generator, device=choice.device) < epsilon
    random = torch.multinomial(legal.float(), 1, generator=generator)[:, 0]
    return torch.where(coin, random, choice)


def select_actions(
    out: SearchOutput, temperature: float, algorithm: str, generator: torch.Generator
) -> torch.Tensor:
    """The action to play per tree [B] int64, by ``algorithm``'s own rule at ``temperature``
    (``mtrl.search.algorithms``: MuZero samples visit counts, Gumbel MuZero plays its search's
    choice; both are greedy at temperature 0)."""
    return get_algorithm(algorithm).choose(out, temperature, generator)

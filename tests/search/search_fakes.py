"""Deterministic fake models for search tests (no learning, outputs from fixed tables)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from hypothesis import strategies as st

from mtrl.search import ModelOutput, RootInput, SearchConfig, SearchOutput, Tree
from mtrl.search import search as mtrl_search


class ActionValueModel:
    """Outputs depend only on the action taken: value[a], reward[a], uniform-ish child logits.

    Easy to follow by hand: a hand-computed tree only needs to know which action each
    simulation took. Child ids count up from first_id so every node gets a fresh id.
    """

    def __init__(
        self,
        values: list[float],
        rewards: list[float] | None = None,
        child_logits: list[float] | None = None,
        terminal_actions: tuple[int, ...] = (),
        batch: int = 1,
        first_id: int = 100,
    ) -> None:
        num_actions = len(values)
        self.values = torch.tensor(values, dtype=torch.float32)
        self.rewards = torch.tensor(rewards or [0.0] * num_actions, dtype=torch.float32)
        logits = child_logits if child_logits is not None else [0.0] * num_actions
        self.child_logits = torch.tensor(logits, dtype=torch.float32)
        self.terminal = torch.zeros(num_actions, dtype=torch.bool)
        self.terminal[list(terminal_actions)] = True
        self.batch = batch
        self.next_id = first_id
        self.calls: list[tuple[list[int], list[int]]] = []

    def __call__(self, parent_ids: torch.Tensor, actions: torch.Tensor) -> ModelOutput:
        self.calls.append((parent_ids.tolist(), actions.tolist()))
        ids = torch.arange(self.next_id, self.next_id + self.batch, dtype=torch.int64)
        self.next_id += self.batch
        return ModelOutput(
            prior_logits=self.child_logits.expand(self.batch, -1).clone(),
            value=self.values[actions],
            reward=self.rewards[actions],
            embedding_id=ids,
            terminal=self.terminal[actions],
        )


class HashedTableModel:
    """Pseudo-random outputs that depend on (parent id, action) through a fixed table, so the
    tree a backend builds depends on every decision it took. Ids count up per call."""

    def __init__(
        self,
        batch: int,
        num_actions: int,
        seed: int = 0,
        logit_scale: float = 1.0,
        terminal_rate: float = 0.0,
        table_size: int = 997,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.logits = torch.randn(table_size, num_actions, generator=generator) * logit_scale
        self.values = torch.randn(table_size, generator=generator)
        self.rewards = torch.randn(table_size, generator=generator) * 0.5
        self.terminal = torch.rand(table_size, generator=generator) < terminal_rate
        self.batch = batch
        self.num_actions = num_actions
        self.table_size = table_size
        self.next_id = batch  # root ids are 0..B-1

    def root_logits(self) -> torch.Tensor:
        return self.logits[: self.batch].clone()

    def __call__(self, parent_ids: torch.Tensor, actions: torch.Tensor) -> ModelOutput:
        key = (parent_ids * self.num_actions + actions * 7919) % self.table_size
        ids = torch.arange(self.next_id, self.next_id + self.batch, dtype=torch.int64)
        self.next_id += self.batch
        return ModelOutput(
            prior_logits=self.logits[key].clone(),
            value=self.values[key].clone(),
            reward=self.rewards[key].clone(),
            embedding_id=ids,
            terminal=self.terminal[key].clone(),
        )


def draw_root(
    draw: st.DrawFn,
    terminal_rates: tuple[float, ...],
    single_legal_rows: bool = False,
    full_interior: bool = False,
) -> tuple[RootInput, dict[str, object]]:
    """A random root batch for property tests: masks with at least one legal action per row
    (optionally only one), a ``HashedTableModel``'s root logits, per-tree values and
    discounts. ``full_interior`` picks all-true interior masks instead of the legal ones.
    Returns the root and the keyword arguments that rebuild its model."""
    batch = draw(st.integers(1, 6))
    num_actions = draw(st.integers(1, 10))
    bits = draw(st.lists(st.booleans(), min_size=batch * num_actions, max_size=batch * num_actions))
    legal = torch.tensor(bits, dtype=torch.bool).reshape(batch, num_actions)
    if single_legal_rows and draw(st.booleans()):
        legal[:] = False
    legal[torch.arange(batch), draw(st.integers(0, num_actions - 1))] = True
    model_args = {
        "batch": batch,
        "num_actions": num_actions,
        "seed": draw(st.integers(0, 2**16)),
        "logit_scale": draw(st.sampled_from([0.0, 1.0, 30.0])),
        "terminal_rate": draw(st.sampled_from(terminal_rates)),
    }
    discounts = draw(
        st.lists(st.sampled_from([0.0, 0.5, 0.997, 1.0]), min_size=batch, max_size=batch)
    )
    root_values = draw(st.lists(st.floats(-10, 10, width=32), min_size=batch, max_size=batch))
    interior = torch.ones_like(legal) if full_interior else legal
    root = RootInput(
        prior_logits=HashedTableModel(**model_args).root_logits(),  # type: ignore[arg-type]
        value=torch.tensor(root_values, dtype=torch.float32),
        embedding_id=torch.arange(batch),
        legal_mask=legal,
        interior_mask=interior if draw(st.booleans()) else None,
        discount=torch.tensor(discounts, dtype=torch.float32),
    )
    return root, model_args


def _to(value: object, device: torch.device) -> object:
    return value.to(device) if isinstance(value, torch.Tensor) else value


def _root_on(root: RootInput, device: torch.device) -> RootInput:
    fields = {f.name: _to(getattr(root, f.name), device) for f in dataclasses.fields(root)}
    return RootInput(**fields)  # type: ignore[arg-type]


def _output_on_cpu(out: SearchOutput) -> SearchOutput:
    tree = out.tree
    if tree is not None:
        tree = Tree(**{f.name: getattr(tree, f.name).cpu() for f in dataclasses.fields(Tree)})
    fields = {
        f.name: _to(getattr(out, f.name), torch.device("cpu")) for f in dataclasses.fields(out)
    }
    return SearchOutput(**{**fields, "tree": tree})  # type: ignore[arg-type]


def search(
    root: RootInput,
    model: Callable[[torch.Tensor, torch.Tensor], object],
    config: SearchConfig,
    *,
    backend: str | None = None,
    seed: int = 0,
) -> SearchOutput:
    """``mtrl.search.search``; for backend "cuda" the CPU roots and CPU fake model are bridged
    to the GPU (roots and model outputs moved there, the model's inputs moved back) and the
    output is returned on the CPU, so one test body checks every backend."""
    if backend != "cuda":
        return mtrl_search(root, model, config, backend=backend, seed=seed)  # type: ignore[arg-type]
    device = torch.device("cuda")

    def bridged(parent: torch.Tensor, action: torch.Tensor) -> object:
        out = model(parent.cpu(), action.cpu())
        if isinstance(out, ModelOutput):
            moved = {f.name: _to(getattr(out, f.name), device) for f in dataclasses.fields(out)}
            return ModelOutput(**moved)  # type: ignore[arg-type]
        if isinstance(out, tuple):
            return tuple(_to(value, device) for value in out)
        return out

    return _output_on_cpu(
        mtrl_search(_root_on(root, device), bridged, config, backend="cuda", seed=seed)  # type: ignore[arg-type]
    )

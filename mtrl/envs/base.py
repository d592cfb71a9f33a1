"""The adapter interface every simulator is wrapped in, and what one step returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtrl.envs.spec import TaskSpec

Observation = np.ndarray | str  # uint8 [C, H, W] image, float32 [D] vector, or text
Action = int | np.ndarray  # an index (discrete, text command) or a float32 [dim] vector


@dataclass(frozen=True)
class Step:
    """One environment transition (or the first observation after a reset).

    ``legal`` marks the valid choices among the spec's ``action.n`` (discrete and text tasks;
    an empty array for continuous tasks). ``commands`` lists the offered command strings of a
    text task, in the order the action index refers to (``None`` elsewhere).
    ``reward`` is the sum over the repeated simulator steps. ``terminated`` means the episode
    ended in the MDP (no bootstrapping); ``truncated`` means it was cut by a time limit.
    """

    obs: Observation
    reward: float
    terminated: bool
    truncated: bool
    legal: np.ndarray  # [n] bool
    commands: tuple[str, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class TaskEnv(ABC):
    """A single environment of one task, with the task's standard preprocessing applied.

    ``spec`` is the resolved spec (observation shape after this env's settings).
    """

    spec: TaskSpec

    @abstractmethod
    def reset(self, seed: int | None = None) -> Step:
        """Start an episode; with a seed the episode is reproducible."""

    @abstractmethod
    def step(self, action: Action) -> Step:
        """Advance one agent step; raises ``ValueError`` on an illegal or out-of-range action."""

    def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing to free
        """Free simulator resources."""


def all_legal(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


NO_DISCRETE_ACTIONS = np.zeros(0, dtype=bool)


def check_index_action(spec: TaskSpec, action: Action, legal: np.ndarray) -> int:
    """An index action as an int, or a clear error naming what was wrong with it."""
    if isinstance(action, np.ndarray):
        if action.size != 1:
            raise ValueError(f"{spec.id}: expected one action index, got an array {action.shape}")
        action = action.reshape(()).item()
    index = int(action)
    if index != action or not 0 <= index < legal.shape[0] or not legal[index]:
        valid = np.flatnonzero(legal).tolist()
        raise ValueError(f"{spec.id}: illegal action {action!r}; legal indices now: {valid}")
    return index


def check_vector_action(spec: TaskSpec, action: Action) -> np.ndarray:
    """A continuous action as float32 [dim], clipped to the bounds, or a clear error."""
    vector = np.asarray(action, dtype=np.float32).reshape(-1)
    if vector.shape != (spec.action.dim,):
        raise ValueError(
            f"{spec.id}: action must have shape ({spec.action.dim},), got {vector.shape}"
        )
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{spec.id}: action has non-finite values: {vector}")
    return np.clip(vector, spec.action.low, spec.action.high)

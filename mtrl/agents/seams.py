"""The seams between the agent's parts and whoever runs them, as Protocols.

The same ``Collector`` and ``Learner`` run in one process (a ``BatchedActor`` and ``TaskReplay``
objects) and in the runtime's actors (a client of a remote search server, a recorder that ships
transitions to a replay shard, slices of sequences a shard sampled). These Protocols say what
each side needs of the other, so both kinds of object are typed as what they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from mtrl.agents.acting import ActingConfig, ActResult
    from mtrl.agents.replay import SequenceBatch
    from mtrl.envs.batch import ObsBatch


class Acting(Protocol):
    """Chooses actions for a batch of roots: ``BatchedActor``, or a search server's client."""

    config: ActingConfig

    def act(
        self, obs: ObsBatch, discounts: Any = None, temperature: float = 1.0, seed: int = 0
    ) -> ActResult: ...


class TransitionSink(Protocol):
    """Where collection writes: ``TaskReplay``, or a recorder for a replay shard."""

    def add(
        self,
        env_key: int,
        obs: np.ndarray | str,
        legal: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        policy: np.ndarray,
        root_value: float,
        sampled_actions: np.ndarray | None = None,
        commands: tuple[str, ...] = (),
    ) -> Any: ...

    def end_episode(
        self,
        env_key: int,
        final_obs: np.ndarray | str,
        terminated: bool,
        commands: tuple[str, ...] = (),
    ) -> None: ...


class _Capacity(Protocol):
    capacity: int


class SampleSource(Protocol):
    """What the learner (batching, reanalyse) reads of one task's replay: ``TaskReplay``, or a
    slice of sequences a replay shard sampled with the stored rows they reference."""

    config: _Capacity
    discount: float
    legal: Any  # indexable by row % capacity -> [n, A] bool
    text: Any  # truthy for text tasks

    def __len__(self) -> int: ...

    def sample(self, batch_size: int, rng: np.random.Generator) -> SequenceBatch: ...

    def observations(self, rows: np.ndarray) -> np.ndarray | list[str]: ...

    def offered_commands(self, rows: np.ndarray) -> list[tuple[str, ...]]: ...


__all__ = ["Acting", "SampleSource", "TransitionSink"]

"""Task specifications: what a task looks like to a model, independent of how it is simulated."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

ActionKind = Literal["discrete", "continuous", "text"]


class Modality(str, Enum):
    """How a task's observations look."""

    IMAGE = "image"  # uint8 frames [C, H, W]
    VECTOR = "vector"  # float32 state vectors [D]
    TEXT = "text"  # a string per step, plus a list of candidate commands


@dataclass(frozen=True)
class ActionSpace:
    """A task's action space.

    ``discrete``: ``n`` actions, all legal unless a mask says otherwise.
    ``continuous``: a ``dim``-vector in ``[low, high]``.
    ``text``: at each step an index into the list of currently valid commands, of which at most
    ``n`` are offered (longer lists are capped, shorter ones masked).
    """

    kind: ActionKind
    n: int = 0
    dim: int = 0
    low: float = -1.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("discrete", "continuous", "text"):
            valid = "discrete, continuous, text"
            raise ValueError(f"unknown action kind {self.kind!r}; valid: {valid}")
        if self.kind == "continuous" and (self.dim <= 0 or self.n != 0):
            raise ValueError(f"continuous action space needs dim > 0 and n == 0, got {self}")
        if self.kind != "continuous" and (self.n <= 0 or self.dim != 0):
            raise ValueError(f"{self.kind} action space needs n > 0 and dim == 0, got {self}")
        if self.low >= self.high:
            raise ValueError(f"action bounds must satisfy low < high, got {self.low}, {self.high}")

    @property
    def is_continuous(self) -> bool:
        return self.kind == "continuous"

    @property
    def size(self) -> int:
        """Width of this space in a batch: ``n`` choices, or ``dim`` components."""
        return self.dim if self.is_continuous else self.n


@dataclass(frozen=True)
class TaskSpec:
    """One task, identified forever by ``id`` (``<suite>/<name>``).

    ``obs_shape`` is the shape under the default observation settings: ``(C, H, W)`` for images,
    ``(D,)`` for vectors, ``()`` for text (one string). Episode limits are in agent steps, each
    of which repeats the action ``action_repeat`` times in the simulator.

    Scores: ``random_score`` / ``human_score`` are published reference returns (Atari);
    ``max_score`` is the best possible return where one exists (DMC 1000, text games' maximum);
    ``target_score`` is the return at which the task counts as solved (Dynamic Parameter Scaling).
    ``source`` says what the task maps to in its simulator.
    """

    id: str
    modality: Modality
    obs_shape: tuple[int, ...]
    action: ActionSpace
    max_episode_steps: int
    action_repeat: int = 1
    random_score: float | None = None
    human_score: float | None = None
    max_score: float | None = None
    target_score: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        suite, sep, name = self.id.partition("/")
        if not sep or not suite or not name:
            raise ValueError(f"task id must look like '<suite>/<name>', got {self.id!r}")
        if self.max_episode_steps <= 0 or self.action_repeat <= 0:
            raise ValueError(f"{self.id}: episode limit and action repeat must be positive")

    @property
    def suite(self) -> str:
        return self.id.partition("/")[0]

    @property
    def name(self) -> str:
        return self.id.partition("/")[2]

    def normalized_score(self, score: float) -> float | None:
        """Human-normalised score for tasks with human/random references, else score/max."""
        if self.human_score is not None and self.random_score is not None:
            return (score - self.random_score) / (self.human_score - self.random_score)
        if self.max_score:
            return score / self.max_score
        return None

"""Step many environments of many tasks together and return model-ready batches."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mtrl.envs.base import Action, Observation, Step, TaskEnv
from mtrl.envs.batch import ObsBatch, TaskSet, stack_observations
from mtrl.envs.make import make_env
from mtrl.envs.registry import resolve_tasks
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec

log = logging.getLogger(__name__)
EnvFactory = Callable[[TaskSpec, EnvSettings, "int | None"], TaskEnv]


@dataclass(frozen=True)
class ActionBatch:
    """One action per environment row: an index for discrete/text rows, a vector otherwise."""

    index: np.ndarray  # [E] int64, read for discrete and text rows
    vector: np.ndarray  # [E, D] float32, D = TaskSet.max_action_dim, read for continuous rows

    @staticmethod
    def from_list(actions: Sequence[Action], max_action_dim: int) -> ActionBatch:
        index = np.zeros(len(actions), dtype=np.int64)
        vector = np.zeros((len(actions), max_action_dim), dtype=np.float32)
        for row, action in enumerate(actions):
            if isinstance(action, np.ndarray) and action.ndim == 1:
                vector[row, : action.shape[0]] = action
            else:
                index[row] = int(action)
        return ActionBatch(index, vector)


@dataclass(frozen=True)
class EpisodeEnd:
    row: int
    task_id: int
    episode_return: float
    length: int
    terminated: bool


@dataclass(frozen=True)
class EnvFailure:
    row: int
    task_id: int
    error: str


@dataclass(frozen=True)
class StepBatch:
    """What one step of all environments returns (rows that ended were reset already)."""

    obs: ObsBatch  # for rows that ended: the first observation of their next episode
    reward: np.ndarray  # [E] float32
    terminated: np.ndarray  # [E] bool
    truncated: np.ndarray  # [E] bool (time limit, or an env crash that cut the episode)
    life_loss: np.ndarray  # [E] bool (Atari's training-only signal)
    final_obs: dict[int, Observation]  # row -> last observation of the episode that ended
    episodes: tuple[EpisodeEnd, ...]
    failures: tuple[EnvFailure, ...]


class MultiTaskEnv:
    """Environments of several tasks stepped as one batch, with auto-reset and crash recovery.

    Rows are laid out task by task (``envs_per_task`` rows each, in TaskSet order). Row ``r``
    is seeded with ``seed + r`` at its first reset; later episodes continue its random stream.
    A crashed environment (any exception other than a bad action) is closed, re-created,
    reset and reported in ``StepBatch.failures``; its episode counts as truncated.
    """

    def __init__(
        self,
        tasks: TaskSet | Sequence[str],
        envs_per_task: int | Sequence[int] = 1,
        settings: EnvSettings | None = None,
        seed: int = 0,
        factory: EnvFactory = make_env,
    ) -> None:
        requested = tasks if isinstance(tasks, TaskSet) else TaskSet(resolve_tasks(tasks))
        counts = _counts(envs_per_task, len(requested))
        self.task_ids = np.repeat(np.arange(len(requested)), counts)
        self.settings = settings or EnvSettings()
        self.seed = seed
        self._factory = factory
        self.tasks = requested
        self._envs = [self._create(row) for row in range(self.num_envs)]
        # Settings resolve specs (frame shapes, command caps): batches follow the envs' specs.
        self.tasks = TaskSet(self.specs)  # image frames of any shapes: batch.py pads them
        self._steps: list[Step] = []
        self._returns = np.zeros(self.num_envs, dtype=np.float64)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)
        self.recent_returns = [deque(maxlen=100) for _ in range(len(self.tasks))]

    @property
    def num_envs(self) -> int:
        return int(self.task_ids.shape[0])

    @property
    def specs(self) -> tuple[TaskSpec, ...]:
        """The resolved spec of each task (observation shape after this run's settings)."""
        first_rows = np.searchsorted(self.task_ids, np.arange(len(self.tasks)))
        return tuple(self._envs[row].spec for row in first_rows)

    def env(self, row: int) -> TaskEnv:
        """The environment of one row, for tools that inspect it or play a copy of it."""
        return self._envs[row]

    def reset(self) -> ObsBatch:
        self._steps = [env.reset(seed=self.seed + row) for row, env in enumerate(self._envs)]
        self._returns[:] = 0.0
        self._lengths[:] = 0
        return self._observe()

    def step(
        self, actions: ActionBatch | Sequence[Action], rows: Sequence[int] | None = None
    ) -> StepBatch:
        """Step every row, or only ``rows`` (the others keep their state; their reward is 0).

        ``actions`` always has one entry per row; entries of rows not stepped are ignored.
        """
        if not self._steps:
            raise RuntimeError("MultiTaskEnv.step() before reset()")
        if not isinstance(actions, ActionBatch):
            actions = ActionBatch.from_list(actions, self.tasks.max_action_dim)
        if actions.index.shape[0] != self.num_envs:
            raise ValueError(f"{actions.index.shape[0]} actions for {self.num_envs} environments")
        reward = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        life_loss = np.zeros(self.num_envs, dtype=bool)
        final_obs: dict[int, Observation] = {}
        episodes: list[EpisodeEnd] = []
        failures: list[EnvFailure] = []
        for row in range(self.num_envs) if rows is None else rows:
            step = self._step_row(row, actions, failures)
            reward[row], terminated[row], truncated[row] = (
                step.reward,
                step.terminated,
                step.truncated,
            )
            life_loss[row] = bool(step.info.get("life_loss", False))
            self._returns[row] += step.reward
            self._lengths[row] += 1
            if step.done:
                final_obs[row] = step.obs
                episodes.append(self._end_episode(row, step.terminated))
                step = self._reset_row(row, failures)
            self._steps[row] = step
        return StepBatch(
            self._observe(),
            reward,
            terminated,
            truncated,
            life_loss,
            final_obs,
            tuple(episodes),
            tuple(failures),
        )

    def close(self) -> None:
        for env in self._envs:
            _close_quietly(env)

    def _create(self, row: int) -> TaskEnv:
        spec = self.tasks[int(self.task_ids[row])]
        return self._factory(spec, self.settings, self.seed + row)

    def _action_for(self, row: int, actions: ActionBatch) -> Action:
        spec = self._envs[row].spec
        if spec.action.is_continuous:
            return actions.vector[row, : spec.action.dim]
        return int(actions.index[row])

    def _step_row(self, row: int, actions: ActionBatch, failures: list[EnvFailure]) -> Step:
        action = self._action_for(row, actions)
        try:
            return self._envs[row].step(action)
        except ValueError:
            raise  # a bad action is the caller's bug, not a crashed simulator
        except Exception as error:  # any simulator failure is recovered the same way
            self._recover(row, error, failures)
            return Step(
                self._steps[row].obs,
                0.0,
                False,
                True,
                self._steps[row].legal,
                self._steps[row].commands,
                {"crashed": True},
            )

    def _reset_row(self, row: int, failures: list[EnvFailure]) -> Step:
        try:
            return self._envs[row].reset()
        except Exception as error:
            return self._recover(row, error, failures)

    def _recover(self, row: int, error: Exception, failures: list[EnvFailure]) -> Step:
        task_id = int(self.task_ids[row])
        message = f"{type(error).__name__}: {error}"
        log.warning(
            "env row %d (%s) crashed, re-creating it: %s", row, self.tasks[task_id].id, message
        )
        failures.append(EnvFailure(row, task_id, message))
        _close_quietly(self._envs[row])
        self._envs[row] = self._create(row)
        return self._envs[row].reset(seed=self.seed + row + 100_003 * len(failures))

    def _end_episode(self, row: int, terminated: bool) -> EpisodeEnd:
        task_id = int(self.task_ids[row])
        end = EpisodeEnd(
            row, task_id, float(self._returns[row]), int(self._lengths[row]), terminated
        )
        self.recent_returns[task_id].append(end.episode_return)
        self._returns[row], self._lengths[row] = 0.0, 0
        return end

    def observe(self, rows: Sequence[int]) -> ObsBatch:
        """The current observations of ``rows`` only, as a batch in that order."""
        if not self._steps:
            raise RuntimeError("MultiTaskEnv.observe() before reset()")
        return stack_observations(
            self.tasks, [int(self.task_ids[r]) for r in rows], [self._steps[r] for r in rows]
        )

    def _observe(self) -> ObsBatch:
        return stack_observations(self.tasks, self.task_ids.tolist(), self._steps)


def _counts(envs_per_task: int | Sequence[int], num_tasks: int) -> np.ndarray:
    counts = (
        np.full(num_tasks, envs_per_task)
        if isinstance(envs_per_task, int)
        else np.asarray(envs_per_task)
    )
    if counts.shape != (num_tasks,) or np.any(counts < 1):
        raise ValueError(
            f"envs_per_task must be >= 1 for each of {num_tasks} tasks, got {envs_per_task!r}"
        )
    return counts


def _close_quietly(env: TaskEnv) -> None:
    try:
        env.close()
    except Exception:  # closing a broken simulator may fail; nothing to save
        log.debug("closing env failed", exc_info=True)

"""When Dynamic Parameter Scaling moves to its next stage, and which tasks still train.

The world model's ``dps`` module knows *what* trains at each stage; this controller decides
*when* to switch. A task counts as solved once an evaluation return reaches its target return
(``TaskSpec.target_score`` unless overridden; never with ``mark_solved=False``). Solved tasks
leave collection at once; they leave training at once too (ScaleZero's rule) or, with
``train_solved_until_switch``, at the next stage switch. The stage advances (at most to the
last one) when the first stage has run for ``min_updates_first_stage`` updates (later stages:
any time) and either ``solved_per_switch`` tasks were solved since the last switch or the stage
has run for ``max_updates_per_stage`` updates. All state is plain numbers and strings
(checkpoint-safe).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DpsSchedule:
    num_stages: int = 4  # stage 0 trains the backbone; stages 1.. each train a new adapter
    min_updates_first_stage: int = 10_000
    solved_per_switch: int = 2
    max_updates_per_stage: int = 50_000
    # A task solved in a stage keeps training from its replay (no new collection) until the
    # next switch freezes the parameters it was solved with. Without it, a task solved in
    # stage 0 forgets while the others keep training the shared backbone: CartPole went from
    # 500 to ~10 within minutes (bench/learning.md, "DPS and solved tasks").
    train_solved_until_switch: bool = True
    # False: no task is ever marked solved, so every task is collected and trained for the
    # whole run (benchmarks that measure learning over a fixed budget); stages still advance
    # after ``max_updates_per_stage``.
    mark_solved: bool = True

    def __post_init__(self) -> None:
        for name in ("num_stages", "solved_per_switch", "max_updates_per_stage"):
            if getattr(self, name) < 1:
                raise ValueError(f"DpsSchedule.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_updates_first_stage < 0:
            raise ValueError("DpsSchedule.min_updates_first_stage must be >= 0")


class DpsController:
    def __init__(
        self,
        task_ids: Sequence[str],
        targets: Mapping[str, float | None],
        schedule: DpsSchedule | None = None,
    ) -> None:
        missing = [task for task in task_ids if task not in targets]
        if missing:
            raise ValueError(f"no target return for tasks {missing}")
        self.task_ids = tuple(task_ids)
        self.targets = {task: targets[task] for task in task_ids}
        self.schedule = schedule or DpsSchedule()
        self.stage = 0
        self.stage_start_update = 0
        self.solved: dict[str, int] = {}  # task -> update at which it was solved
        self.best_return: dict[str, float] = {task: -math.inf for task in task_ids}

    @property
    def active_tasks(self) -> tuple[str, ...]:
        """Tasks still collected and trained, in the run's order."""
        return tuple(task for task in self.task_ids if task not in self.solved)

    @property
    def training_tasks(self) -> tuple[str, ...]:
        """Tasks the learner trains on: the active ones, and (``train_solved_until_switch``)
        the ones solved since the last stage switch."""
        keep = self.schedule.train_solved_until_switch
        return tuple(
            task
            for task in self.task_ids
            if task not in self.solved or (keep and self.solved[task] >= self.stage_start_update)
        )

    @property
    def all_solved(self) -> bool:
        return not self.active_tasks

    def report_evaluation(self, task: str, episode_return: float, update: int) -> bool:
        """Record an evaluation return; True if this made ``task`` newly solved."""
        if task not in self.targets:
            raise ValueError(f"unknown task {task!r}; this run has {list(self.task_ids)}")
        self.best_return[task] = max(self.best_return[task], episode_return)
        target = self.targets[task]
        if not self.schedule.mark_solved or task in self.solved:
            return False
        if target is None or episode_return < target:
            return False
        self.solved[task] = update
        return True

    def maybe_advance(self, update: int) -> bool:
        """Move to the next stage if the rule says so; True when the stage changed."""
        if self.stage >= self.schedule.num_stages - 1:
            return False
        if self.stage == 0 and update < self.schedule.min_updates_first_stage:
            return False
        newly_solved = sum(at >= self.stage_start_update for at in self.solved.values())
        in_stage = update - self.stage_start_update
        if newly_solved >= self.schedule.solved_per_switch or (
            in_stage >= self.schedule.max_updates_per_stage
        ):
            self.stage += 1
            self.stage_start_update = update
            return True
        return False

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {"dps/stage": float(self.stage), "dps/solved": len(self.solved)}
        for task in self.task_ids:
            out[f"dps/solved/{task}"] = float(task in self.solved)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "stage_start_update": self.stage_start_update,
            "solved": dict(self.solved),
            "best_return": dict(self.best_return),
            "task_ids": list(self.task_ids),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if list(state["task_ids"]) != list(self.task_ids):
            raise ValueError(
                f"DPS state is for tasks {list(state['task_ids'])}, this run has "
                f"{list(self.task_ids)}"
            )
        self.stage = int(state["stage"])
        self.stage_start_update = int(state["stage_start_update"])
        self.solved = {str(k): int(v) for k, v in state["solved"].items()}
        self.best_return = {str(k): float(v) for k, v in state["best_return"].items()}

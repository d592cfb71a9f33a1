"""When a run collects, trains, evaluates and stops: the driver's rules as pure functions of its
config and counters (env steps, updates, seconds), so each can be tested without actors.

Back-pressure: the learner is asked for updates only while it is below ``replay_ratio *
(env_steps - warmup) + slack``, and workers pause while it lags that target by more than
``slack``. The budget is env steps, or wall time when ``max_seconds`` is set and binds first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mtrl.runtime.config import RunConfig


@dataclass(frozen=True)
class Pace:
    config: RunConfig

    def progress(self, env_steps: int, seconds: float) -> float:
        """How much of the budget is spent: env steps, or wall time when that is the budget."""
        config = self.config
        spent = env_steps / config.env_steps
        return max(spent, seconds / config.max_seconds) if config.max_seconds else spent

    def first_evaluation(self, env_steps: int) -> float:
        at_start = self.config.eval_at_start and env_steps == 0
        return 0 if at_start else self.next_evaluation(env_steps)

    def next_evaluation(self, env_steps: int) -> float:
        """The next multiple of ``eval_every`` after ``env_steps`` (0: only the final one)."""
        every = self.config.eval_every
        return (env_steps // every + 1) * every if every else math.inf

    def target_updates(self, env_steps: int) -> float:
        return self.config.replay_ratio * max(0, env_steps - self.config.warmup_env_steps)

    def may_collect(self, env_steps: int, updates: int) -> bool:
        return updates >= self.target_updates(env_steps) - self.config.replay_ratio_slack

    def may_train(self, env_steps: int, updates: int) -> bool:
        config = self.config
        if env_steps < config.warmup_env_steps or config.replay_ratio <= 0:
            return False
        return updates < self.target_updates(env_steps) + config.replay_ratio_slack

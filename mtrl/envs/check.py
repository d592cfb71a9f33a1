"""Step every task of some suites with random legal actions: does each one run, and how fast."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from mtrl.envs.base import Action, Step, TaskEnv
from mtrl.envs.make import make_env
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec


@dataclass(frozen=True)
class CheckResult:
    task_id: str
    steps: int
    steps_per_second: float
    episodes: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def random_action(env: TaskEnv, step: Step, rng: np.random.Generator) -> Action:
    """A uniformly random legal action for ``env`` in the state ``step`` returned."""
    if env.spec.action.is_continuous:
        low, high = env.spec.action.low, env.spec.action.high
        return rng.uniform(low, high, env.spec.action.dim).astype(np.float32)
    return int(rng.choice(np.flatnonzero(step.legal)))


def check_task(spec: TaskSpec, steps: int, settings: EnvSettings, seed: int = 0) -> CheckResult:
    """Run ``steps`` random steps of one task (auto-resetting); failures become the result."""
    rng = np.random.default_rng(seed)
    done_steps = episodes = 0
    start = time.perf_counter()
    try:
        env = make_env(spec, settings, seed)
        try:
            step = env.reset(seed=seed)
            start = time.perf_counter()  # steps/s counts stepping (with resets), not start-up
            for done_steps in range(1, steps + 1):  # noqa: B007 - the count is reported
                step = env.step(random_action(env, step, rng))
                if step.done:
                    episodes += 1
                    step = env.reset()
        finally:
            env.close()
    except Exception as error:  # any failure is reported per task, the check goes on
        return CheckResult(spec.id, done_steps, 0.0, episodes, f"{type(error).__name__}: {error}")
    elapsed = time.perf_counter() - start
    return CheckResult(spec.id, done_steps, done_steps / max(elapsed, 1e-9), episodes)

"""The laptop run: three tasks of three kinds (a pole on a cart as a discrete game, the same
balance task with continuous control, a generated text adventure) with the tiny model, for
four minutes of training on a local Ray. CartPole learns in that time on 2 CPU cores; the run
ends with a table of each task's first and last evaluation against its target.

    python launch/tiny.py                       # local Ray on 127.0.0.1, runs/tiny
    python launch/tiny.py --set max_seconds=900 --set learner.lr=3e-4
    python launch/tiny.py --resume runs/tiny    # continue from the newest checkpoint
    ray job submit --working-dir . -- python launch/tiny.py   # on a running cluster
"""

from dataclasses import dataclass, field
from typing import Any

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.runtime.presets import TWO_CORES
from mtrl.search import SearchConfig


@dataclass(frozen=True)
class TinyConfig(RunConfig):
    tasks: tuple[str, ...] = (
        "classic/CartPole",
        "dmc/cartpole-balance",
        "text/tw-coin_collector-l1",
    )
    # The budget is wall time: 4 minutes of training (start-up and the two evaluations come
    # on top); env_steps only caps a much faster machine.
    max_seconds: float = 240.0
    env_steps: int = 200_000
    envs_per_task: int = 4
    model_preset: str = "tiny"  # 32-d, 2 layers, 8 experts: trains in seconds on a CPU
    # Value support 50 (h(x) up to ~2,600): the tiny preset's 10 caps values near 120, below
    # CartPole's discounted returns (~330). A small entropy bonus keeps the continuous policy
    # from collapsing before the value has learned (bench/learning.md, session 4).
    model_overrides: tuple[tuple[str, Any], ...] = (
        ("support_size", 50),
        ("policy_entropy_coef", 0.005),
    )
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(
            SearchConfig(algorithm="gumbel_muzero", num_simulations=8),
            sampled_actions=8,
            explore_epsilon=0.1,  # random legal actions while collecting, never in evaluation
        )
    )
    # Prioritized replay; the text game at γ 0.9 (bench/learning.md, sessions 4 and 7).
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(
            capacity=50_000, priority_exponent=0.6, task_discounts=(("text", 0.9),)
        )
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=64, lr=1e-3))
    warmup_env_steps: int = 400
    replay_ratio: float = 0.25  # one update of 64 sequences per 4 agent steps
    eval_at_start: bool = True  # the first row of the closing table: the untrained model
    eval_every: int = 0  # and the end
    eval_episodes: int = 4
    log_every_s: float = 15.0
    run_dir: str = "runs/tiny"
    checkpoint_minutes: float = 2.0
    resources: Resources = field(default_factory=lambda: TWO_CORES)


if __name__ == "__main__":
    raise SystemExit(main(TinyConfig))

"""Text adventures (the ``text`` suite: generated TextWorld games offline, Jericho games if
their files are present) with one world model; actions are the offered command lists.

Defaults follow UniZero's Jericho setting (arXiv:2406.10667) at ScaleZero scale: 50
simulations, 400k env steps per task, AdamW lr 1e-4, unroll 10, 5-step TD, discount 0.997.

    ray job submit --working-dir . -- python launch/text.py
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.search import SearchConfig


@dataclass(frozen=True)
class TextConfig(RunConfig):
    tasks: tuple[str, ...] = ("text",)
    env_steps: int = 400_000 * 4  # 400k per task, for the suite's four offline games
    num_workers: int = 4
    envs_per_task: int = 2
    model_preset: str = "base"
    model_overrides: tuple = ()
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(SearchConfig(algorithm="muzero", num_simulations=50))
    )
    replay: ReplayConfig = field(
        # Text games discount at 0.9 like DRRN and the Jericho baselines: at 0.997 the agent
        # hardly prefers a point now to a point later (bench/learning.md, session 7).
        default_factory=lambda: ReplayConfig(
            capacity=200_000, unroll_steps=10, n_step=5, task_discounts=(("text", 0.9),)
        )
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=256, lr=1e-4))
    warmup_env_steps: int = 5_000
    replay_ratio: float = 0.25
    eval_every: int = 100_000
    run_dir: str = "runs/text"
    checkpoint_minutes: float = 30.0
    resources: Resources = field(
        default_factory=lambda: Resources(
            worker_cpus=1,
            search_cpus=2,
            search_gpus=0.5,
            learner_cpus=4,
            learner_gpus=1,
            evaluator_cpus=1,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main(TextConfig))

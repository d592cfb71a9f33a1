"""Atari 8: the ScaleZero / UniZero eight-game multi-task subset, paper-scale defaults.

The settings of ``atari26.py`` (``PaperScaleAtari`` in ``mtrl/runtime/presets.py``;
ScaleZero, Pu et al. 2025; UniZero, arXiv:2406.10667: 50 simulations, 400k env steps per
task, AdamW lr 1e-4, unroll 10, 5-step TD) on 8 games, with half the batch and a topology
sized for them.

    ray job submit --working-dir . -- python launch/atari8.py
"""

from dataclasses import dataclass, field

from mtrl.agents.learner import LearnerConfig
from mtrl.runtime import Resources, main
from mtrl.runtime.presets import PaperScaleAtari

TASKS = 8


@dataclass(frozen=True)
class Atari8Config(PaperScaleAtari):
    tasks: tuple[str, ...] = ("atari8",)
    env_steps: int = 400_000 * TASKS
    num_workers: int = 4
    envs_per_task: int = 2  # 8 envs per game
    num_search_servers: int = 1
    num_replay_shards: int = 2
    # Conflict metrics (GradientConfig.metrics_every, default every 50 updates, the first
    # included) take per-task gradients: on an update that logs them the learner pays one
    # backward pass per game, 8 here. Cheap on a GPU; on CPU set
    # --set learner.gradients.metrics_every=0 (or a large N) when throughput matters.
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=256, lr=1e-4))
    warmup_env_steps: int = 2_000 * TASKS
    run_dir: str = "runs/atari8"
    resources: Resources = field(
        default_factory=lambda: Resources(
            worker_cpus=1,
            search_cpus=2,
            search_gpus=0.5,
            learner_cpus=4,
            learner_gpus=1,
            evaluator_cpus=1,
            evaluator_gpus=0.25,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main(Atari8Config))

"""Atari 26 (the Atari 100k game set) with one world model: the ScaleZero setting.

Paper-scale defaults, written out: ScaleZero (Pu et al. 2025, "One Model for All Tasks:
Leveraging Efficient World Models in Multi-Task Planning") on UniZero's world model (Pu et
al. 2024, arXiv:2406.10667): 768-d 4-layer transformer with MoE, 50 simulations, 400k env
steps per task, AdamW lr 1e-4, discount 0.997, 5-step TD, unroll 10, 64x64 RGB frames,
replay ratio 0.25. Needs GPUs; ``--set`` changes any field.

    ray job submit --working-dir . -- python launch/atari26.py
    python launch/atari26.py --set num_workers=2 --set env_steps=100000   # a smaller try
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.search import SearchConfig

TASKS = 26


@dataclass(frozen=True)
class Atari26Config(RunConfig):
    tasks: tuple[str, ...] = ("atari26",)  # a suite name expands to its tasks
    env_steps: int = 400_000 * TASKS  # 400k agent steps per task
    num_workers: int = 8  # each runs envs_per_task envs of every game: 8 envs per game
    envs_per_task: int = 1
    num_search_servers: int = 2
    num_replay_shards: int = 4
    model_preset: str = "base"  # 768-d, 4 layers, 24 heads, 8 experts (+ shared), LoRA DPS
    model_overrides: tuple = ()
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(SearchConfig(algorithm="muzero", num_simulations=50))
    )
    # Rows per task: 26 x 50k x ~12.4 KB (64x64 RGB + search targets) is about 16 GB.
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(capacity=50_000, unroll_steps=10, n_step=5)
    )
    learner: LearnerConfig = field(
        default_factory=lambda: LearnerConfig(batch_size=512, lr=1e-4, bf16=True)
    )
    warmup_env_steps: int = 2_000 * TASKS
    replay_ratio: float = 0.25
    eval_every: int = 200_000
    eval_episodes: int = 4
    run_dir: str = "runs/atari26"
    checkpoint_minutes: float = 30.0
    replay_snapshot_rows: int = 5_000  # per task in each checkpoint (~1.6 GB for 26 games)
    resources: Resources = field(
        default_factory=lambda: Resources(
            worker_cpus=1,
            search_cpus=2,
            search_gpus=0.25,
            learner_cpus=4,
            learner_gpus=1,
            evaluator_cpus=1,
            evaluator_gpus=0.25,
        )
    )


if __name__ == "__main__":
    raise SystemExit(main(Atari26Config))

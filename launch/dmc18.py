"""DeepMind Control 18 (state vectors, continuous actions) with one world model.

Paper-scale defaults, written out: ScaleZero's DMC setting (Pu et al. 2025) on UniZero's
model (arXiv:2406.10667) with Sampled MuZero search (Hubert et al. 2021, K = 20 sampled
actions): 50 simulations, 400k env steps per task, AdamW lr 1e-4, unroll 10, 5-step TD.

    ray job submit --working-dir . -- python launch/dmc18.py
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.search import SearchConfig

TASKS = 18


@dataclass(frozen=True)
class Dmc18Config(RunConfig):
    tasks: tuple[str, ...] = ("dmc18",)
    env_steps: int = 400_000 * TASKS
    num_workers: int = 4
    envs_per_task: int = 2  # 8 envs per task
    num_search_servers: int = 1
    num_replay_shards: int = 2
    model_preset: str = "base"
    model_overrides: tuple = ()
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(
            SearchConfig(algorithm="muzero", num_simulations=50), sampled_actions=20
        )
    )
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(capacity=200_000, unroll_steps=10, n_step=5)
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=512, lr=1e-4))
    warmup_env_steps: int = 2_000 * TASKS
    replay_ratio: float = 0.25
    eval_every: int = 200_000
    run_dir: str = "runs/dmc18"
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
    raise SystemExit(main(Dmc18Config))

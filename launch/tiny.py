"""The laptop run: three tasks of three kinds (a pole on a cart as a discrete game, the same
balance task with continuous control, a generated text adventure) with the tiny model.
Finishes in a few minutes on 2 CPU cores; everything the big runs do happens here too.

    python launch/tiny.py                       # local Ray on 127.0.0.1, runs/tiny
    python launch/tiny.py --set env_steps=20000 --set learner.lr=3e-4
    python launch/tiny.py --resume runs/tiny    # continue from the newest checkpoint
    ray job submit --working-dir . -- python launch/tiny.py   # on a running cluster
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.search import SearchConfig


@dataclass(frozen=True)
class TinyConfig(RunConfig):
    tasks: tuple[str, ...] = (
        "classic/CartPole",
        "dmc/cartpole-balance",
        "text/tw-coin_collector-l1",
    )
    env_steps: int = 6_000  # agent steps over all environments
    envs_per_task: int = 2
    model_preset: str = "tiny"  # 32-d, 2 layers, 8 experts: trains in seconds on a CPU
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(
            SearchConfig(algorithm="gumbel_muzero", num_simulations=8), sampled_actions=4
        )
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=32, lr=1e-3))
    warmup_env_steps: int = 300
    replay_ratio: float = 0.1  # one update per 10 agent steps
    eval_every: int = 0  # evaluate at the end only
    eval_episodes: int = 2
    log_every_s: float = 5.0
    run_dir: str = "runs/tiny"
    checkpoint_minutes: float = 2.0
    # Two cores: half a core each for the worker and the search server, one for the learner.
    resources: Resources = field(
        default_factory=lambda: Resources(worker_cpus=0.5, search_cpus=0.5, learner_cpus=1.0)
    )


if __name__ == "__main__":
    raise SystemExit(main(TinyConfig))

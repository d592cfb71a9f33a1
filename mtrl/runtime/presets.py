"""Paper-scale settings shared by more than one launch script, so that each value is written once.

A launch script (``launch/<experiment>.py``) subclasses one of these and names what makes its
experiment: the tasks, the budget, the run folder and whatever it sizes differently.
"""

from dataclasses import dataclass, field
from typing import Any

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime.config import Resources, RunConfig
from mtrl.search import SearchConfig

# A 2-core machine: half a core each for the worker and the search server, one for the
# learner; nothing else reserved (launch/tiny.py, launch/minatar5.py, ``--smoke``).
TWO_CORES = Resources(worker_cpus=0.5, search_cpus=0.5, learner_cpus=1.0)


@dataclass(frozen=True)
class Laptop(RunConfig):
    """The tiny model on a 2-core CPU for a classic control task, a DMC task and a text game in
    one model: the settings that made those three learn together (bench/learning.md, sessions
    4-8). Subclasses set ``tasks``, the budget, the search's simulations, the evaluations and
    ``run_dir`` (``launch/tiny.py``, ``launch/proxy3.py``)."""

    envs_per_task: int = 4
    model_preset: str = "tiny"  # 32-d, 2 layers, 8 experts: trains in seconds on a CPU
    # Value support 50 (h(x) up to ~2,600): the tiny preset's 10 caps values near 120, below
    # CartPole's discounted returns (~330). A small entropy bonus keeps the continuous policy
    # from collapsing before the value has learned (bench/learning.md, session 4).
    model_overrides: tuple[tuple[str, Any], ...] = (
        ("support_size", 50),
        ("policy_entropy_coef", 0.005),
    )
    # Prioritized replay; the text games at γ 0.9 (bench/learning.md, sessions 4 and 7).
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(
            capacity=50_000, priority_exponent=0.6, task_discounts=(("text", 0.9),)
        )
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=64, lr=1e-3))
    replay_ratio: float = 0.25  # one update of 64 sequences per 4 agent steps
    resources: Resources = field(default_factory=lambda: TWO_CORES)


def laptop_acting(num_simulations: int) -> ActingConfig:
    """Gumbel search with 8 sampled actions for continuous tasks and ε 0.1 while collecting."""
    return ActingConfig(
        SearchConfig(algorithm="gumbel_muzero", num_simulations=num_simulations),
        sampled_actions=8,
        explore_epsilon=0.1,  # random legal actions while collecting, never in evaluation
    )


@dataclass(frozen=True)
class PaperScaleAtari(RunConfig):
    """ScaleZero's Atari setting (Pu et al. 2025, "One Model for All Tasks: Leveraging Efficient
    World Models in Multi-Task Planning") on UniZero's world model (Pu et al. 2024,
    arXiv:2406.10667): 768-d 4-layer transformer with MoE, 50 simulations, AdamW lr 1e-4,
    discount 0.997, 5-step TD, unroll 10, 64x64 RGB frames, replay ratio 0.25. Needs GPUs.

    Subclasses set ``tasks``, ``env_steps`` (400k agent steps per task in the papers),
    ``warmup_env_steps`` (2k per task) and ``run_dir``; the topology and resources here are
    sized for the 26-game set (``launch/atari26.py``).
    """

    num_workers: int = 8  # each runs envs_per_task envs of every game: 8 envs per game
    envs_per_task: int = 1
    num_search_servers: int = 2
    num_replay_shards: int = 4
    model_preset: str = "base"  # 768-d, 4 layers, 24 heads, 8 experts (+ shared), LoRA DPS
    model_overrides: tuple = ()
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(SearchConfig(algorithm="muzero", num_simulations=50))
    )
    # Rows per task: 50k x ~12.4 KB (64x64 RGB + search targets) is about 620 MB a game, so
    # about 16 GB for 26 games.
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(capacity=50_000, unroll_steps=10, n_step=5)
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=512, lr=1e-4))
    replay_ratio: float = 0.25
    eval_every: int = 200_000
    eval_episodes: int = 4
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

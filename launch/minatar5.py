"""MinAtar: the five Atari analogues of Young & Tian 2019 (Breakout, Asterix, Freeway, Seaquest,
SpaceInvaders) in one model, sized for a 2-core laptop. The 10x10 binary grids go through the
image encoder at full resolution, each game with its own action set; sticky actions 0.1 and
difficulty ramping as MinAtar's defaults (``--set env.minatar.*``). The budget is 30 minutes of
training (``max_seconds``); ``env_steps`` caps a faster machine at 100k agent steps per game.

    python launch/minatar5.py                        # local Ray on 127.0.0.1, runs/minatar
    python launch/minatar5.py --set 'tasks=["minatar/Breakout","minatar/Asterix"]'
    python launch/minatar5.py --set env.minatar.sticky_action_prob=0 --set max_seconds=3600
    python launch/minatar5.py --resume runs/minatar  # continue from the newest checkpoint
    python launch/minatar5.py --smoke                # every part of a run, in about a minute
"""

from dataclasses import dataclass, field
from typing import Any

from mtrl.agents.acting import ActingConfig
from mtrl.agents.learner import LearnerConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import Resources, RunConfig, main
from mtrl.runtime.presets import TWO_CORES
from mtrl.search import SearchConfig

GAMES = 5


@dataclass(frozen=True)
class MinAtarConfig(RunConfig):
    tasks: tuple[str, ...] = ("minatar",)
    max_seconds: float = 1_800.0
    env_steps: int = 100_000 * GAMES
    envs_per_task: int = 2
    model_preset: str = "tiny"  # 32-d, 2 layers: trains on a CPU
    # Value support 50 (h(x) up to ~2,600): the tiny preset's 10 caps values near 120, below
    # the discounted returns of a good SpaceInvaders or Breakout player. One image stage of 16
    # channels (a conv and a residual block at full resolution, then every cell projected)
    # instead of the preset's two (8, 16): MinAtar's DQN has one conv of 16 (Young & Tian
    # 2019), and it made a 3-game update 0.68x the time (54 against 79 ms, batch 64, one
    # thread; bench/learning.md, session 15).
    model_overrides: tuple[tuple[str, Any], ...] = (
        ("support_size", 50),
        ("image_channels", (16,)),
    )
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(
            SearchConfig(algorithm="gumbel_muzero", num_simulations=8),
            explore_epsilon=0.1,  # random legal actions while collecting, never in evaluation
            # Freeway's exploring actions held for zeta(2)-distributed runs: its far side is 27
            # consecutive "up" steps away, which single random steps almost never string
            # together (alone at 20k steps, seed 0: 8.1 with holds, 0.25 at 10k without; they
            # cost Breakout ~1.5 points at 15k, so the other games take single steps).
            task_explore_holds=(("minatar/Freeway", 2.0),),
            # 0.38-0.49x the time per search of 2 envs per game once compiled, ~30 s to compile
            # each batch layout (bench/compile_acting.py; bench/README.md).
            compile_step=True,
        )
    )
    # A MinAtar step is ~1.1 KB in replay (a 1 KB grid at most, Seaquest's 10x10x10, plus
    # search data): 50k steps per game is under 300 MB for the five.
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(capacity=50_000, priority_exponent=0.6)
    )
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(batch_size=64, lr=1e-3))
    warmup_env_steps: int = 2_000
    replay_ratio: float = 0.25  # one update of 64 sequences per 4 agent steps
    eval_at_start: bool = True  # the first row of the closing table: the untrained model
    eval_every: int = 50_000
    eval_episodes: int = 4
    eval_max_steps: int = 10_000  # = minatar.max_episode_steps: every episode finishes
    log_every_s: float = 15.0
    run_dir: str = "runs/minatar"
    checkpoint_minutes: float = 5.0
    resources: Resources = field(default_factory=lambda: TWO_CORES)


if __name__ == "__main__":
    raise SystemExit(main(MinAtarConfig))

"""Continuous control at published sample efficiency: one DeepMind Control task alone, 100k agent
steps, one update of 64 sequences per agent step (TD-MPC2's ratio) and TD-MPC2's action repeat
of 2 (episodes of 500 agent steps, 1,000 simulator steps; returns on the 0-1000 scale), so the
last evaluation lines up with the 100k-step rows of ``../shared/baselines/dmc18_tdmpc2.csv``
(TD-MPC2, DreamerV3, SAC; bench/learning.md). The tiny model on 2 CPU cores.

    python launch/dmc100k.py                                            # dmc/cartpole-balance
    python launch/dmc100k.py --set 'tasks=["dmc/walker-walk"]' --set run_dir=runs/walker-walk
    python launch/dmc100k.py --resume runs/dmc100k        # continue (the clock goes on as well)
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.dps_controller import DpsSchedule
from mtrl.agents.replay import ReplayConfig
from mtrl.envs.settings import DmcSettings, EnvSettings
from mtrl.runtime import main
from mtrl.runtime.presets import Laptop, laptop_acting


@dataclass(frozen=True)
class Dmc100kConfig(Laptop):
    tasks: tuple[str, ...] = ("dmc/cartpole-balance",)
    env_steps: int = 100_000
    env: EnvSettings = field(default_factory=lambda: EnvSettings(dmc=DmcSettings(action_repeat=2)))
    acting: ActingConfig = field(default_factory=lambda: laptop_acting(num_simulations=16))
    # Every step of the run stays in replay (TD-MPC2 keeps all of them too).
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(capacity=100_000, priority_exponent=0.6)
    )
    replay_ratio: float = 1.0
    warmup_env_steps: int = 2_500  # TD-MPC2's seeding: 5 episodes' worth
    # Never marked solved: a solved task leaves collection, and the run must use its budget.
    dps: DpsSchedule = field(default_factory=lambda: DpsSchedule(mark_solved=False))
    eval_at_start: bool = True
    eval_every: int = 20_000  # and at the end
    eval_episodes: int = 8
    log_every_s: float = 60.0
    run_dir: str = "runs/dmc100k"
    checkpoint_minutes: float = 10.0


if __name__ == "__main__":
    raise SystemExit(main(Dmc100kConfig))

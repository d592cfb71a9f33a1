"""The 3-task proxy of the learning benchmark: ``classic/CartPole``, ``dmc/cartpole-balance``
and the text game ``text/tw-simple-dense`` in one tiny model, 30 minutes of training on 2 CPU
cores. ``bench/learning.py`` runs it over seeds and single-task, and holds its bars (CartPole
400, cartpole-balance 600, all 8 points of the text game, which random play never solves;
bench/learning.md).

    python launch/proxy3.py --set seed=1 --set run_dir=runs/proxy3-seed1
    python bench/learning.py run --launcher proxy3 --seeds 0 1 2 3 --single steps
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.dps_controller import DpsSchedule
from mtrl.runtime import main
from mtrl.runtime.presets import Laptop, laptop_acting

TASKS = ("classic/CartPole", "dmc/cartpole-balance", "text/tw-simple-dense")


@dataclass(frozen=True)
class Proxy3Config(Laptop):
    tasks: tuple[str, ...] = TASKS
    max_seconds: float = 1_800.0  # the budget: 30 minutes of wall time, evaluations included
    env_steps: int = 1_000_000  # caps a much faster machine
    acting: ActingConfig = field(default_factory=lambda: laptop_acting(num_simulations=16))
    warmup_env_steps: int = 500
    # No task is ever marked solved, so all three are collected and trained for the whole
    # run: a solved task leaves collection (DPS), and session 4 measured CartPole falling
    # 500 -> ~10 within 8 minutes after it did.
    dps: DpsSchedule = field(default_factory=lambda: DpsSchedule(mark_solved=False))
    eval_every: int = 25_000  # and at the end
    eval_episodes: int = 8
    log_every_s: float = 30.0
    run_dir: str = "runs/proxy3"
    checkpoint_minutes: float = 10.0


if __name__ == "__main__":
    raise SystemExit(main(Proxy3Config))

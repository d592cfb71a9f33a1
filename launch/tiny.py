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

from mtrl.agents.acting import ActingConfig
from mtrl.runtime import main
from mtrl.runtime.presets import Laptop, laptop_acting


@dataclass(frozen=True)
class TinyConfig(Laptop):
    tasks: tuple[str, ...] = (
        "classic/CartPole",
        "dmc/cartpole-balance",
        "text/tw-coin_collector-l1",
    )
    # The budget is wall time: 4 minutes of training (start-up and the two evaluations come
    # on top); env_steps only caps a much faster machine.
    max_seconds: float = 240.0
    env_steps: int = 200_000
    acting: ActingConfig = field(default_factory=lambda: laptop_acting(num_simulations=8))
    warmup_env_steps: int = 400
    eval_at_start: bool = True  # the first row of the closing table: the untrained model
    eval_every: int = 0  # and the end
    eval_episodes: int = 4
    log_every_s: float = 15.0
    run_dir: str = "runs/tiny"
    checkpoint_minutes: float = 2.0


if __name__ == "__main__":
    raise SystemExit(main(TinyConfig))

"""Atari + DMC + text in one model: the heterogeneous setting this project is for.

Eight Atari games (pixels, 18 actions), the 18 DMC tasks (state vectors, continuous) and
the text suite share one world model, one batched search and one learner. Per-domain
settings as in ``atari8.py``/``dmc18.py``/``text.py`` (ScaleZero, Pu et al. 2025; UniZero,
arXiv:2406.10667): 50 simulations, 400k env steps per task, AdamW lr 1e-4. The model,
learner, topology and resources are Atari's (``PaperScaleAtari`` in
``mtrl/runtime/presets.py``, sized for 26 games); the search samples 20 actions for DMC.

    ray job submit --working-dir . -- python launch/mixed.py
"""

from dataclasses import dataclass, field

from mtrl.agents.acting import ActingConfig
from mtrl.agents.replay import ReplayConfig
from mtrl.runtime import main
from mtrl.runtime.presets import PaperScaleAtari
from mtrl.search import SearchConfig

TASKS = 8 + 18 + 4


@dataclass(frozen=True)
class MixedConfig(PaperScaleAtari):
    tasks: tuple[str, ...] = ("atari8", "dmc18", "text")
    env_steps: int = 400_000 * TASKS
    acting: ActingConfig = field(
        default_factory=lambda: ActingConfig(
            SearchConfig(algorithm="muzero", num_simulations=50), sampled_actions=20
        )
    )
    # Atari's replay, with the text games discounted at 0.9 (see launch/text.py).
    replay: ReplayConfig = field(
        default_factory=lambda: ReplayConfig(
            capacity=50_000, unroll_steps=10, n_step=5, task_discounts=(("text", 0.9),)
        )
    )
    warmup_env_steps: int = 2_000 * TASKS
    run_dir: str = "runs/mixed"


if __name__ == "__main__":
    raise SystemExit(main(MixedConfig))

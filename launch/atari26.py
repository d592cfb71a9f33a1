"""Atari 26 (the Atari 100k game set) with one world model: the ScaleZero setting.

Paper-scale defaults: ScaleZero (Pu et al. 2025, "One Model for All Tasks: Leveraging
Efficient World Models in Multi-Task Planning") on UniZero's world model (Pu et al. 2024,
arXiv:2406.10667): 768-d 4-layer transformer with MoE, 50 simulations, 400k env steps per
task, AdamW lr 1e-4, discount 0.997, 5-step TD, unroll 10, 64x64 RGB frames, replay ratio
0.25. The settings Atari runs share are written out in ``mtrl/runtime/presets.py``
(``PaperScaleAtari``); this script adds the game set, budget and folder. Needs GPUs;
``--set`` changes any field.

    ray job submit --working-dir . -- python launch/atari26.py
    python launch/atari26.py --set num_workers=2 --set env_steps=100000   # a smaller try
"""

from dataclasses import dataclass

from mtrl.runtime import main
from mtrl.runtime.presets import PaperScaleAtari

TASKS = 26


@dataclass(frozen=True)
class Atari26Config(PaperScaleAtari):
    tasks: tuple[str, ...] = ("atari26",)  # a suite name expands to its tasks
    env_steps: int = 400_000 * TASKS  # 400k agent steps per task
    warmup_env_steps: int = 2_000 * TASKS
    run_dir: str = "runs/atari26"


if __name__ == "__main__":
    raise SystemExit(main(Atari26Config))

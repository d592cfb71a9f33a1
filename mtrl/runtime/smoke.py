"""``--smoke``: any launcher's config scaled down to a 2-core CPU laptop, keeping its tasks.

Every part of a run still happens (collection of every task, batched search, replay, a few
learner updates, a final evaluation and checkpoint), with the tiny model, one actor of each
kind and CPU resources that fit two cores, in well under a minute after the environments
start. The scale-down is a list of ``--set`` overrides placed before the user's, so the
user's own ``--set`` still wins and ``--print-config`` shows the result.
"""

from __future__ import annotations

import json
from dataclasses import fields

from mtrl.envs.registry import resolve_tasks
from mtrl.runtime.config import RunConfig
from mtrl.runtime.presets import TWO_CORES

COLLECT_CALLS = 3  # the budget: one call of warm-up, then two while the learner trains
SIMULATIONS = 4
REPLAY_ROWS = 1_000  # per task
SNAPSHOT_ROWS = 200  # per task in the checkpoint
EVAL_STEPS = 20  # batched steps: long episodes (Atari) stay unfinished and are skipped


def smoke_overrides(config: RunConfig, resumed: bool = False) -> list[str]:
    """The ``--set`` pairs ``--smoke`` stands for, for ``config`` (its task count sets the
    budget). A resumed run keeps its folder; a new one writes to ``<run_dir>-smoke``."""
    tasks = len(resolve_tasks(config.tasks))
    per_call = config.steps_per_call * tasks  # agent steps of one collect call, one env each
    pairs = [
        "model_preset=tiny",
        "num_workers=1",
        "worker_tasks=[]",
        "num_search_servers=1",
        "num_replay_shards=1",
        "num_learners=1",
        "envs_per_task=1",
        f"env_steps={COLLECT_CALLS * per_call}",
        f"warmup_env_steps={per_call}",
        # Two updates after the second collect call, not replay_ratio's hundreds; no slack,
        # so the worker waits for them and the run always trains.
        f"replay_ratio={2 / per_call}",
        "replay_ratio_slack=0",
        "updates_per_call=2",
        f"acting.search.num_simulations={min(config.acting.search.num_simulations, SIMULATIONS)}",
        "acting.compile_step=false",  # compiling takes longer than the whole smoke run
        f"learner.batch_size={2 * tasks}",  # two sequences per task
        "learner.bf16=false",  # bfloat16 autocast is for GPUs
        # No conflict metrics: they cost one backward pass per task (26 for atari26).
        "learner.gradients.metrics_every=0",
        f"replay.capacity={min(config.replay.capacity, REPLAY_ROWS)}",
        f"replay_snapshot_rows={min(config.replay_snapshot_rows, SNAPSHOT_ROWS)}",
        "eval_every=0",
        "eval_episodes=1",
        f"eval_max_steps={EVAL_STEPS}",
        "log_every_s=5",
        # Every resource as on two cores: no GPU, no custom ones (node placement is a cluster's).
        *(
            f"resources.{f.name}={json.dumps(getattr(TWO_CORES, f.name))}"
            for f in fields(config.resources)
        ),
    ]
    if not resumed:
        pairs.append(f"run_dir={config.run_dir.rstrip('/')}-smoke")
    return pairs

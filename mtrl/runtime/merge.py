"""``mtrl merge``: one checkpoint from a base and experts fine-tuned from it (``init_from``).

The merged model covers the union of the experts' tasks (in the base's task order, then any
task new to the base). Its parameters come from three places:

* **per-task parameters** (``WorldModel.task_layout``: task embeddings, per-task encoders,
  action-table rows, continuous-action linears, per-task heads) from the expert that owns the
  task, moved by task id as fine-tuning moves them (``mtrl.runtime.finetune``);
* **shared parameters** merged from the experts' task vectors by the chosen method
  (``mtrl.world_models.merging``, or AdaMerging's learned coefficients,
  ``mtrl.runtime.adamerging``). An expert that lacks a shared module (no text task, so no
  text encoder) contributes a zero task vector to it. DPS's LoRA adapters are per stage and
  shared by every task, so they are merged like any shared parameter;
* everything a run needs besides (learner and optimiser, DPS, counters) starts fresh, as a
  resumed run of the merged tasks would need it; the replay snapshot of each task is its
  owner's. The counters add up the experts' env steps to the base's, so comparisons at equal
  total env steps stay honest.

The result is an ordinary checkpoint in ``RUN_DIR/checkpoints``: ``mtrl eval``, ``--resume``
and ``init_from`` take it. Experts whose model differs from the base's (another config, a
shared tensor of another shape, a module the base never had) are refused with the mismatch
named; so is a task owned by two experts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtrl.agents.dps_controller import DpsController
from mtrl.agents.learner import Learner
from mtrl.envs.registry import resolve_tasks
from mtrl.overrides import from_json
from mtrl.runtime import checkpoint as ckpt
from mtrl.runtime.config import RunConfig
from mtrl.runtime.finetune import finetune_state, layout_of
from mtrl.runtime.learner_actor import learner_state
from mtrl.runtime.topology import resolve_run_tasks
from mtrl.world_models import WorldModel, WorldModelConfig
from mtrl.world_models import merging as methods
from mtrl.world_models.task_layout import grid

METHODS = ("task_arithmetic", "ties", "consensus", "adamerging")


@dataclass(frozen=True)
class MergeConfig:
    """How to merge; each method reads its own fields (defaults from the papers)."""

    method: str = "ties"
    scale: float = 1.0  # on the merged task vector (task arithmetic, TIES, consensus)
    ties_keep: float = 0.2  # TIES: share of each task vector kept (Yadav et al.: top 20 %)
    consensus_min_tasks: int = 2  # consensus: masks that must agree on a parameter
    consensus_threshold: float = 0.4  # TALL masks' lambda (Wang et al.: 0.2-0.6)
    ada_steps: int = 100  # AdaMerging: Adam steps on the coefficients
    ada_lr: float = 1e-3
    ada_rows: int = 64  # replay rows per task per step
    ada_init: float = 0.3  # initial coefficient of every task vector and layer (the paper's)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown merge method {self.method!r}; valid: {', '.join(METHODS)}")


@dataclass(frozen=True)
class Inputs:
    base: dict[str, Any]
    experts: list[dict[str, Any]]
    paths: list[Path]  # of the experts
    owner: dict[str, int]  # task -> expert index
    tasks: tuple[str, ...]  # of the merged model


def merge(base: Path, experts: list[Path], run_dir: Path, config: MergeConfig) -> Path:
    """Write the merged checkpoint into ``run_dir/checkpoints``; returns its path. ``base``
    and ``experts`` are checkpoint files or run folders (their newest readable checkpoint)."""
    if ckpt.latest_checkpoint(run_dir) is not None:  # before any work, and nothing is touched
        raise ckpt.CheckpointError(f"{run_dir} already holds checkpoints: choose another --out")
    inputs = load_inputs(base, experts)
    run_config = merged_run_config(inputs, run_dir)
    model_config = WorldModelConfig(**inputs.base["model"]["config"])
    model = WorldModel(resolve_run_tasks(run_config), model_config)
    model.load_state_dict(merged_state(inputs, model, config))
    return write(inputs, model, run_config, config)


def merged_run_config(inputs: Inputs, run_dir: Path) -> RunConfig:
    """The base's run config on the merged tasks (settings naming other tasks dropped)."""
    config = from_json(RunConfig, inputs.base["config"])
    tasks = [spec.id for spec in resolve_tasks(inputs.tasks)]
    suites = {t.split("/")[0] for t in tasks}
    discounts = tuple((k, v) for k, v in config.replay.task_discounts if k in tasks or k in suites)
    return replace(
        config,
        tasks=inputs.tasks,
        targets=tuple((t, v) for t, v in config.targets if t in tasks),
        replay=replace(config.replay, task_discounts=discounts),
        worker_tasks=(),
        run_dir=str(run_dir),
        init_from="",
    )


def load_inputs(base: Path, experts: list[Path]) -> Inputs:
    if not experts:
        raise ValueError("merge needs at least one expert checkpoint")
    # A run folder stands for its newest readable checkpoint, as with --resume.
    base = ckpt.resolve_resume(base)
    experts = [ckpt.resolve_resume(path) for path in experts]
    base_state = ckpt.read_checkpoint(base)
    states = [ckpt.read_checkpoint(path) for path in experts]
    for path, state in zip(experts, states, strict=True):
        _check_same_base(base_state, state, path)
    owner: dict[str, int] = {}
    for index, state in enumerate(states):
        for task in state["tasks"]:
            if task in owner:
                raise ValueError(
                    f"task {task} is in experts {experts[owner[task]]} and {experts[index]}: "
                    "give each task to one expert"
                )
            owner[task] = index
    ordered = [t for t in base_state["tasks"] if t in owner]
    tasks = tuple(ordered + [t for t in owner if t not in ordered])
    return Inputs(base_state, states, list(experts), owner, tasks)


def _check_same_base(base: dict[str, Any], expert: dict[str, Any], path: Path) -> None:
    ours = base["model"]["config"]
    diffs = ckpt.model_config_diffs(ours, expert["model"]["config"])
    if diffs:
        raise ValueError(f"expert {path} was not fine-tuned from this base (model config {diffs})")
    base_weights, weights = base["model"]["state"], expert["model"]["state"]
    layout = layout_of(list(expert["tasks"]), ours)
    for key, value in weights.items():
        if key in layout:
            continue
        if key not in base_weights:
            raise ValueError(
                f"expert {path} has parameter {key}, which the base has not (a module the base "
                "never trained): train the base on a task of that kind first"
            )
        if base_weights[key].dim() != value.dim():
            raise ValueError(
                f"expert {path} parameter {key} has shape {tuple(value.shape)}, the base's "
                f"{tuple(base_weights[key].shape)}: not fine-tuned from this base"
            )


def merged_state(inputs: Inputs, model: WorldModel, config: MergeConfig) -> dict[str, torch.Tensor]:
    layout = model.task_layout()
    state, _ = finetune_state(inputs.base, model)  # the base on the merged tasks' layout
    base_weights = inputs.base["model"]["state"]
    shared = [k for k in state if k not in layout and k in base_weights]
    _take_owned_parts(inputs, model, state)
    # Shared tensors padded to a task set's widest action or observation (the policy head's
    # outputs, ...) differ in size between task sets: each is fitted to the merged model's
    # shape by its common corner, where the padded entries mean the same thing.
    base = {k: fit(base_weights[k], state[k]) for k in shared}
    experts = [
        {
            k: fit(e["model"]["state"][k], base[k]) if k in e["model"]["state"] else base[k]
            for k in shared
        }
        for e in inputs.experts
    ]
    deltas = methods.task_vectors(base, experts)
    if config.method == "adamerging":
        from mtrl.runtime.adamerging import adamerging

        state.update(adamerging(model, state, base, deltas, inputs, config))
    else:
        state.update(_merge_shared(base, deltas, config))
    return state


def fit(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``like`` with its corner shared with ``value`` (same rank) taken from ``value``."""
    out = like.clone()
    corner = tuple(slice(0, min(a, b)) for a, b in zip(value.shape, like.shape, strict=True))
    out[corner] = value[corner].to(out.dtype)
    return out


def _take_owned_parts(inputs: Inputs, model: WorldModel, state: dict[str, torch.Tensor]) -> None:
    """Each task's per-task entries from its owner, moved by task id."""
    layout, names = model.task_layout(), model.tasks.names
    for index, expert in enumerate(inputs.experts):
        mapped, report = finetune_state(expert, model)
        mine = [t for t, name in enumerate(names) if inputs.owner[name] == index]
        lost = [f for f in report["fresh"] if any(f.endswith(f"[{names[t]}]") for t in mine)]
        if lost:
            raise ValueError(f"expert {inputs.paths[index]}: per-task entries {lost} do not fit")
        for key, parts in layout.items():
            for task in mine:
                if task in parts:
                    where = grid(parts[task])
                    state[key][where] = mapped[key][where]


def _merge_shared(
    base: dict[str, torch.Tensor], deltas: list[dict[str, torch.Tensor]], config: MergeConfig
) -> dict[str, torch.Tensor]:
    if config.method == "task_arithmetic":
        return methods.task_arithmetic(base, deltas, config.scale)
    if config.method == "ties":
        return methods.ties(base, deltas, config.ties_keep, config.scale)
    return methods.consensus(
        base, deltas, config.consensus_min_tasks, config.consensus_threshold, config.scale
    )


def write(inputs: Inputs, model: WorldModel, run_config: RunConfig, config: MergeConfig) -> Path:
    names = list(model.tasks.names)
    learner = Learner(model, model.tasks, run_config.learner, run_config.acting.sampled_actions)
    rng = np.random.default_rng(config.seed)
    dps = DpsController(names, run_config.task_targets(model.tasks.specs), run_config.dps)
    owned = {task: inputs.experts[index]["replay"] for task, index in inputs.owner.items()}
    replay = {task: snapshots[task] for task, snapshots in owned.items() if task in snapshots}
    steps = int(inputs.base["counters"]["env_steps"]) + sum(
        int(e["counters"]["env_steps"]) for e in inputs.experts
    )
    counters = {"env_steps": steps, "updates": 0, "episodes": 0, "evaluations": 0}
    state = ckpt.run_state(
        names, run_config, learner_state(model, learner, rng), dps.state_dict(), counters, replay
    )
    state["merge"] = {
        "method": config.method,
        "config": asdict(config),
        "experts": [str(p) for p in inputs.paths],
        "owner": dict(inputs.owner),
    }
    return ckpt.write_checkpoint(Path(run_config.run_dir), state, steps, keep=1)

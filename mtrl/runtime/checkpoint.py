"""Run checkpoints: complete, atomic, loaded safely, mismatches named in one line.

A checkpoint is one ``torch.save`` file of tensors and plain data (``weights_only=True``
loads it). It keeps the keys every mtrl checkpoint has (``version``, ``tasks``, ``config`` as
the config dataclass's JSON, ``model`` = ``WorldModel.checkpoint()``) plus what resuming a Ray
run needs: learner state (target network, optimizer, aggregator, DPS stages, update count),
the DPS controller, counters, RNG states, the task id -> name table and a bounded replay
snapshot per task. Files are ``<run_dir>/checkpoints/ckpt-<env_steps>.pt``, written to a
temporary name and renamed; the newest ``keep`` are kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from mtrl.overrides import to_json
from mtrl.run_folder import checkpoint_dir, checkpoint_name, list_checkpoints
from mtrl.run_folder import latest_checkpoint as latest_checkpoint  # re-exported
from mtrl.world_models.config import WorldModelConfig

log = logging.getLogger(__name__)
TrainEpisode = tuple[float, str, float]  # wall seconds at its end, task, return

# One layout for every run, whichever mode wrote it (``mtrl.runtime.driver``). The old
# single-process layout (``checkpoint.pt`` without ``counters``) is refused as incomplete.
CHECKPOINT_VERSION = 1
REQUIRED = ("version", "tasks", "config", "model", "learner", "dps", "counters")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming why."""


def run_state(
    tasks: list[str],
    config: Any,
    learner: dict[str, Any],
    dps: dict[str, Any],
    counters: dict[str, float],
    replay: dict[str, Any],
    evaluations: list[dict[str, Any]] | None = None,
    train_episodes: Iterable[TrainEpisode] = (),
) -> dict[str, Any]:
    """A checkpoint's contents, the one layout (``learner``: ``learner_state``'s model,
    learner and RNG states; ``config``: the run's config dataclass; ``evaluations``: the
    run's evaluation records so far, as JSON text, and ``train_episodes`` its training
    episodes as tensors, both of which a resumed run's results carry on)."""
    return {
        "version": CHECKPOINT_VERSION,
        "tasks": tasks,
        "task_table": dict(enumerate(tasks)),
        "config": to_json(config),
        **learner,
        "dps": dps,
        "counters": counters,
        "driver_torch_rng": torch.get_rng_state(),
        "replay": replay,
        "evaluations": json.dumps(evaluations or []),
        "train_episodes": pack_episodes(train_episodes, tasks),
    }


def pack_episodes(episodes: Iterable[TrainEpisode], tasks: list[str]) -> dict[str, torch.Tensor]:
    """(seconds, task name, return) tuples -> three columns; tensors, not JSON: a run keeps up
    to 200k of them (``results.TRAIN_EPISODES_KEPT``), ~4 MB this way."""
    rows = list(episodes)
    index = {name: i for i, name in enumerate(tasks)}
    return {
        "seconds": torch.tensor([r[0] for r in rows], dtype=torch.float64),
        "task": torch.tensor([index[r[1]] for r in rows], dtype=torch.int32),
        "return": torch.tensor([r[2] for r in rows], dtype=torch.float64),
    }


def unpack_episodes(state: dict[str, Any]) -> list[TrainEpisode]:
    """``pack_episodes`` undone; checkpoints from before it was added hold none."""
    packed, tasks = state.get("train_episodes"), state["tasks"]
    if packed is None:
        return []
    columns = (packed["seconds"].tolist(), packed["task"].tolist(), packed["return"].tolist())
    return [(s, tasks[t], r) for s, t, r in zip(*columns, strict=True)]


def write_checkpoint(run_dir: Path, state: dict[str, Any], env_steps: int, keep: int) -> Path:
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(env_steps)
    temp = folder / f".{path.name}.{os.getpid()}.tmp"
    torch.save(state, temp)
    os.replace(temp, path)  # atomic: readers see the old file set or the complete new file
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def resolve_resume(target: str | Path) -> Path:
    """``--resume`` accepts a checkpoint file (used as it is: an unreadable one is an error) or
    a run folder: its newest readable checkpoint. Newer unreadable ones (a torn write, a full
    disk) are moved into ``checkpoints/unreadable/``, kept for inspection and out of the way
    of the run's pruning, with a one-line warning each."""
    target = Path(target)
    if target.is_file():
        return target
    found = list_checkpoints(target)
    if not found:
        raise CheckpointError(
            f"no checkpoint to resume in {target} (expected {target}/checkpoints/ckpt-*.pt)"
        )
    for path in reversed(found):
        try:
            read_checkpoint(path)
        except CheckpointError as error:
            aside = path.parent / "unreadable" / path.name
            aside.parent.mkdir(exist_ok=True)
            os.replace(path, aside)
            log.warning("skipped %s (moved to %s): %s", path.name, aside, error)
            continue
        return path
    raise CheckpointError(f"no readable checkpoint to resume in {target}; see the warnings")


def read_checkpoint(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:
        older = [p.name for p in list_checkpoints(path.parent.parent) if p != path]
        hint = f"; older checkpoints you can pass to --resume: {older}" if older else ""
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not an mtrl checkpoint ({first}){hint}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} is not an mtrl checkpoint (not a dict)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {state.get('version')!r}, "
            f"this mtrl reads version {CHECKPOINT_VERSION}"
        )
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: missing {missing}")
    return state


def check_compatible(
    path: Path, state: dict[str, Any], tasks: list[str], model_config: dict[str, Any]
) -> None:
    """Resume needs the same tasks (in order) and the same model shape."""
    if list(state["tasks"]) != tasks:
        raise CheckpointError(
            f"checkpoint {path} tasks differ: checkpoint has {list(state['tasks'])}, this run "
            f"has {tasks} (use init_from=... to fine-tune on other tasks)"
        )
    diffs = model_config_diffs(state["model"]["config"], model_config)
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} model shape differs (checkpoint vs this run): {diffs}"
        )


def model_config_diffs(first: dict[str, Any], second: dict[str, Any]) -> str:
    """``"key: a vs b; ..."`` for every model-config key whose values differ, or "" when the two
    build the same model. Tuples and lists compare equal. A key one side lacks takes the
    field's default, as ``WorldModelConfig(**config)`` rebuilds it: a field added after a
    checkpoint was written defaults to what the model did before it existed; a key that is no
    field at all counts as a difference."""
    defaults = json.loads(json.dumps(dataclasses.asdict(WorldModelConfig())))
    a, b = ({**defaults, **json.loads(json.dumps(side))} for side in (first, second))
    keys = sorted(set(a) | set(b))
    return "; ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys if a.get(k) != b.get(k))


def saved_config(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(state["config"])

"""The Ray runtime: actors (rollout workers, search servers, replay shards, learner,
evaluator), the driver loop, run checkpoints and the launch helpers ``launch/*.py`` use.
Ray stays in this package; ``mtrl.agents`` holds the parts it wires together.

Names are imported on first use: actor processes import ``mtrl.runtime.actors`` and the
like, and should not pay for the driver's TensorBoard imports at every (re)start.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "CheckpointError": "checkpoint",
    "latest_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint",
    "Resources": "config",
    "RunConfig": "config",
    "apply_overrides": "config",
    "from_json": "config",
    "to_json": "config",
    "Driver": "driver",
    "RunResult": "driver",
    "connect": "launch",
    "main": "launch",
    "run": "launch",
    "summary": "launch",
    "train_local": "launch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mtrl.runtime' has no attribute {name!r}")
    return getattr(import_module(f"mtrl.runtime.{_EXPORTS[name]}"), name)

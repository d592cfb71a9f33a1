"""The launch scripts and their config classes, for the tests that load every script's config
(tests/launch: shape and overrides; tests/runtime: a real run of each big one)."""

import importlib
from pathlib import Path

from mtrl.runtime import RunConfig

LAUNCH = Path(__file__).resolve().parents[1] / "launch"
SCRIPTS = {
    "tiny": "TinyConfig",
    "atari26": "Atari26Config",
    "atari8": "Atari8Config",
    "dmc18": "Dmc18Config",
    "text": "TextConfig",
    "mixed": "MixedConfig",
}


def config_class(name: str) -> type[RunConfig]:
    """Script ``name``'s config class; ``LAUNCH`` must be on sys.path (the scripts import each
    other, as when run)."""
    return getattr(importlib.import_module(name), SCRIPTS[name])

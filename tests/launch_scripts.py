"""The launch scripts and their config classes, for the tests that load every script's config
(tests/launch: shape and overrides; tests/runtime: a real run of each big one)."""

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from mtrl.runtime import RunConfig

LAUNCH = Path(__file__).resolve().parents[1] / "launch"
SCRIPTS = {
    "tiny": "TinyConfig",
    "atari26": "Atari26Config",
    "atari8": "Atari8Config",
    "dmc18": "Dmc18Config",
    "text": "TextConfig",
    "mixed": "MixedConfig",
    "minatar5": "MinAtarConfig",
    "proxy3": "Proxy3Config",
    "dmc100k": "Dmc100kConfig",
}


@cache
def load_script(name: str) -> ModuleType:
    """``launch/<name>.py`` loaded from its file, once per session (so its config class is one
    class); nothing is put on sys.path: the scripts import only the package."""
    spec = importlib.util.spec_from_file_location(f"launch_{name}", LAUNCH / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as an import would: dataclasses look the module up
    spec.loader.exec_module(module)
    return module


def config_class(name: str) -> type[RunConfig]:
    """Script ``name``'s config class."""
    return getattr(load_script(name), SCRIPTS[name])

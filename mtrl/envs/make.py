"""Create the adapter for any registered task."""

from __future__ import annotations

from mtrl.envs.base import TaskEnv
from mtrl.envs.registry import get_task
from mtrl.envs.settings import EnvSettings
from mtrl.envs.spec import TaskSpec


def make_env(
    task: str | TaskSpec, settings: EnvSettings | None = None, seed: int | None = None
) -> TaskEnv:
    """An environment of ``task`` (an id or a spec) with the suite's standard preprocessing.

    Simulator packages are imported here, not at ``import mtrl``, so the registry stays cheap.
    """
    spec = get_task(task) if isinstance(task, str) else task
    settings = settings or EnvSettings()
    if spec.suite == "atari":
        from mtrl.envs.atari import AtariEnv

        return AtariEnv(spec, settings.atari, seed)
    if spec.suite == "dmc":
        from mtrl.envs.dmc import DmcEnv

        return DmcEnv(spec, settings.dmc, seed)
    if spec.suite == "classic":
        from mtrl.envs.classic import ClassicEnv

        return ClassicEnv(spec, seed)
    if spec.suite == "minatar":
        from mtrl.envs.minatar import MinAtarEnv

        return MinAtarEnv(spec, settings.minatar, seed)
    if spec.suite == "text":
        from mtrl.envs.text import make_text_env

        return make_text_env(spec, settings.text, seed)
    raise ValueError(f"no adapter for suite {spec.suite!r} (task {spec.id!r})")

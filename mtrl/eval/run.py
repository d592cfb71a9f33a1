"""``evaluate_checkpoint``: the whole of ``mtrl eval`` behind the command line."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtrl.envs.registry import get_suite, get_task, list_suites
from mtrl.envs.settings import EnvSettings
from mtrl.eval.baselines import load_baselines
from mtrl.eval.checkpoint import LoadedCheckpoint, load_checkpoint
from mtrl.eval.progress import episode_callback, evaluation_progress
from mtrl.eval.report import write_report
from mtrl.eval.results import Episode, build_results
from mtrl.eval.runner import Unit, run_units
from mtrl.search import get_algorithm

DEFAULT_SEEDS = (10_000,)  # the seed of a local run's first evaluation (10_000 + 97 k)


@dataclass(frozen=True)
class EvalOptions:
    tasks: tuple[str, ...] = ()  # task ids or suite names; () = every task of the checkpoint
    episodes: int = 10  # per task and seed
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    temperature: float = 0.0  # what training evaluations use
    baselines: str | None = None  # a bundled column, a CSV / results.json, or None (reference)
    out: str = "eval"
    video: bool = False
    workers: int = 1
    noop_max: int | None = None  # Atari no-op starts; None: the run's atari.eval_noop_max (30)

    def check(self) -> None:
        if self.episodes < 1:
            raise ValueError(f"bad --episodes {self.episodes}: expected a positive integer")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"bad --seeds {list(self.seeds)}: expected distinct integers")
        if self.temperature < 0:
            raise ValueError(f"bad --temperature {self.temperature}: expected >= 0")
        if self.workers < 1:
            raise ValueError(f"bad --workers {self.workers}: expected a positive integer")
        if self.noop_max is not None and self.noop_max < 0:
            raise ValueError(f"bad --noop-max {self.noop_max}: expected an integer >= 0")


def select_tasks(ckpt: LoadedCheckpoint, names: tuple[str, ...]) -> tuple[str, ...]:
    """The requested tasks in the checkpoint's order (one batch, as in training)."""
    if not names:
        return ckpt.tasks.names
    wanted: list[str] = []
    for name in names:
        if "/" not in name and name in list_suites():
            wanted += [spec.id for spec in get_suite(name)]
        else:
            wanted.append(name)
    ckpt.check_tasks(wanted)
    return tuple(t for t in ckpt.tasks.names if t in wanted)


def temperature_note(ckpt: LoadedCheckpoint, temperature: float) -> str:
    """What the checkpoint's search algorithm plays at ``temperature``, in words."""
    return get_algorithm(ckpt.acting.search.algorithm).play_note(temperature)


def run_settings(ckpt: LoadedCheckpoint, options: EvalOptions) -> EnvSettings:
    """The checkpoint's env settings with ``--noop-max`` in place (evaluation derives from it)."""
    if options.noop_max is None:
        return ckpt.settings
    return ckpt.settings.with_overrides({"atari.eval_noop_max": options.noop_max})


def atari_protocol(settings: EnvSettings) -> str:
    """What an evaluation episode of an Atari task was, in words (``settings``: evaluation's)."""
    atari = settings.atari
    starts = (
        f"up to {atari.noop_max} random no-ops (1-{atari.noop_max}, uniform) at each start"
        if atari.noop_max
        else "no no-op starts"
    )
    return (
        f"Atari protocol: {starts}, sticky actions p={atari.sticky_action_prob:g}, "
        f"frame skip {atari.frame_skip}, at most {atari.max_frames} frames per episode"
    )


def _meta(
    ckpt: LoadedCheckpoint, tasks: tuple[str, ...], options: EvalOptions, settings: EnvSettings
) -> dict[str, Any]:
    episodes = options.episodes * len(options.seeds)
    protocol = settings.for_evaluation()  # what the episodes ran with
    atari = any(get_task(t).suite == "atari" for t in tasks)
    return {
        "checkpoint": str(ckpt.path),
        "checkpoint_tasks": list(ckpt.tasks.names),
        "env_steps": ckpt.env_steps,
        "score": (
            f"final evaluation of this checkpoint (no averaging over training): {episodes} "
            f"episodes per task ({options.episodes} per seed, seeds {list(options.seeds)}), "
            f"the undiscounted return of each episode's full length"
            + (f"; {atari_protocol(protocol)}" if atari else "")
        ),
        "episodes_per_seed": options.episodes,
        "seeds": list(options.seeds),
        "temperature": options.temperature,
        "temperature_note": temperature_note(ckpt, options.temperature),
        "search": ckpt.config.get("acting", {}).get("search", {}),
        "sampled_actions": ckpt.acting.sampled_actions,
        "discount": ckpt.discount,
        "task_discounts": [list(pair) for pair in ckpt.task_discounts],
        "baselines": options.baselines or "reference",
        "evaluated_tasks": list(tasks),
        "env_settings": dataclasses.asdict(protocol),
        "atari_protocol": atari_protocol(protocol) if atari else None,
    }


def evaluate_checkpoint(
    path: str | Path, options: EvalOptions, say: Callable[[str], None] = print
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Evaluate ``path`` and write the report into ``options.out``: (results, files written)."""
    options.check()
    ckpt = load_checkpoint(path)
    chosen = load_baselines(options.baselines)  # bad baseline input fails before any episode
    tasks = select_tasks(ckpt, options.tasks)
    out = Path(options.out)
    note = temperature_note(ckpt, options.temperature)
    say(
        f"temperature {options.temperature:g} ({note}); search as in training: {ckpt.acting.search}"
    )
    video_dir = str(out / "videos") if options.video else ""
    settings = run_settings(ckpt, options)
    units = [
        Unit(
            tasks,
            options.episodes,
            seed,
            options.temperature,
            video_dir if i == 0 else "",
            settings,
        )
        for i, seed in enumerate(options.seeds)
    ]
    progress = evaluation_progress(len(tasks) * options.episodes * len(options.seeds), tasks)
    try:
        returns = run_units(ckpt, units, options.workers, episode_callback(progress))
    finally:
        progress.close()
    episodes = [
        Episode(task, unit.seed, index, value)
        for task in tasks
        for unit, by_task in zip(units, returns, strict=True)
        for index, value in enumerate(by_task[task])
    ]
    results = build_results(episodes, chosen, _meta(ckpt, tasks, options, settings))
    videos = {p.stem.replace("__", "/"): p for p in sorted((out / "videos").glob("*.*"))}
    files = write_report(results, out, videos if options.video else {})
    say(f"wrote {', '.join(sorted(files))} to {out}")
    return results, files

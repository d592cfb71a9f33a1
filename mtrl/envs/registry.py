"""The task registry and named suites. Task ids never change: checkpoints store them."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from functools import cache
from importlib import resources

from mtrl.envs.spec import ActionSpace, Modality, TaskSpec

ATARI_FRAMES_PER_EPISODE = 108_000  # the standard cap (30 minutes at 60 Hz)
ATARI_FRAME_SKIP = 4
DMC_ENV_STEPS_PER_EPISODE = 1000
# ScaleZero/UniZero repeat DMC actions; pendulum-swingup uses a longer repeat in their setup.
DMC_ACTION_REPEAT = {"pendulum-swingup": 8}
DMC_DEFAULT_ACTION_REPEAT = 4
# A DMC task counts as solved (DPS) at this fraction of TD-MPC2's single-task return at 1M steps.
DMC_TARGET_FRACTION = 0.8

# (domain-task) -> (observation dim, action dim), read off dm_control 1.0.50's suite.
DMC18_DIMS: dict[str, tuple[int, int]] = {
    "acrobot-swingup": (6, 1),
    "cartpole-balance": (5, 1),
    "cartpole-balance_sparse": (5, 1),
    "cartpole-swingup": (5, 1),
    "cartpole-swingup_sparse": (5, 1),
    "cheetah-run": (17, 6),
    "ball_in_cup-catch": (8, 2),
    "finger-spin": (9, 2),
    "finger-turn_easy": (12, 2),
    "finger-turn_hard": (12, 2),
    "hopper-hop": (15, 4),
    "hopper-stand": (15, 4),
    "pendulum-swingup": (3, 1),
    "reacher-easy": (6, 2),
    "reacher-hard": (6, 2),
    "walker-run": (24, 6),
    "walker-stand": (24, 6),
    "walker-walk": (24, 6),
}

# gymnasium classic control: (gym id, obs dim, action space, episode limit, solved threshold).
# Thresholds are gymnasium's registered reward_threshold where it has one.
CLASSIC: dict[str, tuple[str, int, ActionSpace, int, float | None]] = {
    "CartPole": ("CartPole-v1", 4, ActionSpace("discrete", n=2), 500, 475.0),
    "Acrobot": ("Acrobot-v1", 6, ActionSpace("discrete", n=3), 500, -100.0),
    "MountainCar": ("MountainCar-v0", 2, ActionSpace("discrete", n=3), 200, -110.0),
    "Pendulum": ("Pendulum-v1", 3, ActionSpace("continuous", dim=1), 200, None),
}

# MinAtar (Young & Tian 2019; PyPI minatar 1.0.15): game -> (module, channels, action count).
# The action count is the size of the game's own minimal action set (the package's
# ``minimal_action_set()``); channels are its ``state_shape()[2]``. tests/envs check both
# against the installed package.
MINATAR: dict[str, tuple[str, int, int]] = {
    "Breakout": ("breakout", 4, 3),
    "Asterix": ("asterix", 4, 5),
    "Freeway": ("freeway", 7, 3),
    "Seaquest": ("seaquest", 10, 6),
    "SpaceInvaders": ("space_invaders", 6, 4),
}
MINATAR_GRID = 10
MINATAR_MAX_EPISODE_STEPS = 10_000  # ours, not MinAtar's: see MinAtarSettings

ATARI_ACTIONS = 18  # the full action set, the same for every game
ATARI_DEFAULT_OBS = (3, 64, 64)


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("mtrl.envs.data").joinpath(name).read_text()
    return list(csv.DictReader(text.splitlines()))


def _atari_specs() -> list[TaskSpec]:
    specs = []
    for row in sorted(_read_csv("atari26_reference.csv"), key=lambda r: int(r["order"])):
        game = row["task"]
        specs.append(
            TaskSpec(
                id=f"atari/{game}",
                modality=Modality.IMAGE,
                obs_shape=ATARI_DEFAULT_OBS,
                action=ActionSpace("discrete", n=ATARI_ACTIONS),
                max_episode_steps=ATARI_FRAMES_PER_EPISODE // ATARI_FRAME_SKIP,
                action_repeat=ATARI_FRAME_SKIP,
                random_score=float(row["random"]),
                human_score=float(row["human"]),
                target_score=float(row["human"]),
                source=f"ALE/{game}-v5",
            )
        )
    return specs


def _dmc_specs() -> list[TaskSpec]:
    rows = _read_csv("dmc18_reference.csv")
    reference = {row["task"]: float(row["tdmpc2_1000k"]) for row in rows}
    specs = []
    for name, (obs_dim, act_dim) in DMC18_DIMS.items():
        repeat = DMC_ACTION_REPEAT.get(name, DMC_DEFAULT_ACTION_REPEAT)
        specs.append(
            TaskSpec(
                id=f"dmc/{name}",
                modality=Modality.VECTOR,
                obs_shape=(obs_dim,),
                action=ActionSpace("continuous", dim=act_dim),
                max_episode_steps=DMC_ENV_STEPS_PER_EPISODE // repeat,
                action_repeat=repeat,
                max_score=1000.0,
                target_score=round(DMC_TARGET_FRACTION * reference[name], 1),
                source=name.replace("-", "/", 1),
            )
        )
    return specs


def _classic_specs() -> list[TaskSpec]:
    return [
        TaskSpec(
            id=f"classic/{name}",
            modality=Modality.VECTOR,
            obs_shape=(obs_dim,),
            action=action,
            max_episode_steps=limit,
            target_score=threshold,
            source=gym_id,
        )
        for name, (gym_id, obs_dim, action, limit, threshold) in CLASSIC.items()
    ]


def _minatar_specs() -> list[TaskSpec]:
    random = {row["task"]: float(row["random"]) for row in _read_csv("minatar_reference.csv")}
    return [
        TaskSpec(
            id=f"minatar/{name}",
            modality=Modality.IMAGE,
            obs_shape=(channels, MINATAR_GRID, MINATAR_GRID),
            action=ActionSpace("discrete", n=actions),
            max_episode_steps=MINATAR_MAX_EPISODE_STEPS,
            random_score=random[name],
            source=module,
        )
        for name, (module, channels, actions) in MINATAR.items()
    ]


def _text_specs() -> list[TaskSpec]:
    from mtrl.envs.text.games import text_specs

    return text_specs()


@cache
def _registry() -> dict[str, TaskSpec]:
    specs = _atari_specs() + _dmc_specs() + _classic_specs() + _minatar_specs() + _text_specs()
    return {spec.id: spec for spec in specs}


@cache
def _suites() -> dict[str, tuple[str, ...]]:
    from mtrl.envs.text.games import JERICHO_SUITE, TEXT_SUITE, TINY_TEXT_TASK

    atari26 = tuple(s.id for s in _atari_specs())
    return {
        "atari26": atari26,
        "atari8": atari26[:8],
        "dmc18": tuple(f"dmc/{name}" for name in DMC18_DIMS),
        "classic": tuple(f"classic/{name}" for name in CLASSIC),
        "minatar": tuple(f"minatar/{name}" for name in MINATAR),
        "text": TEXT_SUITE,
        "jericho": JERICHO_SUITE,
        "tiny": (
            "atari/Pong",
            "atari/Boxing",
            "dmc/cartpole-swingup",
            "dmc/pendulum-swingup",
            TINY_TEXT_TASK,
            "classic/CartPole",
        ),
    }


def list_tasks() -> list[str]:
    """Every registered task id."""
    return list(_registry())


def list_suites() -> list[str]:
    return list(_suites())


def unknown_names(names: Iterable[str], suites: bool = True) -> list[str]:
    """The names that are no registered task id (nor, with ``suites``, the suite part of one,
    e.g. ``"atari"``): typos in settings keyed by task, which a run refuses."""
    tasks = set(_registry())
    known = tasks | {t.partition("/")[0] for t in tasks} if suites else tasks
    return sorted({name for name in names if name not in known})


def task_setting(overrides: Iterable[tuple[str, float]], spec: TaskSpec, default: float) -> float:
    """``default`` unless a (task id or suite, value) pair of ``overrides`` names ``spec``; the
    task id wins over its suite."""
    table = dict(overrides)
    return table.get(spec.id, table.get(spec.suite, default))


def refuse_unknown(overrides: Iterable[tuple[str, float]], setting: str) -> None:
    """A ``ValueError`` when a pair of the per-task ``setting`` names no registered task or
    suite (one launcher's list may name tasks outside a run; a typo names none)."""
    unknown = unknown_names(key for key, _ in overrides)
    if unknown:
        raise ValueError(
            f"{setting} for unknown tasks or suites: {unknown} (`mtrl tasks` lists them)"
        )


def get_task(task_id: str) -> TaskSpec:
    """The spec of ``task_id``; a ``ValueError`` names the valid ids of the same suite."""
    registry = _registry()
    if task_id in registry:
        return registry[task_id]
    suite = task_id.partition("/")[0]
    same_suite = [t for t in registry if t.startswith(f"{suite}/")]
    choices = same_suite or sorted({t.partition("/")[0] for t in registry})
    what = "tasks in that suite" if same_suite else "suites"
    raise ValueError(f"unknown task {task_id!r}; valid {what}: {', '.join(choices)}")


def get_suite(name: str) -> tuple[TaskSpec, ...]:
    """The tasks of a named suite, in its documented order."""
    suites = _suites()
    if name not in suites:
        raise ValueError(f"unknown suite {name!r}; valid: {', '.join(suites)}")
    return tuple(get_task(task_id) for task_id in suites[name])


def resolve_tasks(names: list[str] | tuple[str, ...]) -> tuple[TaskSpec, ...]:
    """Suites and task ids, in order, without duplicates (``["tiny", "atari/Qbert"]``)."""
    specs: dict[str, TaskSpec] = {}
    for name in names:
        found = get_suite(name) if "/" not in name else (get_task(name),)
        for spec in found:
            specs.setdefault(spec.id, spec)
    if not specs:
        raise ValueError("no tasks given")
    return tuple(specs.values())

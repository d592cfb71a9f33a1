"""Every launch script: a frozen, documented config that round-trips through JSON, takes
``--set`` overrides, and keeps the paper-scale defaults written out in the big ones."""

import ast
import dataclasses
import importlib.util
from pathlib import Path

import pytest
from launch_scripts import LAUNCH, SCRIPTS, config_class, load_script

from mtrl.runtime import RunConfig, from_json, to_json
from mtrl.runtime.launch import build_config, main, parse_args
from mtrl.runtime.smoke import smoke_overrides


@pytest.fixture
def configs() -> dict[str, type[RunConfig]]:
    return {name: config_class(name) for name in SCRIPTS}


def test_each_script_has_a_documented_frozen_config(configs) -> None:
    for name, cls in configs.items():
        module = load_script(name)
        assert module.__doc__ and "launch/" in module.__doc__, name
        config = cls()
        assert dataclasses.is_dataclass(config) and isinstance(config, RunConfig)
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.env_steps = 1  # type: ignore[misc]
        assert from_json(cls, to_json(config)) == config, name


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return found | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


def test_scripts_import_the_package_not_each_other() -> None:
    """A sibling import works only with launch/ on sys.path (as when run as a script), so
    anything loading a launcher by path (bench/runtime.py, these tests) would have to add it."""
    for path in sorted(LAUNCH.glob("*.py")):
        siblings = {m.split(".")[0] for m in imported_modules(path)} & set(SCRIPTS)
        assert not siblings, f"{path.name} imports {sorted(siblings)}"
    bench = (LAUNCH.parent / "bench/runtime.py").read_text()
    assert "sys.path" not in bench, "bench/runtime.py edits sys.path"


def test_paper_scale_defaults(configs) -> None:
    for name in ("atari26", "atari8", "dmc18", "text", "mixed"):
        config = configs[name]()
        assert config.acting.search.num_simulations == 50, name
        assert config.learner.lr == 1e-4, name
        assert config.model_preset == "base", name
    assert configs["atari26"]().env_steps == 400_000 * 26
    assert configs["atari8"]().env_steps == 400_000 * 8


def test_cli_overrides_apply_to_the_script_config(configs) -> None:
    args = parse_args(["--set", "env_steps=1234", "--set", "acting.search.num_simulations=4"])
    config = build_config(configs["tiny"], args)
    assert config.env_steps == 1234 and config.acting.search.num_simulations == 4
    assert config.tasks == configs["tiny"]().tasks


def test_smoke_scales_every_script_to_two_cpus_keeping_its_tasks(configs) -> None:
    for name, cls in configs.items():
        config = build_config(cls, parse_args(["--smoke"]))
        full = cls()
        assert config.tasks == full.tasks and config.model_preset == "tiny", name
        assert config.run_dir == f"{full.run_dir}-smoke", name  # never the real run's folder
        one = (config.num_workers, config.num_search_servers, config.num_replay_shards)
        assert one == (1, 1, 1) and config.num_learners == 1 and config.envs_per_task == 1, name
        res = config.resources
        assert res.search_gpus == res.learner_gpus == res.evaluator_gpus == 0, name
        cpus = res.worker_cpus + res.search_cpus + res.learner_cpus + res.replay_cpus
        assert cpus + res.evaluator_cpus <= 2, name
        assert config.env_steps <= 1_000 and config.warmup_env_steps < config.env_steps, name
        assert config.replay.capacity <= min(full.replay.capacity, 1_000), name
        assert config.acting.search.num_simulations <= 4 and config.eval_episodes <= 1, name
        assert config.learner.bf16 is False, name
    # A resumed run keeps the folder it was resumed from.
    assert not [p for p in smoke_overrides(configs["tiny"](), resumed=True) if "run_dir" in p]
    # The user's --set still wins over --smoke, in either order on the command line.
    for argv in (["--smoke", "--set", "num_workers=2"], ["--set", "num_workers=2", "--smoke"]):
        assert build_config(configs["mixed"], parse_args(argv)).num_workers == 2


def test_smoke_print_config(configs, capsys) -> None:
    assert main(configs["atari26"], ["--smoke", "--print-config"]) == 0
    printed = from_json(RunConfig, capsys.readouterr().out)
    assert printed.model_preset == "tiny" and printed.resources.learner_gpus == 0


def installed_elsewhere(name: str) -> bool:
    """Whether ``import name`` finds a module outside this repo (the tests' own folders are on
    sys.path during a test run: tests/envs/text is not an installed ``text``)."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return False
    found = [spec.origin, *(spec.submodule_search_locations or [])]
    places = [Path(p).resolve() for p in found if p]
    repo = LAUNCH.parent
    return any("site-packages" in p.parts or not p.is_relative_to(repo) for p in places)


def test_no_script_shadows_a_module_the_run_imports() -> None:
    """``python launch/NAME.py`` puts launch/ first on sys.path, so a script named like an
    installed module (``minatar``, ``jericho``) would be imported in its place."""
    shadowing = [name for name in SCRIPTS if installed_elsewhere(name)]
    assert not shadowing, f"launch scripts named like installed modules: {shadowing}"
    assert installed_elsewhere("minatar")  # the check sees the case it is for

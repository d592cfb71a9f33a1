"""The package layering of docs/architecture.md, checked on the source: each package imports
only the packages below it (lazy imports inside functions included), so there are no cycles."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "mtrl"
# What each package may import (docs/architecture.md, "Who may import whom").
# ``overrides`` (config overrides) and ``run_folder`` (where checkpoints live) are leaf
# modules, mtrl/overrides.py and mtrl/run_folder.py.
ALLOWED = {
    "overrides": set(),
    "run_folder": set(),
    "cuda": set(),
    "envs": {"overrides"},
    "search": {"cuda"},
    "world_models": {"envs"},
    "agents": {"envs", "search", "world_models"},
    "eval": {"agents", "envs", "overrides", "run_folder", "search", "world_models"},
    "runtime": {"agents", "envs", "eval", "overrides", "run_folder", "search", "world_models"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("mtrl.") and n.count(".") >= 1}
    return found


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for package, allowed in ALLOWED.items():
        module = ROOT / f"{package}.py"
        paths = [module] if module.exists() else sorted((ROOT / package).rglob("*.py"))
        for path in paths:
            for other in imported_packages(path) - allowed - {package}:
                wrong.append(f"{path.relative_to(ROOT.parent)} imports mtrl.{other}")
    assert not wrong, "\n".join(wrong)


def test_the_table_covers_every_package() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages | {"overrides", "run_folder"} == set(ALLOWED)

"""Per-task baseline scores as data, each with where it comes from.

Sources: the reference scores the task registry carries (Atari human/random, DMC TD-MPC2 at 1M
steps, gymnasium's solved thresholds, text games' maximum scores, MinAtar's random returns as
measured by ``bench/minatar_random.py``: the MinAtar paper, Young & Tian 2019, shows its DQN
and AC(λ) returns only in figures, so no published MinAtar numbers are bundled), published
single-task scores copied from ``shared/baselines`` into ``mtrl/eval/data`` (their source
columns kept), and the user's own runs: a CSV ``task,score,seed`` or a previous
``results.json`` of ``mtrl eval``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from mtrl.envs.registry import get_task, list_tasks
from mtrl.envs.spec import TaskSpec

DEFAULT = "reference"


@dataclass(frozen=True)
class Baseline:
    """One score for one task, and what it is."""

    name: str
    score: float
    source: str


# Published tables: file -> (suite prefix, value columns, per-column source file or None).
PUBLISHED_FILES = {
    "atari26_published.csv": ("atari", "atari26_published_sources.csv"),
    "atari8_unizero_mt_400k.csv": ("atari", None),
    "dmc18_tdmpc2.csv": ("dmc", None),
    "dmc18_unizero_dreamerv3_500k.csv": ("dmc", None),
}
MINATAR_RANDOM_SOURCE = (
    "uniform random policy, mean of 1000 episodes (seeds 0-999), bench/minatar_random.py "
    "[mtrl/envs/data/minatar_reference.csv]"
)
NON_SCORE_COLUMNS = {"task", "source", "notes", "csv_file", "n_seeds"}


def _read(name: str) -> list[dict[str, str]]:
    text = resources.files("mtrl.eval.data").joinpath(name).read_text()
    return list(csv.DictReader(text.splitlines()))


def _column_sources(name: str | None) -> dict[str, str]:
    if name is None:
        return {}
    return {row["column"]: f"{row['source']} ({row['notes']})" for row in _read(name)}


@cache
def published() -> dict[str, dict[str, Baseline]]:
    """Every bundled published column: name -> {task id: baseline}. Summary rows are skipped."""
    known = set(list_tasks())
    tables: dict[str, dict[str, Baseline]] = {}
    for file, (suite, sources_file) in PUBLISHED_FILES.items():
        sources = _column_sources(sources_file)
        for row in _read(file):
            task_id = f"{suite}/{row['task']}"
            if task_id not in known:  # MEAN18, HNS_mean(computed), ...: aggregates, not tasks
                continue
            for column, value in row.items():
                if column in NON_SCORE_COLUMNS or not value:
                    continue
                source = sources.get(column) or f"{row['source']} {row.get('notes', '')}".strip()
                entry = Baseline(column, float(value), f"{source} [mtrl/eval/data/{file}]")
                tables.setdefault(column, {})[task_id] = entry
    return tables


def reference(spec: TaskSpec) -> Baseline | None:
    """The registry's own reference score of a task (the default baseline)."""
    suite = spec.id.partition("/")[0]
    if spec.human_score is not None:
        return Baseline(
            "human", spec.human_score, "human, 30-minute episodes (DQN Zoo atari_data.py)"
        )
    if suite == "dmc" and spec.target_score is not None:
        # The registry's DMC target is 0.8 x TD-MPC2 at 1M steps; report the published number.
        table = published().get("tdmpc2@1000k", {})
        if spec.id in table:
            return table[spec.id]
    if suite == "classic" and spec.target_score is not None:
        return Baseline("solved threshold", spec.target_score, "gymnasium reward_threshold")
    if suite == "minatar" and spec.random_score is not None:
        # MinAtar's paper reports its agents' returns only as plots (no table to copy), so
        # the reference is the measured random policy (mtrl/envs/data/minatar_reference.csv).
        return Baseline("random", spec.random_score, MINATAR_RANDOM_SOURCE)
    if spec.max_score is not None:
        return Baseline("max score", spec.max_score, "the game's maximum score")
    return None


def _check_known(task_ids: Iterable[str], origin: str) -> None:
    known = set(list_tasks())
    unknown = sorted(set(task_ids) - known)
    if unknown:
        raise ValueError(
            f"baseline file {origin} names unknown tasks {unknown}; "
            "expected registry task ids such as atari/Pong (see `mtrl tasks`)"
        )


def _from_scores(name: str, origin: str, scores: dict[str, list[float]]) -> dict[str, Baseline]:
    _check_known(scores, origin)
    return {
        task: Baseline(name, float(np.mean(values)), f"{origin}: mean of {len(values)} scores")
        for task, values in scores.items()
    }


def _from_csv(path: Path) -> dict[str, Baseline]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"task", "score"} <= set(rows[0]):
        raise ValueError(f"baseline file {path} needs a header with columns task,score[,seed]")
    scores: dict[str, list[float]] = {}
    for line, row in enumerate(rows, start=2):
        try:
            scores.setdefault(row["task"], []).append(float(row["score"]))
        except (TypeError, ValueError):
            raise ValueError(
                f"baseline file {path} line {line}: bad score {row['score']!r}"
            ) from None
    return _from_scores(path.stem, str(path), scores)


def _from_results(path: Path) -> dict[str, Baseline]:
    try:
        data = json.loads(path.read_text())
        tasks = data["tasks"]
        scores = {row["task"]: row["episode_returns"] for row in tasks}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"baseline file {path} is not an mtrl eval results.json: {error}"
        ) from None
    name = f"run {Path(data.get('checkpoint', path)).parent.name or path.stem}"
    return _from_scores(name, str(path), scores)


def load_baselines(name_or_file: str | None) -> dict[str, Baseline]:
    """Baselines by task id: a bundled column name, a CSV or results.json, or None (reference).

    Tasks the chosen source lacks fall back to their reference score (``resolve_baseline``).
    """
    if not name_or_file or name_or_file == DEFAULT:
        return {}
    tables = published()
    if name_or_file in tables:
        return dict(tables[name_or_file])
    path = Path(name_or_file)
    if path.suffix == ".json" and path.is_file():
        return _from_results(path)
    if path.suffix == ".csv" and path.is_file():
        return _from_csv(path)
    if path.suffix in (".json", ".csv"):
        raise FileNotFoundError(f"baseline file {path} does not exist")
    names = ", ".join([DEFAULT, *sorted(tables)])
    raise ValueError(f"unknown baseline {name_or_file!r}: not a file, nor one of: {names}")


def resolve_baseline(task_id: str, chosen: dict[str, Baseline]) -> Baseline | None:
    return chosen.get(task_id) or reference(get_task(task_id))

"""Write an evaluation's results: results.json, results.csv, report.md and PNG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from mtrl.eval.plots import GROUPS, LABELS, plot_aggregates, plot_tasks
from mtrl.eval.results import CSV_COLUMNS


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def write_csv(results: dict[str, Any], path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(results["tasks"])
    return path


def _task_table(rows: list[dict[str, Any]]) -> list[str]:
    names = ("task", "episodes", "mean", "std", "95% CI", "baseline", "baseline score", "ratio")
    names += ("HNS", "normalised")
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for r in rows:
        ci = f"[{_num(r['ci95_low'])}, {_num(r['ci95_high'])}]"
        cells = [
            r["task"],
            r["episodes"],
            _num(r["mean"]),
            _num(r["std"]),
            ci,
            r["baseline"] or "-",
        ]
        cells += [_num(r["baseline_score"]), _num(r["ratio_to_baseline"], 3)]
        cells += [_num(r["hns"], 3), _num(r["normalized_score"], 3)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _interval(estimate: dict[str, float]) -> str:
    low, high = _num(estimate["ci95_low"], 3), _num(estimate["ci95_high"], 3)
    return f"{_num(estimate['point'], 3)} [{low}, {high}]"


def _aggregate_table(aggregates: dict[str, Any]) -> list[str]:
    if not aggregates:
        return ["No task here has a normalised score, so there are no aggregates."]
    lines = [
        "| score | tasks | " + " | ".join(LABELS.values()) + " |",
        "|---|---|" + "---|" * len(LABELS),
    ]
    for group, values in aggregates.items():
        cells = [_interval(values[m]) for m in LABELS]
        lines.append(f"| {GROUPS[group]} | {len(values['tasks'])} | " + " | ".join(cells) + " |")
    return lines


def _sources(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, str] = {}
    for r in rows:
        if r["baseline"]:
            seen.setdefault(f"{r['baseline']}", r["baseline_source"])
    return [f"- **{name}**: {source}" for name, source in seen.items()]


def report_markdown(results: dict[str, Any], plots: dict[str, str], videos: dict[str, str]) -> str:
    search, r = results["search"], results
    lines = [
        f"# Evaluation of `{results['checkpoint']}`",
        "",
        f"**Score reported:** {results['score']}",
        "",
        f"- tasks: {len(r['tasks'])}; episodes per task per seed: {r['episodes_per_seed']}; "
        f"seeds: {r['seeds']} (environment row r of a seed's batch is seeded seed + r)",
        f"- checkpoint trained for {_num(r['env_steps'])} env steps "
        f"on {len(r['checkpoint_tasks'])} tasks",
        f"- acting: {search['algorithm']} search, {search['num_simulations']} simulations, "
        f"{r['sampled_actions']} sampled actions (continuous), discount {r['discount']}; "
        f"visit-count temperature {r['temperature']:g} ({r['temperature_note']})",
        "- 95% CI per task: Student-t interval of the mean over episodes. Aggregates: stratified "
        "bootstrap (2,000 replicates, runs resampled within each task), percentile 95% CI.",
        "",
        "## Per task",
        "",
        *_task_table(results["tasks"]),
        "",
        "ratio = mean / baseline score. HNS = (score − random) / (human − random) (Atari only); "
        "normalised = HNS for Atari, return / max score for DMC (1000) and text games.",
        "",
        "## Aggregates",
        "",
        *_aggregate_table(results["aggregates"]),
    ]
    if results["not_in_aggregates"]:
        lines += [
            "",
            f"Not in aggregates (no normalised score): {', '.join(results['not_in_aggregates'])}.",
        ]
    lines += ["", "## Plots", ""] + [f"![{name}]({file})" for name, file in plots.items()]
    lines += ["", "## Baselines", "", *_sources(results["tasks"])]
    if videos:
        lines += ["", "## Clips (first episode of the first seed)", ""]
        lines += [f"- {task}: [{file}]({file})" for task, file in videos.items()]
    return "\n".join(lines) + "\n"


def write_report(results: dict[str, Any], out: Path, videos: dict[str, Path]) -> dict[str, Path]:
    """Write every report file into ``out``; returns them by name."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"results.json": out / "results.json", "results.csv": out / "results.csv"}
    files["results.json"].write_text(json.dumps(results, indent=2) + "\n")
    write_csv(results, files["results.csv"])
    plots = {"per-task returns": plot_tasks(results["tasks"], out / "tasks.png")}
    aggregate_png = plot_aggregates(results["aggregates"], out / "aggregates.png")
    if aggregate_png is not None:
        plots["aggregates"] = aggregate_png
    clips = {task: str(path.relative_to(out)) for task, path in videos.items()}
    names = {name: path.name for name, path in plots.items()}
    files["report.md"] = out / "report.md"
    files["report.md"].write_text(report_markdown(results, names, clips))
    return {**files, **{p.name: p for p in plots.values()}}

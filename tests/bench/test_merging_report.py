"""bench/merging.py report: the table and figure of hand-made per-seed scores; method settings."""

import json

import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def merging():
    return load_bench("merging", "merging_bench")


def test_report_gives_each_model_per_task_and_against_the_experts(merging, tmp_path, capsys):
    seeds = {
        0: {"experts": {"a": 100.0, "b": 10.0}, "base": {"a": 50.0, "b": 5.0}},
        1: {"experts": {"a": 300.0, "b": 30.0}, "base": {"a": 100.0, "b": 20.0}},
    }
    for seed, scores in seeds.items():
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "scores.json").write_text(json.dumps(scores))
    merging.report(tmp_path)
    out = capsys.readouterr().out
    # Experts: a 200 [100, 300], b 20 [10, 30]; base: a 75 (0.375 of 200), b 12.5 (0.625 of 20).
    assert "| experts | 200.0 [100.0, 300.0] | 20.0 [10.0, 30.0] | 1.00 | 1.00 / 1.00 |" in out
    # Per seed, against that seed's experts: (0.5 + 0.5) / 2 and (100/300 + 20/30) / 2.
    assert "| base | 75.0 [50.0, 100.0] | 12.5 [5.0, 20.0] | 0.50 | 0.50 / 0.50 |" in out
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["scores"]["base"]["b"] == [5.0, 20.0] and saved["seeds"] == ["seed0", "seed1"]
    assert (tmp_path / "merging.png").stat().st_size > 10_000


def test_method_settings_parse_and_bad_ones_are_named(merging) -> None:
    assert merging.variant("ties") == ("ties", [])
    spec = "task_arithmetic:scale=0.3,seed=1"
    assert merging.variant(spec) == ("task_arithmetic", ["scale=0.3", "seed=1"])
    assert merging.folder_of(spec) == "task_arithmetic_scale0.3_seed1"
    with pytest.raises(Exception, match="unknown merge method 'tie'"):
        merging.variant("tie:scale=1")
    with pytest.raises(Exception, match="must be key=value"):
        merging.variant("ties:0.5")


def test_report_keeps_only_models_every_seed_has(merging, tmp_path, capsys) -> None:
    seeds = {
        0: {"experts": {"a": 10.0}, "ties": {"a": 5.0}, "ties:scale=0.5": {"a": 8.0}},
        1: {"experts": {"a": 10.0}, "ties": {"a": 7.0}},
    }
    for seed, scores in seeds.items():
        (tmp_path / f"seed{seed}").mkdir()
        (tmp_path / f"seed{seed}" / "scores.json").write_text(json.dumps(scores))
    merging.report(tmp_path)
    out = capsys.readouterr().out
    assert "| ties | 6.0 [5.0, 7.0] | 0.60 | 0.50 / 0.70 |" in out and "scale=0.5" not in out

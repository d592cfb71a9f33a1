"""The search algorithm as behaviour (issue 19, "Structure"): one table in mtrl/search maps each
algorithm name to what acting and evaluation need, and no code outside mtrl/search compares
algorithm names."""

import ast
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtrl.eval.run import temperature_note
from mtrl.search import ALGORITHMS, SearchConfig, get_algorithm

MTRL = Path(__file__).resolve().parents[2] / "mtrl"


def test_every_algorithm_has_a_behaviour_and_unknown_names_are_one_line_errors() -> None:
    for name in ALGORITHMS:
        assert get_algorithm(name).name == name
    with pytest.raises(ValueError, match="unknown algorithm 'alphazero'") as info:
        get_algorithm("alphazero")
    assert "\n" not in str(info.value)


def test_evaluation_reports_what_each_algorithm_plays() -> None:
    def note(algorithm: str, temperature: float) -> str:
        ckpt = SimpleNamespace(acting=SimpleNamespace(search=SearchConfig(algorithm=algorithm)))
        return temperature_note(ckpt, temperature)  # type: ignore[arg-type]

    assert note("muzero", 0.0) == "the most visited action"
    assert note("muzero", 0.5) == "actions sampled from visit counts ** (1 / temperature)"
    assert note("gumbel_muzero", 0.0).startswith("the improved policy's argmax")
    assert note("gumbel_muzero", 1.0).startswith("Gumbel MuZero plays the search's own choice")


def names_compared(path: Path) -> list[str]:
    """``file:line`` of each comparison with an algorithm name (``==``, ``!=``, ``in (...)``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        literals = [n for o in operands for n in ast.walk(o) if isinstance(n, ast.Constant)]
        if any(n.value in ALGORITHMS for n in literals):
            found.append(f"{path.relative_to(MTRL.parent)}:{node.lineno}")
    return found


def test_no_code_outside_search_compares_algorithm_names() -> None:
    outside = [p for p in sorted(MTRL.rglob("*.py")) if "search" not in p.relative_to(MTRL).parts]
    assert outside, MTRL
    compared = [hit for path in outside for hit in names_compared(path)]
    assert not compared, "ask mtrl.search.get_algorithm instead: " + ", ".join(compared)

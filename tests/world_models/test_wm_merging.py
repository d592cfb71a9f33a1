"""The merging methods against results worked out by hand on tiny tensors."""

import pytest
import torch

from mtrl.world_models.merging import (
    consensus,
    disjoint_mean,
    elect_sign,
    tall_masks,
    task_arithmetic,
    task_vectors,
    ties,
    trim,
)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values)


BASE = {"w": t(1.0, 1.0, 1.0, 1.0), "b": t(0.0, 0.0)}
EXPERTS = [
    {"w": t(2.0, 1.0, 0.5, 1.0), "b": t(0.1, -3.0)},  # tau_1: w (1, 0, -0.5, 0), b (0.1, -3)
    {"w": t(1.5, 0.0, 1.0, 1.25), "b": t(-0.2, 0.0)},  # tau_2: w (.5, -1, 0, .25), b (-.2, 0)
]


def test_task_vectors_and_arithmetic_scale_the_sum() -> None:
    deltas = task_vectors(BASE, EXPERTS)
    assert torch.allclose(deltas[0]["w"], t(1.0, 0.0, -0.5, 0.0))
    merged = task_arithmetic(BASE, deltas, scale=0.5)
    # sum w: (1.5, -1, -0.5, 0.25) * 0.5 + 1 ; sum b: (-0.1, -3) * 0.5
    assert torch.allclose(merged["w"], t(1.75, 0.5, 0.75, 1.125))
    assert torch.allclose(merged["b"], t(-0.05, -1.5))


def test_ties_trim_is_global_over_the_task_vector() -> None:
    tau = {"w": t(1.0, 0.0, -0.5, 0.0), "b": t(0.1, -3.0)}
    # 6 entries, keep 1/3 -> the 2 largest magnitudes over both tensors: -3 and 1.
    kept = trim(tau, keep=1 / 3)
    assert torch.equal(kept["w"], t(1.0, 0.0, 0.0, 0.0))
    assert torch.equal(kept["b"], t(0.0, -3.0))


def test_ties_sign_election_and_disjoint_mean() -> None:
    stacked = torch.tensor([[1.0, -2.0, 0.5, 0.0], [3.0, 1.0, -0.5, 0.0], [-1.0, -1.0, 0.0, 0.0]])
    # column sums: 3, -2, 0, 0 -> signs +, -, 0, 0
    assert torch.equal(elect_sign(stacked), t(1.0, -1.0, 0.0, 0.0))
    # col 0: mean of 1 and 3 (the -1 disagrees) = 2; col 1: mean of -2, -1 = -1.5;
    # cols 2 and 3: no elected sign -> 0.
    assert torch.allclose(disjoint_mean(stacked), t(2.0, -1.5, 0.0, 0.0))


def test_ties_end_to_end() -> None:
    deltas = task_vectors(BASE, EXPERTS)
    merged = ties(BASE, deltas, keep=0.5, scale=1.0)
    # tau_1 (1, 0, -.5, 0 | .1, -3): top 3 of 6 -> 1, -.5, -3 ;
    # tau_2 (.5, -1, 0, .25 | -.2, 0): top 3 -> .5, -1, .25 (-.2 is trimmed).
    # w: col0 {1, .5} -> .75 ; col1 {-1} -> -1 ; col2 {-.5} -> -.5 ; col3 {.25} -> .25
    # b: col0 {} -> 0 (both trimmed) ; col1 {-3} -> -3
    assert torch.allclose(merged["w"], t(1.75, 0.0, 0.5, 1.25))
    assert torch.allclose(merged["b"], t(0.0, -3.0))


def test_consensus_masks_and_merge() -> None:
    deltas = [{"w": t(1.0, 0.2, 0.0, -1.0)}, {"w": t(1.0, -0.1, 0.3, 1.0)}]
    masks = tall_masks(deltas, threshold=1.0)
    # task 1 keeps |tau_1| >= |tau_2|: (1>=1, .2>=.1, 0>=.3 no, 1>=1) ; task 2: (yes, no, yes, yes)
    assert masks[0]["w"].tolist() == [True, True, False, True]
    assert masks[1]["w"].tolist() == [True, False, True, True]
    merged = consensus({"w": torch.zeros(4)}, deltas, min_tasks=2, threshold=1.0, scale=1.0)
    # kept where both masks agree (entries 0 and 3): sums 2 and 0
    assert torch.allclose(merged["w"], t(2.0, 0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ties(BASE, task_vectors(BASE, EXPERTS), keep=0.0, scale=1.0), "keep"),
        (lambda: consensus(BASE, task_vectors(BASE, EXPERTS), 0, 0.4, 1.0), "min_tasks"),
    ],
)
def test_bad_hyper_parameters(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()

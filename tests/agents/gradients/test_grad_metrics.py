"""Conflict metrics on gradients whose cosines and norms can be computed by hand."""

import math

import pytest
import torch

from mtrl.agents.gradients import conflict_metrics, metrics_to_log_dict


def test_orthogonal_gradients_have_no_conflict() -> None:
    m = conflict_metrics(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
    assert m.norms.tolist() == pytest.approx([3.0, 4.0])
    torch.testing.assert_close(m.cosine, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert m.conflict_fraction == 0.0
    assert m.mean_cosine == pytest.approx(0.0)


def test_opposite_gradients_conflict_fully() -> None:
    m = conflict_metrics(torch.tensor([[1.0, 2.0], [-2.0, -4.0]]))
    assert m.cosine[0, 1].item() == pytest.approx(-1.0)
    assert m.conflict_fraction == 1.0
    assert m.mean_cosine == pytest.approx(-1.0)


def test_three_tasks_by_hand() -> None:
    # cos(g1, g2) = 0, cos(g1, g3) = -1, cos(g2, g3) = 1/sqrt(2) * -1 ... computed below.
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    m = conflict_metrics(g)
    c13 = -1 / math.sqrt(2)
    c23 = -1 / math.sqrt(2)
    assert m.cosine[0, 1].item() == pytest.approx(0.0)
    assert m.cosine[0, 2].item() == pytest.approx(c13)
    assert m.cosine[1, 2].item() == pytest.approx(c23)
    assert torch.equal(m.cosine, m.cosine.T)
    assert m.conflict_fraction == pytest.approx(2 / 3)
    assert m.mean_cosine == pytest.approx((0.0 + c13 + c23) / 3)
    assert m.norms.tolist() == pytest.approx([1.0, 1.0, math.sqrt(2)])


def test_zero_gradient_gives_zero_cosine_not_nan() -> None:
    m = conflict_metrics(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
    assert not torch.isnan(m.cosine).any()
    torch.testing.assert_close(m.cosine, torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert m.conflict_fraction == 0.0


def test_single_task_has_no_pairs() -> None:
    m = conflict_metrics(torch.tensor([[1.0, -1.0]]))
    assert m.conflict_fraction == 0.0
    assert m.mean_cosine == 0.0


def test_log_dict_is_plain_scalars_and_a_matrix() -> None:
    m = conflict_metrics(torch.tensor([[1.0, 0.0], [-1.0, 1.0]]))
    out = metrics_to_log_dict(m, ["pong", "walker"], weights=torch.tensor([0.25, 0.75]))
    assert out["grad/cosine"].shape == (2, 2)
    assert out["grad/norm/pong"] == pytest.approx(1.0)
    assert out["grad/norm/walker"] == pytest.approx(math.sqrt(2))
    assert out["grad/weight/walker"] == pytest.approx(0.75)
    assert out["grad/conflict_fraction"] == 1.0
    scalars = {k: v for k, v in out.items() if k != "grad/cosine"}
    assert all(type(v) is float for v in scalars.values())


def test_log_dict_rejects_wrong_task_names() -> None:
    m = conflict_metrics(torch.eye(3))
    with pytest.raises(ValueError, match="2 task names for 3 tasks"):
        metrics_to_log_dict(m, ["a", "b"])


def test_jacobian_must_be_a_matrix() -> None:
    with pytest.raises(ValueError, match=r"\[T, n\]"):
        conflict_metrics(torch.ones(3))

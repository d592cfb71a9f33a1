"""Analytic toy problems: what each conflict-aware direction must do to the task losses."""

import pytest
import torch

from mtrl.agents.gradients import CAGradConfig, GradientConfig, MoCoConfig, build_aggregator
from mtrl.agents.gradients.solvers import (
    nash_bargaining_weights,
    normalized_gramian,
    solve_lower_bounded_qp,
)

F64 = torch.float64

# Two quadratics L1 = 0.5 |x - a|^2, L2 = 0.5 k |x - b|^2 evaluated where their gradients
# conflict: (a, b, x0, k). Angles between the gradients range from ~100 to ~170 degrees.
CONFLICTS = [
    ((1.0, 0.0), (-1.0, 0.2), (0.0, 0.0), 2.0),
    ((1.0, 0.0), (-1.0, 0.2), (0.0, 0.0), 30.0),
    ((2.0, 1.0), (-2.0, -1.0), (0.5, 0.0), 0.05),
    ((1.0, 0.3), (-0.2, -1.0), (0.1, 0.1), 5.0),
]


def quadratic_jacobian(a: tuple, b: tuple, x0: tuple, k: float) -> torch.Tensor:
    x = torch.tensor(x0, dtype=F64)
    g1 = x - torch.tensor(a, dtype=F64)
    g2 = k * (x - torch.tensor(b, dtype=F64))
    assert g1 @ g2 < 0, "the toy must have a conflict"
    return torch.stack([g1, g2])


def direction(name: str, jacobian: torch.Tensor, config: GradientConfig | None = None):
    config = config or GradientConfig(aggregator=name)
    agg = build_aggregator(config, jacobian.shape[0])
    return agg.aggregate(jacobian, torch.ones(jacobian.shape[0], dtype=F64))


@pytest.mark.parametrize("conflict", CONFLICTS)
def test_plain_sum_increases_a_loss_on_these_conflicts(conflict: tuple) -> None:
    # Guards the toys: without this, the non-increase tests below would prove nothing.
    jac = quadratic_jacobian(*conflict)
    assert (jac @ jac.sum(0)).min() < 0


@pytest.mark.parametrize("conflict", CONFLICTS)
@pytest.mark.parametrize("name", ["upgrad", "nash_mtl", "cagrad_c1", "moco"])
def test_direction_does_not_increase_any_loss_to_first_order(conflict: tuple, name: str) -> None:
    jac = quadratic_jacobian(*conflict)
    if name == "cagrad_c1":  # CAGrad's guarantee needs c >= 1 (the MGDA point lies in its ball)
        d = direction("cagrad", jac, GradientConfig(aggregator="cagrad", cagrad=CAGradConfig(c=1)))
    elif name == "moco":  # deterministic gradients: MoCo's weights converge to MGDA's
        agg = build_aggregator(GradientConfig(aggregator="moco", moco=MoCoConfig(gamma=0.5)), 2)
        for _ in range(2000):
            d = agg.aggregate(jac, torch.ones(2, dtype=F64))
    else:
        d = direction(name, jac)
    scale = jac.norm(dim=1) * d.norm()
    assert d.norm() > 0
    assert ((jac @ d) / scale).min() >= -1e-6


def test_nash_mtl_improves_every_task_strictly() -> None:
    jac = quadratic_jacobian(*CONFLICTS[1])
    d = direction("nash_mtl", jac)
    assert (jac @ d).min() > 0


@pytest.mark.parametrize("conflict", CONFLICTS)
def test_cagrad_maximises_worst_improvement_in_its_ball(conflict: tuple) -> None:
    jac = quadratic_jacobian(*conflict)
    c = 0.4
    d = direction("cagrad", jac, GradientConfig(aggregator="cagrad", cagrad=CAGradConfig(c=c)))
    g0 = jac.mean(0)
    radius = c * g0.norm()
    assert (d - g0).norm() <= radius * (1 + 1e-6)
    # Brute force on the ball's boundary: a minimum of two non-parallel linear functions keeps
    # increasing along its kink line, so its maximum over the ball lies on the boundary.
    angles = torch.linspace(0, 2 * torch.pi, 200001, dtype=F64)
    candidates = g0 + radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    best = float((candidates @ jac.T).min(dim=1).values.max())
    assert float((jac @ d).min()) == pytest.approx(best, rel=1e-3, abs=1e-6)


def test_pcgrad_two_tasks_matches_the_closed_form_and_removes_conflict() -> None:
    g1 = torch.tensor([1.0, 0.0], dtype=F64)
    g2 = torch.tensor([-1.0, 1.0], dtype=F64)
    # Each gradient projected on the normal plane of the other: no negative inner product left.
    p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2
    p2 = g2 - (g2 @ g1) / (g1 @ g1) * g1
    assert p1 @ g2 == pytest.approx(0.0, abs=1e-12)
    assert p2 @ g1 == pytest.approx(0.0, abs=1e-12)
    d = direction("pcgrad", torch.stack([g1, g2]))
    torch.testing.assert_close(d, p1 + p2)
    assert d @ g1 >= 0 and d @ g2 >= 0


def test_pcgrad_leaves_agreeing_gradients_alone() -> None:
    jac = torch.tensor([[1.0, 0.2], [0.5, 1.0], [0.3, 0.3]], dtype=F64)
    torch.testing.assert_close(direction("pcgrad", jac), jac.sum(0))


def test_box_qp_satisfies_kkt_conditions() -> None:
    gen = torch.Generator().manual_seed(0)
    for m in (2, 5, 26):
        j = torch.randn(m, 3 * m, generator=gen, dtype=F64)
        j[0] *= 50  # ill-scaled rows, as with losses of different scales
        g = normalized_gramian(j @ j.T, 1e-7)
        lower = torch.eye(m, dtype=F64) / m
        v = solve_lower_bounded_qp(g, lower)
        grad = v @ g
        assert (v - lower).min() >= -1e-12
        assert grad.min() >= -1e-9  # dual feasibility
        assert ((v - lower) * grad).abs().max() <= 1e-9  # complementarity


def test_box_qp_matches_quadprog_when_installed() -> None:
    projector_cls = pytest.importorskip("torchjd.linalg").QuadprogProjector
    pytest.importorskip("quadprog")
    pytest.importorskip("qpsolvers")
    from mtrl.agents.gradients.torchjd_methods import TorchDualConeProjector

    gen = torch.Generator().manual_seed(1)
    j = torch.randn(6, 10, generator=gen, dtype=F64)
    gramian = j @ j.T
    u = torch.eye(6, dtype=F64) / 6
    ours = TorchDualConeProjector(reg_eps=1e-4)(u, gramian)
    torch.testing.assert_close(ours, projector_cls()(u, gramian), atol=1e-8, rtol=1e-6)


def test_nash_weights_solve_the_bargaining_condition() -> None:
    gen = torch.Generator().manual_seed(2)
    j = torch.randn(8, 20, generator=gen, dtype=F64)
    g = normalized_gramian(j @ j.T, 0.0)
    a = nash_bargaining_weights(g)
    assert a.min() > 0
    torch.testing.assert_close(g @ a, 1 / a, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name", ["upgrad", "cagrad", "aligned_mtl", "pcgrad"])
def test_directions_scale_with_the_gradients(name: str) -> None:
    jac = quadratic_jacobian(*CONFLICTS[0])
    torch.testing.assert_close(direction(name, 10 * jac), 10 * direction(name, jac))


def test_nash_mtl_update_has_norm_sqrt_t_at_any_gradient_scale() -> None:
    gen = torch.Generator().manual_seed(3)
    jac = torch.randn(5, 12, generator=gen, dtype=F64)
    for scale in (1e-3, 1.0, 1e3):
        d = direction("nash_mtl", scale * jac)
        assert float(d.norm()) == pytest.approx(5**0.5, rel=1e-4)

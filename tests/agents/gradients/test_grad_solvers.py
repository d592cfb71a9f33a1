"""Properties of the small Gramian solvers on random problems (hypothesis)."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mtrl.agents.gradients.solvers import (
    cagrad_weights,
    nash_bargaining_weights,
    normalized_gramian,
    project_to_simplex,
    solve_lower_bounded_qp,
)

F64 = torch.float64
SETTINGS = settings(max_examples=25, deadline=None)


def simplex_samples(seed: int, count: int, m: int) -> torch.Tensor:
    """Uniform points of the simplex (normalised exponentials), seeded."""
    gen = torch.Generator().manual_seed(seed + 1)
    e = -torch.rand(count, m, generator=gen, dtype=F64).clamp_min(1e-300).log()
    return e / e.sum(dim=1, keepdim=True)


def random_jacobian(seed: int, tasks: int, dims: int, spread: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    scales = 10 ** (spread * (torch.rand(tasks, 1, generator=gen, dtype=F64) - 0.5))
    return torch.randn(tasks, dims, generator=gen, dtype=F64) * scales


problems = st.tuples(
    st.integers(0, 10_000), st.integers(2, 12), st.integers(1, 30), st.floats(0.0, 4.0)
)


@SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 20))
def test_simplex_projection_is_on_the_simplex_and_closest(seed: int, m: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    v = 3 * torch.randn(m, generator=gen, dtype=F64)
    p = project_to_simplex(v)
    assert p.min() >= 0 and abs(float(p.sum()) - 1) < 1e-12
    others = simplex_samples(seed, 200, m)
    assert (others - v).norm(dim=1).min() >= (p - v).norm() - 1e-12


@SETTINGS
@given(problems)
def test_box_qp_meets_kkt_on_random_gramians(problem: tuple) -> None:
    jac = random_jacobian(*problem)
    g = normalized_gramian(jac @ jac.T, 1e-7)
    lower = torch.eye(g.shape[0], dtype=F64) / g.shape[0]
    v = solve_lower_bounded_qp(g, lower)
    grad = v @ g
    assert (v - lower).min() >= -1e-12
    assert grad.min() >= -1e-8
    assert ((v - lower) * grad).abs().max() <= 1e-8


@SETTINGS
@given(problems)
def test_nash_weights_meet_the_bargaining_condition(problem: tuple) -> None:
    jac = random_jacobian(*problem)
    g = normalized_gramian(jac @ jac.T, 1e-6, by="frobenius")
    a = nash_bargaining_weights(g)
    assert a.min() > 0
    assert ((g @ a) * a - 1).abs().max() < 1e-6


@SETTINGS
@given(problems, st.floats(0.1, 2.0))
def test_cagrad_weights_beat_random_simplex_points(problem: tuple, c: float) -> None:
    jac = random_jacobian(*problem)
    g = normalized_gramian(jac @ jac.T, 0.0)
    m = g.shape[0]
    weights = cagrad_weights(g, c)
    # Recover the dual point w from the weights: w is proportional to weights - 1/m.
    extra = weights - 1.0 / m
    sqrt_phi = c * float(g.mean().sqrt())

    def dual(w: torch.Tensor) -> torch.Tensor:
        return w @ g.mean(dim=1) + sqrt_phi * ((w @ g) * w).sum(-1).clamp_min(0).sqrt()

    if float(extra.sum()) <= 1e-12:  # Pareto-stationary case: plain mean weights
        return
    w = extra / extra.sum()
    others = simplex_samples(problem[0], 500, m)
    assert float(dual(w)) <= float(dual(others).min()) + 1e-7

"""Small dense solvers on the ``[T, T]`` Gramian, in pure torch (float64 on the CPU).

torchjd solves these with quadprog (UPGrad) and cvxpy (CAGrad, Nash-MTL), which are optional
extras not in our dependencies; T is at most a few dozen, so exact small solvers suffice and
keep the package dependency-free. Each works on a trace-normalised Gramian because every method
here is invariant to a common rescaling of the task gradients.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

_F64 = torch.float64


def normalized_gramian(gramian: Tensor, reg_eps: float, by: str = "trace") -> Tensor:
    """``G / scale + reg_eps * I`` in float64 on the CPU; ``scale`` is the trace of ``G`` or,
    with ``by="frobenius"``, its Frobenius norm (all zeros stays all zeros + reg)."""
    g = gramian.detach().to(device="cpu", dtype=_F64)
    g = 0.5 * (g + g.T)
    scale = g.diagonal().sum() if by == "trace" else torch.linalg.matrix_norm(g)
    g = g / scale if scale > 0 else torch.zeros_like(g)
    return g + reg_eps * torch.eye(g.shape[0], dtype=_F64)


def project_to_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of each row of ``v`` onto the probability simplex (sort-based)."""
    m = v.shape[-1]
    u, _ = torch.sort(v, dim=-1, descending=True)
    cssv = u.cumsum(dim=-1) - 1
    ks = torch.arange(1, m + 1, dtype=v.dtype, device=v.device)
    support = (u - cssv / ks) > 0
    rho = support.to(v.dtype).cumsum(dim=-1).argmax(dim=-1, keepdim=True)
    theta = cssv.gather(-1, rho) / (rho + 1).to(v.dtype)
    return (v - theta).clamp_min(0)


def _quadratic(v: Tensor, g: Tensor) -> Tensor:
    return 0.5 * ((v @ g) * v).sum(-1)


def _newton_direction(g: Tensor, grad: Tensor, free: Tensor) -> Tensor:
    """Newton step on the free coordinates only; fixed ones get a zero step."""
    m = g.shape[0]
    mask = free.unsqueeze(-1) & free.unsqueeze(-2)
    eye = torch.eye(m, dtype=g.dtype).expand_as(mask)
    system = torch.where(mask, g.expand_as(mask), torch.zeros((), dtype=g.dtype))
    system = system + eye * (~free).unsqueeze(-1).to(g.dtype)
    rhs = torch.where(free, -grad, torch.zeros((), dtype=g.dtype))
    return torch.linalg.solve(system, rhs.unsqueeze(-1)).squeeze(-1)


def solve_lower_bounded_qp(
    g: Tensor, lower: Tensor, max_iter: int = 200, tol: float = 1e-12
) -> Tensor:
    """``argmin_v 0.5 v^T g v  s.t.  v >= lower`` for each row of ``lower`` (``g`` SPD).

    Projected Newton (Bertsekas, 1982): coordinates at their bound whose gradient pushes outward
    are frozen, a Newton step is taken on the rest, and the best point along the projection arc
    (or a projected-gradient step, which guarantees progress) is kept.
    """
    lower = lower.to(_F64)
    v = lower.clone()
    lipschitz = torch.linalg.eigvalsh(g).max().clamp_min(1e-30)
    steps = 0.5 ** torch.arange(0, 30, dtype=_F64)
    for _ in range(max_iter):
        grad = v @ g
        projected = v - torch.maximum(lower, v - grad)
        if projected.abs().max() <= tol:
            break
        slack = v - lower
        eps_active = projected.abs().amax(-1, keepdim=True).clamp_max(1e-6)
        free = ~((slack <= eps_active) & (grad > 0))
        direction = _newton_direction(g, grad, free)
        candidates = torch.maximum(lower, v + steps[:, None, None] * direction)
        gradient_step = torch.maximum(lower, v - grad / lipschitz)
        candidates = torch.cat([candidates, gradient_step.unsqueeze(0), v.unsqueeze(0)])
        best = _quadratic(candidates, g).argmin(0)
        new_v = candidates[best, torch.arange(v.shape[0])]
        if torch.equal(new_v, v):  # no row improves any more: converged to rounding
            break
        v = new_v
    return _polish(g, lower, v)


def _kkt_residual(g: Tensor, lower: Tensor, v: Tensor) -> Tensor:
    return (v - torch.maximum(lower, v - v @ g)).abs().amax(-1)


def _polish(g: Tensor, lower: Tensor, v: Tensor) -> Tensor:
    """Primal active-set finish: exact Newton solves on the free set, stopping at the first
    bound a step would cross (which then joins the active set).

    Objective comparisons stall at rounding level (about sqrt(machine eps) in the gradient);
    the KKT residual does not, so a polished row is kept only if its residual is smaller.
    """
    start = v
    for _ in range(v.shape[-1] + 1):
        free = (v - lower) > 0
        step = _newton_direction(g, v @ g, free)
        shrinking = free & (step < 0)
        ratios = torch.where(shrinking, (v - lower) / (-step).clamp_min(1e-300), torch.inf)
        alpha = ratios.amin(-1).clamp_max(1.0)
        v = torch.maximum(lower, v + alpha[:, None] * step)
        v = torch.where(shrinking & (ratios <= alpha[:, None]), lower, v)
        if bool((alpha >= 1.0).all()):
            break
    better = _kkt_residual(g, lower, v) < _kkt_residual(g, lower, start)
    return torch.where(better[:, None], v, start)


def nash_bargaining_weights(g: Tensor, max_iter: int = 100, tol: float = 1e-14) -> Tensor:
    """Solves ``g @ a = 1 / a`` with ``a > 0``, the Nash bargaining condition of Nash-MTL.

    It is the stationarity condition of the strictly convex, self-concordant
    ``F(a) = 0.5 a^T g a - sum(log a)``, so damped Newton converges from any positive start and
    its ``1 / (1 + decrement)`` step never leaves the positive orthant.
    """
    a = 1.0 / g.diagonal().clamp_min(1e-30).sqrt()
    for _ in range(max_iter):
        grad = g @ a - 1.0 / a
        hessian = g + torch.diag(1.0 / (a * a))
        step = -torch.linalg.solve(hessian, grad)
        decrement_sq = float(-(grad @ step))
        if decrement_sq / 2 <= tol:
            break
        decrement = decrement_sq**0.5
        a = a + (1.0 if decrement < 0.25 else 1.0 / (1.0 + decrement)) * step
        a = a.clamp_min(1e-30)
    return a


def _simplex_newton_directions(hessian: Tensor, grad: Tensor, free: Tensor) -> Tensor:
    """Sum-preserving damped Newton steps on the free coordinates, one row per damping.

    Undamped Newton handles the curved directions; the CAGrad Hessian is rank-deficient (and
    zero along flat faces when gradients are collinear), where the damped rows act as scaled
    gradient steps. The caller's arc search picks among them.
    """
    m = grad.shape[0]
    f = free.to(hessian.dtype)
    scale = hessian.diagonal().abs().max().clamp_min(1e-30)
    damping = scale * torch.tensor([1e-12, 1e-6, 1e-3, 1.0], dtype=hessian.dtype)
    system = torch.zeros(damping.shape[0], m + 1, m + 1, dtype=hessian.dtype)
    block = hessian * f[:, None] * f[None, :] + torch.diag(1 - f)
    system[:, :m, :m] = block + damping[:, None, None] * torch.diag(f)
    system[:, :m, m] = f
    system[:, m, :m] = f
    rhs = torch.cat([-grad * f, torch.zeros(1, dtype=hessian.dtype)])
    rhs = rhs.expand(damping.shape[0], m + 1).unsqueeze(-1)
    return torch.linalg.lstsq(system, rhs).solution.squeeze(-1)[:, :m]


def minimize_on_simplex(
    fn: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]],
    batch_value: Callable[[Tensor], Tensor],
    m: int,
    max_iter: int = 100,
    tol: float = 1e-12,
) -> Tensor:
    """Projected Newton on the simplex for a smooth convex ``fn(w) -> (value, grad, hessian)``.

    Like ``solve_lower_bounded_qp``: coordinates at zero whose gradient exceeds the support's
    mean are frozen, sum-preserving (damped) Newton steps are taken on the rest, and the best
    point among their projected arcs and a projected-gradient arc is kept (monotone descent).
    ``batch_value`` evaluates the objective on the rows of a ``[K, m]`` batch.
    """
    w = torch.full((m,), 1.0 / m, dtype=_F64)
    steps = 0.5 ** torch.arange(0, 30, dtype=_F64)
    for _ in range(max_iter):
        _, grad, hessian = fn(w)
        projected = w - project_to_simplex(w - grad)
        if projected.abs().max() <= tol:
            break
        support = w > 1e-12
        level = grad[support].mean()
        free = ~((w <= projected.abs().max().clamp_max(1e-6)) & (grad > level))
        directions = _simplex_newton_directions(hessian, grad, free)
        arcs = w + steps[:, None, None] * directions[None, :, :]
        candidates = torch.cat(
            [
                project_to_simplex(arcs.reshape(-1, m)),
                project_to_simplex(w - (steps[:, None] * 4.0) * grad),
                w.unsqueeze(0),
            ]
        )
        best = candidates[batch_value(candidates).argmin()]
        if torch.equal(best, w):  # no candidate improves: converged to rounding
            break
        w = best
    return w


def cagrad_weights(g: Tensor, c: float, max_iter: int = 100) -> Tensor:
    """Per-task weights of the CAGrad update ``g0 + sqrt(phi) / |g_w| * g_w`` (Liu et al., 2021).

    ``w = argmin_{w in simplex} w^T G 1/T + c |g0| sqrt(w^T G w)`` is the dual of
    ``max_d min_i <g_i, d>  s.t.  |d - g0| <= c |g0|``.
    """
    m = g.shape[0]
    mean_row = g.mean(dim=1)
    sqrt_phi = c * float(mean_row.mean().clamp_min(0).sqrt())
    if sqrt_phi == 0.0:
        return torch.full((m,), 1.0 / m, dtype=_F64)

    def dual(w: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        gw = g @ w
        # Smoothing |g_w| by 1e-16 keeps Newton usable at the kink g_w = 0 (exactly opposed
        # tasks) and moves the objective by at most c * 1e-8.
        norm = (w @ gw + 1e-16).clamp_min(1e-16).sqrt()
        value = w @ mean_row + sqrt_phi * norm
        grad = mean_row + sqrt_phi * gw / norm
        hessian = sqrt_phi * (g / norm - torch.outer(gw, gw) / norm**3)
        return value, grad, hessian

    def batch_dual(ws: Tensor) -> Tensor:
        norms = ((ws @ g) * ws).sum(-1).clamp_min(0).sqrt()
        return ws @ mean_row + sqrt_phi * norms

    w = minimize_on_simplex(dual, batch_dual, m, max_iter=max_iter)
    norm_gw = float((w @ g @ w).clamp_min(0).sqrt())
    weights = torch.full((m,), 1.0 / m, dtype=_F64)
    if norm_gw > 1e-12:
        weights = weights + (sqrt_phi / norm_gw) * w
    return weights

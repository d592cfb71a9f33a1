"""MuZero's pUCT rule (Schrittwieser et al. 2020, Appendix B, Eq. 2), batched over trees."""

from __future__ import annotations

import torch

from mtrl.search.numerics import normalize_q
from mtrl.search.stats import ChildStats


def puct_scores(
    stats: ChildStats,
    node_visits: torch.Tensor,
    legal: torch.Tensor,
    pb_c_init: float,
    pb_c_base: float,
) -> torch.Tensor:
    """Q_norm(a) + c(N) * P(a) * sqrt(N) / (1 + N(a)), -inf on illegal actions. [B, A] f64.

    N is the node's own visit count, which counts its expansion, so N >= 1 and the very first
    selection at a node follows the prior instead of a tie of zeros. Unvisited children score
    Q_norm = 0, the bottom of the normalised range, as in MuZero's pseudocode.
    """
    parent = node_visits.double()[:, None]  # [B, 1]
    c = pb_c_init + torch.log((parent + pb_c_base + 1.0) / pb_c_base)
    visits = stats.visits.double()
    exploration = c * stats.prior.double() * torch.sqrt(parent) / (1.0 + visits)
    value = torch.where(stats.visits > 0, normalize_q(stats.q, stats.min_q, stats.max_q), 0.0)
    return torch.where(legal, value + exploration, -torch.inf)

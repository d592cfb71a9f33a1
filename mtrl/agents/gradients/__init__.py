"""Gradient-conflict-aware multi-task updates: measure conflict always, correct it by config.

Pieces (one module each):

* ``jacobian`` — which parameters are shared (``split_parameters`` with ``by_prefix`` /
  ``by_module``) and the per-task Jacobian on them from one forward (one vmapped backward).
* ``metrics`` — per-task gradient norms, the pairwise cosine matrix, the fraction of
  conflicting pairs and the mean off-diagonal cosine, as a TensorBoard-ready dict.
* ``base``/``registry`` — the ``Aggregator`` interface (loss-based or gradient-based) and the
  registry behind ``GradientConfig.aggregator``.
* ``update`` — ``MultiTaskUpdate.backward(losses) -> metrics``, the agent's entry point.

Which implementation each method uses, and why (torchjd pinned at 0.18.0):

=============  ==========================================================================
sum, mean      ours, loss-based: one plain backward, no per-task gradients needed.
pcgrad         ``torchjd.aggregation.PCGrad`` (Yu et al., 2020), dependency-free.
aligned_mtl    ``torchjd.aggregation.AlignedMTL`` (Senushkin et al., 2023), dependency-free.
upgrad         ``torchjd.aggregation.UPGrad`` (Quinton & Rey, 2024) with our
               ``TorchDualConeProjector``: torchjd's default projector needs quadprog and
               qpsolvers (an optional extra we do not depend on). ``projector="quadprog"``
               selects torchjd's if those are installed.
cagrad         torchjd's ``GramianWeightedAggregator`` with our ``CAGradWeighting`` (Liu et
               al., 2021): torchjd's CAGrad needs cvxpy + clarabel; the dual is a small
               convex problem on the simplex, solved by accelerated projected gradient.
nash_mtl       torchjd's ``GramianWeightedAggregator`` with our ``NashMTLWeighting`` (Navon et
               al., 2022): torchjd's NashMTL needs cvxpy + ecos and keeps numpy state outside
               any state_dict; ``G a = 1/a`` is the optimum of a self-concordant function, so
               damped Newton solves it exactly (no concave-convex iterations).
moco           ours (Fernando et al., 2023): not in torchjd.
gradnorm       ours (Chen et al., 2018): not in torchjd.
famo           ours (Liu et al., 2023): torchjd's ``scalarization.FAMO`` keeps its Adam
               moments and previous losses outside its state_dict, so a resume would reset them.
uncertainty    ours (Kendall et al., 2018): torchjd's ``scalarization.UW`` wants its
               log-variances in the model optimizer (rebuilt at DPS stage changes); ours steps
               them with its own Adam and checkpoints them with the aggregator.
=============  ==========================================================================

Every aggregator's state is a flat ``dict[str, Tensor]`` (``state_dict``/``load_state_dict``),
safe with ``torch.load(weights_only=True)``. Our solvers were cross-checked against torchjd's
versions with the extras installed: the UPGrad projection equals quadprog's to 1e-15; our
CAGrad weights reach an equal or slightly higher worst-case improvement than cvxpy's (they
differ by <= 1e-4); Nash-MTL weights equal torchjd's to 1e-4 where its ECOS iterations
converge, and at 12 tasks, where they did not (residual 81), ours still solve ``G a = 1/a``
to 1e-7.
"""

from mtrl.agents.gradients.base import Aggregator, GradientAggregator, LossAggregator
from mtrl.agents.gradients.config import (
    AdamConfig,
    AlignedMTLConfig,
    CAGradConfig,
    FAMOConfig,
    GradientConfig,
    GradNormConfig,
    MoCoConfig,
    NashMTLConfig,
    UncertaintyConfig,
    UPGradConfig,
)
from mtrl.agents.gradients.jacobian import (
    ParameterSplit,
    by_module,
    by_prefix,
    split_parameters,
    task_jacobian,
)
from mtrl.agents.gradients.metrics import (
    ConflictMetrics,
    conflict_metrics,
    conflict_metrics_from_gramian,
    metrics_to_log_dict,
)
from mtrl.agents.gradients.registry import AGGREGATORS, available_aggregators, build_aggregator
from mtrl.agents.gradients.sam import SamConfig
from mtrl.agents.gradients.update import MultiTaskUpdate, all_reduce_mean

__all__ = [
    "AGGREGATORS",
    "AdamConfig",
    "Aggregator",
    "AlignedMTLConfig",
    "CAGradConfig",
    "ConflictMetrics",
    "FAMOConfig",
    "GradNormConfig",
    "GradientAggregator",
    "GradientConfig",
    "LossAggregator",
    "MoCoConfig",
    "MultiTaskUpdate",
    "NashMTLConfig",
    "ParameterSplit",
    "SamConfig",
    "UPGradConfig",
    "UncertaintyConfig",
    "all_reduce_mean",
    "available_aggregators",
    "build_aggregator",
    "by_module",
    "by_prefix",
    "conflict_metrics",
    "conflict_metrics_from_gramian",
    "metrics_to_log_dict",
    "split_parameters",
    "task_jacobian",
]

"""Frozen configuration of the multi-task update: which aggregator, its knobs, how often to log.

One :class:`GradientConfig` carries a sub-config for every method so that a launch script can
switch methods by changing ``aggregator`` alone; only the named method's sub-config is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class AdamConfig:
    """The small Adam that stateful aggregators use for their own task weights."""

    lr: float = 0.025
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.lr < 0:
            raise ValueError(f"AdamConfig.lr must be >= 0, got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"AdamConfig betas must lie in [0, 1), got {self.beta1}, {self.beta2}")


@dataclass(frozen=True)
class UPGradConfig:
    """UPGrad (Quinton & Rey, 2024) through torchjd; ``projector`` picks the dual-cone QP solver.

    ``"torch"`` is our dependency-free projected-Newton solver; ``"quadprog"`` is torchjd's
    default, which needs ``pip install "torchjd[quadprog_projector]"``.
    """

    projector: Literal["torch", "quadprog"] = "torch"
    reg_eps: float = 1e-7


@dataclass(frozen=True)
class CAGradConfig:
    """CAGrad (Liu et al., 2021): ``c`` scales the trust ball around the mean gradient.

    ``c >= 1`` guarantees no task increases to first order; the paper's default is 0.4.
    """

    c: float = 0.4
    max_iter: int = 100

    def __post_init__(self) -> None:
        if self.c < 0:
            raise ValueError(f"CAGradConfig.c must be >= 0, got {self.c}")


@dataclass(frozen=True)
class NashMTLConfig:
    """Nash-MTL (Navon et al., 2022): ``reg_eps`` regularises the normalised Gramian."""

    reg_eps: float = 1e-6
    max_iter: int = 100


@dataclass(frozen=True)
class AlignedMTLConfig:
    """Aligned-MTL (Senushkin et al., 2023) through torchjd."""

    scale_mode: Literal["min", "median", "rmse"] = "min"


@dataclass(frozen=True)
class MoCoConfig:
    """MoCo (Fernando et al., 2023): gradient tracking ``beta``, weight step ``gamma``, ``rho``."""

    beta: float = 0.5
    gamma: float = 0.1
    rho: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.beta <= 1:
            raise ValueError(f"MoCoConfig.beta must lie in (0, 1], got {self.beta}")
        if self.gamma <= 0:
            raise ValueError(f"MoCoConfig.gamma must be > 0, got {self.gamma}")


@dataclass(frozen=True)
class FAMOConfig:
    """FAMO (Liu et al., 2023): logits learnt by Adam from the change of the log-losses.

    ``min_loss`` is the lower bound subtracted before the log (losses must stay above it).
    """

    adam: AdamConfig = field(default_factory=lambda: AdamConfig(lr=0.025, weight_decay=1e-3))
    min_loss: float = 0.0
    eps: float = 1e-8


@dataclass(frozen=True)
class GradNormConfig:
    """GradNorm (Chen et al., 2018): ``alpha`` is the restoring-force asymmetry."""

    alpha: float = 1.5
    adam: AdamConfig = field(default_factory=lambda: AdamConfig(lr=0.025))


@dataclass(frozen=True)
class UncertaintyConfig:
    """Uncertainty weighting (Kendall et al., 2018): log-variances learnt by their own Adam."""

    adam: AdamConfig = field(default_factory=lambda: AdamConfig(lr=0.025))


@dataclass(frozen=True)
class GradientConfig:
    """Everything the multi-task update needs; ``aggregator`` names an entry of the registry.

    ``metrics_every``: compute conflict metrics every N updates, the first included (0 never).
    Gradient-based aggregators get them almost free; loss-based ones (``sum``, the default,
    among them) pay a per-task Jacobian on those updates: ~35 % of a tiny-model update with 3
    tasks, and with 8 tasks on the base model more than the update itself, hence 50.
    ``jacobian_chunk_size``: rows of the per-task Jacobian per batched backward (``None``: all
    tasks in one vmapped backward; ``1``: a plain loop, for ops that lack vmap rules).
    """

    aggregator: str = "sum"
    metrics_every: int = 50
    jacobian_chunk_size: int | None = None
    upgrad: UPGradConfig = field(default_factory=UPGradConfig)
    cagrad: CAGradConfig = field(default_factory=CAGradConfig)
    nash_mtl: NashMTLConfig = field(default_factory=NashMTLConfig)
    aligned_mtl: AlignedMTLConfig = field(default_factory=AlignedMTLConfig)
    moco: MoCoConfig = field(default_factory=MoCoConfig)
    famo: FAMOConfig = field(default_factory=FAMOConfig)
    gradnorm: GradNormConfig = field(default_factory=GradNormConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)

    def __post_init__(self) -> None:
        # Imported here: the registry imports this module.
        from mtrl.agents.gradients.registry import check_aggregator_name

        check_aggregator_name(self.aggregator)
        if self.metrics_every < 0:
            raise ValueError(f"metrics_every must be >= 0, got {self.metrics_every}")
        if self.jacobian_chunk_size is not None and self.jacobian_chunk_size < 1:
            raise ValueError(
                f"jacobian_chunk_size must be None or >= 1, got {self.jacobian_chunk_size}"
            )

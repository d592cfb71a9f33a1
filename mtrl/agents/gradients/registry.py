"""Aggregators by name: ``build_aggregator(GradientConfig(aggregator="upgrad"), num_tasks)``."""

from __future__ import annotations

from collections.abc import Callable

from torchjd.aggregation import AlignedMTL as TorchJDAlignedMTL
from torchjd.aggregation import PCGrad, UPGrad

from mtrl.agents.gradients.base import Aggregator
from mtrl.agents.gradients.config import GradientConfig
from mtrl.agents.gradients.loss_based import FAMO, MeanLosses, SumLosses, UncertaintyWeighting
from mtrl.agents.gradients.stateful_gradient import GradNorm, MoCo
from mtrl.agents.gradients.torchjd_methods import (
    CAGradWeighting,
    NashMTLWeighting,
    TorchDualConeProjector,
    TorchJDGradientAggregator,
    gramian_weighted,
    quadprog_projector,
)

Builder = Callable[[GradientConfig, int], Aggregator]


def _upgrad(config: GradientConfig, num_tasks: int) -> Aggregator:
    cfg = config.upgrad
    if cfg.projector == "quadprog":
        projector = quadprog_projector()
    elif cfg.projector == "torch":
        projector = TorchDualConeProjector(reg_eps=cfg.reg_eps)
    else:
        raise ValueError(f"unknown UPGrad projector {cfg.projector!r}; valid: 'torch', 'quadprog'")
    return TorchJDGradientAggregator("upgrad", num_tasks, UPGrad(projector=projector))


def _cagrad(config: GradientConfig, num_tasks: int) -> Aggregator:
    weighting = CAGradWeighting(c=config.cagrad.c, max_iter=config.cagrad.max_iter)
    return TorchJDGradientAggregator("cagrad", num_tasks, gramian_weighted(weighting))


def _nash_mtl(config: GradientConfig, num_tasks: int) -> Aggregator:
    cfg = config.nash_mtl
    weighting = NashMTLWeighting(reg_eps=cfg.reg_eps, max_iter=cfg.max_iter)
    return TorchJDGradientAggregator("nash_mtl", num_tasks, gramian_weighted(weighting))


def _aligned_mtl(config: GradientConfig, num_tasks: int) -> Aggregator:
    inner = TorchJDAlignedMTL(scale_mode=config.aligned_mtl.scale_mode)
    return TorchJDGradientAggregator("aligned_mtl", num_tasks, inner)


AGGREGATORS: dict[str, Builder] = {
    "sum": lambda _config, t: SumLosses(t),
    "mean": lambda _config, t: MeanLosses(t),
    "pcgrad": lambda _config, t: TorchJDGradientAggregator("pcgrad", t, PCGrad()),
    "cagrad": _cagrad,
    "nash_mtl": _nash_mtl,
    "aligned_mtl": _aligned_mtl,
    "upgrad": _upgrad,
    "moco": lambda config, t: MoCo(t, config.moco),
    "famo": lambda config, t: FAMO(t, config.famo),
    "gradnorm": lambda config, t: GradNorm(t, config.gradnorm),
    "uncertainty": lambda config, t: UncertaintyWeighting(t, config.uncertainty),
}


def available_aggregators() -> tuple[str, ...]:
    return tuple(AGGREGATORS)


def check_aggregator_name(name: str) -> None:
    if name not in AGGREGATORS:
        valid = ", ".join(AGGREGATORS)
        raise ValueError(f"unknown aggregator {name!r}; valid names: {valid}")


def build_aggregator(config: GradientConfig, num_tasks: int) -> Aggregator:
    """The aggregator named by ``config.aggregator``; unknown names list the valid ones."""
    check_aggregator_name(config.aggregator)
    return AGGREGATORS[config.aggregator](config, num_tasks)

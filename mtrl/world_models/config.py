"""World-model hyper-parameters: one frozen dataclass and named size presets."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

TextEncoderKind = Literal["hashed", "minilm"]


@dataclass(frozen=True)
class WorldModelConfig:
    """Everything that shapes the world model (tasks come from the ``TaskSet``).

    Token layout: 2 tokens per environment step (observation latent, action). Training
    sequences have ``context_steps`` steps (T + 1 observations); search attends to the last
    ``kv_window_steps`` steps through a KV cache, or fewer for the suites listed in
    ``kv_window_by_suite`` (ScaleZero/UniZero: train 10 / window 4 on Atari, 5 / 2 on DMC).
    """

    # Transformer backbone.
    embed_dim: int = 768
    num_layers: int = 4
    num_heads: int = 24
    context_steps: int = 10  # longest training sequence, in env steps
    max_steps: int = 32  # learned position table, in env steps; later positions reuse the last
    kv_window_steps: int = 4  # KV cache window at inference, in env steps (= ring capacity / 2)
    kv_window_by_suite: tuple[tuple[str, int], ...] = (("dmc", 2),)  # shorter windows per suite
    # Train with the same per-task sliding windows as search (exactly consistent); the reference
    # trains with full causal attention over the sequence and searches with a window.
    train_with_kv_window: bool = False

    # Mixture-of-Experts feed-forward (8 SwiGLU experts + 1 shared, per-token routing).
    num_experts: int = 8  # 0: a dense SwiGLU of the same active size (for comparisons)
    top_k: int = 1
    expert_hidden: int = 2048  # SwiGLU hidden width of each expert (and of the shared expert)
    shared_expert: bool = True
    capacity_factor: float | None = None  # None: no token is ever dropped
    balance_coef: float = 0.01  # Switch Transformer's alpha (Fedus et al. 2021)

    # LoRA banks for Dynamic Parameter Scaling (attention q/k/v/out and expert linears).
    lora_count: int = 3  # adapters per wrapped linear = DPS stages after stage 0
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_scale_bound: float = 0.2  # adapter scales live in 1 ± bound (tanh-bounded)

    # Encoders.
    image_channels: tuple[int, ...] = (64, 128, 256)  # one stride-2 ResNet stage each
    image_grid: int = 8  # stride-2 encoders pool to grid x grid before the projection
    vector_hidden: int = 512
    text_encoder: TextEncoderKind = "hashed"
    text_buckets: int = 1 << 15  # hashed word + bigram vocabulary
    text_hidden: int = 512
    simnorm_group: int = 8  # SimNorm latent groups (TD-MPC2, Hansen et al. 2024)

    # Heads.
    per_task_heads: bool = False  # False: shared heads conditioned on a task embedding
    head_hidden: int = 512
    support_size: int = 300  # categorical value/reward over [-S, S] of h(x): 2S + 1 bins
    support_step: float = 1.0  # bin spacing in h(x); 1 is MuZero's (mtrl.world_models.support)
    # A head that predicts, at each action token, whether the transition ends the episode
    # (DreamerV3's continue predictor, Hafner et al. 2023); the search weighs a child's value
    # by 1 - p and treats a child with p > 0.5 as terminal (nothing below it). Without it a
    # fatal action can only show through V of the imagined next latent, which on Asterix
    # stays blind to which action ends the game where the same (s, a) data teaches a
    # classifier well (bench/learning.md, session 20).
    end_head: bool = False
    # A head that predicts, at each action token, the n-step return that followed the action:
    # Q(s, a), trained on the same target as V(s) at the observation token (whose target is
    # the return after the action taken there). The search then scores a new child by it
    # (r + discount * v = Q) instead of by V of the imagined next latent: the action reaches
    # its value in one hop, as in a DQN's or TD-MPC2's Q, where V(s') needs the dynamics to
    # imagine what the action changed (on SpaceInvaders the fatal action scores as well as
    # the others through V(s'): bench/learning.md, sessions 19-23).
    q_head: bool = False
    log_std_min: float = -5.0
    log_std_max: float = 1.0
    # The Gaussian policy's std before training (continuous tasks, actions scaled to [-1, 1]).
    # None: the middle of the log-std range, exp(-2) = 0.135 with the defaults. The search's
    # candidates are drawn from this policy, so a narrow start only ever tries actions near
    # the mean (walker-walk stayed at its random level through 41,760 steps so, its std never
    # leaving this start: bench/learning.md, session 14).
    policy_init_std: float | None = None
    # Entropy bonus of the Gaussian policy (continuous tasks): the sampled-action NLL pulls the
    # std towards the spread of K weighted samples, which shrinks every round without it.
    # Sampled EfficientZero / UniZero's DMC configs use a policy-entropy weight for this.
    policy_entropy_coef: float = 0.0
    # Value-gradient policy improvement (continuous tasks), TD-MPC2's policy objective on this
    # model: an action drawn from the Gaussian by reparameterisation is scored r(s, a) + γ V(s')
    # by a frozen critic (the learner's target network) from the observation alone, as the
    # search scores a root's candidates, and the policy head climbs that score (divided by its
    # 5-95 percentile range per task in the batch, as TD-MPC2 scales Q). The sampled-action
    # NLL alone only moves the policy towards whichever of its own K samples the search
    # preferred, which never found walker-walk's gait (bench/learning.md, sessions 14-15).
    # The coefficient balances the two: on walker-walk's early checkpoints |dQ/da| / range is
    # 0.02-0.07 per dimension against ~1 for the NLL's pull (bench/gaussian_policy.py). 0: off.
    policy_value_coef: float = 0.0
    # Entropy bonus of the discrete/text policy. Gumbel MuZero considers only the Gumbel-top-k
    # actions by prior; one whose prior has vanished is never searched, so a reward found by
    # exploration never reaches the policy target. A small bonus keeps such actions in reach.
    discrete_entropy_coef: float = 0.0
    task_token_embedding: bool = True  # add a task embedding to every transformer token

    # Momentum (EMA) target encoder for the next-latent loss.
    target_momentum: float = 0.99

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim {self.embed_dim} not divisible by {self.num_heads} heads")
        if self.embed_dim % self.simnorm_group:
            raise ValueError(f"embed_dim must be a multiple of simnorm_group {self.simnorm_group}")
        if self.num_experts and not 1 <= self.top_k <= self.num_experts:
            raise ValueError(f"top_k must be in [1, {self.num_experts}], got {self.top_k}")
        if not 1 <= self.kv_window_steps <= self.max_steps:
            raise ValueError("kv_window_steps must be in [1, max_steps]")
        if any(not 1 <= w <= self.kv_window_steps for _, w in self.kv_window_by_suite):
            raise ValueError("kv_window_by_suite windows must be in [1, kv_window_steps]")
        if self.context_steps > self.max_steps:
            raise ValueError("context_steps must not exceed max_steps (the position table)")
        if not self.support_step > 0:
            raise ValueError(f"support_step must be positive, got {self.support_step}")
        if self.text_encoder not in ("hashed", "minilm"):
            raise ValueError(f"text_encoder must be 'hashed' or 'minilm', got {self.text_encoder}")
        std = self.policy_init_std
        if std is not None and not (
            std > 0 and self.log_std_min < math.log(std) < self.log_std_max
        ):
            low, high = math.exp(self.log_std_min), math.exp(self.log_std_max)
            raise ValueError(f"policy_init_std must be in ({low:.3g}, {high:.3g}), got {std}")

    @property
    def log_std_shift(self) -> float:
        """What the policy head adds to its log-std pre-activation: 0 starts the std at the
        middle of the log-std range, this starts it at ``policy_init_std``."""
        if self.policy_init_std is None:
            return 0.0
        span = self.log_std_max - self.log_std_min
        u = (math.log(self.policy_init_std) - self.log_std_min) / span
        return math.log(u / (1.0 - u))

    @property
    def num_bins(self) -> int:
        return 2 * self.support_size + 1

    @property
    def support(self) -> tuple[int, float]:
        """(size, step) of the categorical value/reward support, as ``support_to_scalar``
        and ``scalar_to_support`` take them."""
        return self.support_size, self.support_step

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def kv_window(self, suite: str) -> int:
        """Attention window of a suite's tasks at inference, in env steps."""
        return dict(self.kv_window_by_suite).get(suite, self.kv_window_steps)

    def with_(self, **changes: object) -> WorldModelConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return replace(self, **changes)


def _tiny() -> WorldModelConfig:
    return WorldModelConfig(
        embed_dim=32,
        num_layers=2,
        num_heads=2,
        context_steps=5,
        max_steps=8,
        kv_window_steps=4,
        num_experts=8,
        expert_hidden=32,
        lora_count=2,
        lora_rank=2,
        lora_alpha=4.0,
        image_channels=(8, 16),
        image_grid=4,
        vector_hidden=32,
        text_buckets=1 << 10,
        text_hidden=32,
        head_hidden=32,
        support_size=10,
    )


def _small() -> WorldModelConfig:
    return WorldModelConfig(
        embed_dim=256,
        num_layers=2,
        num_heads=8,
        expert_hidden=512,
        lora_rank=4,
        lora_alpha=8.0,
        image_channels=(32, 64, 128),
        vector_hidden=256,
        text_buckets=1 << 14,
        text_hidden=256,
        head_hidden=256,
        support_size=50,
    )


PRESETS: dict[str, WorldModelConfig] = {
    "tiny": _tiny(),  # CPU tests: trains in seconds
    "small": _small(),  # laptop-sized experiments
    "base": WorldModelConfig(),  # ScaleZero-like: 768-d, 4 layers, 24 heads, 8 experts
}


def preset(name: str, **changes: object) -> WorldModelConfig:
    """A named preset, optionally with some fields changed."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {sorted(PRESETS)}")
    return replace(PRESETS[name], **changes)

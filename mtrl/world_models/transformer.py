"""Causal transformer over (observation, action) tokens, with a ring-buffer KV cache.

Pre-norm blocks (attention, then MoE feed-forward), SDPA attention, learned absolute
positions added to the input tokens. Positions past the table reuse its last entry.

KV cache: a fixed-capacity ring of ``C = 2 * kv_window_steps`` tokens per row. Token number
``n`` (its absolute index) goes to slot ``n % C``, so the cache always holds the last ``C``
tokens; attention over keys is order-free (positions are already baked into them), so ring
order does not matter. Every row has its own count (one call can advance trees of different
depths) and may have its own shorter window (per-suite windows: a slot is attended iff its
token's age is below the row's window). The full forward with the same per-row sliding
windows gives exactly the same outputs (tested), so training can match search exactly
(``train_with_kv_window``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from mtrl.world_models.config import WorldModelConfig
from mtrl.world_models.lora import LoRALinear, lora_kwargs
from mtrl.world_models.moe import MoE, SwiGLU


@dataclass(frozen=True)
class KVCache:
    """Keys and values of the last ``capacity`` tokens of each of B rows, for every layer."""

    keys: torch.Tensor  # [L, B, H, C, Dh]
    values: torch.Tensor  # [L, B, H, C, Dh]
    count: torch.Tensor  # [B] int64, tokens written so far (= absolute index of the next token)

    @property
    def capacity(self) -> int:
        return int(self.keys.shape[3])

    def index(self, rows: torch.Tensor) -> KVCache:
        """The cache of some rows (e.g. the parents of the nodes a search expands)."""
        return KVCache(self.keys[:, rows], self.values[:, rows], self.count[rows])

    def valid(self, window: torch.Tensor | None = None) -> torch.Tensor:
        """[B, C] bool: slots that hold a token (one of the last ``window`` [B] tokens)."""
        slots = torch.arange(self.capacity, device=self.count.device)[None, :]
        count = self.count[:, None]
        valid = slots < count.clamp_max(self.capacity)
        if window is None:
            return valid
        age = (count - 1 - slots) % self.capacity  # 0 for the newest token
        return valid & (age < window[:, None])


class Attention(nn.Module):
    def __init__(self, cfg: WorldModelConfig, bank: dict[str, float]) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.heads, self.head_dim = cfg.num_heads, cfg.head_dim
        self.q, self.k, self.v = (LoRALinear(d, d, bank) for _ in range(3))
        self.out = LoRALinear(d, d, bank)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, D] -> [B, H, L, Dh]."""
        return x.unflatten(-1, (self.heads, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Full sequence: ``x`` [B, L, D], ``mask`` [L, L] bool (True = may attend)."""
        q, k, v = self.split(self.q(x)), self.split(self.k(x)), self.split(self.v(x))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).flatten(2))

    def step(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        slot: torch.Tensor,
        valid: torch.Tensor,
    ) -> torch.Tensor:
        """One token per row: ``x`` [B, D]; writes its key/value into ``keys``/``values``
        [B, H, C, Dh] at ``slot`` [B] (in place: the caller owns them), attends over ``valid``
        [B, C] slots."""
        rows = torch.arange(x.shape[0], device=x.device)
        # The cache keeps its dtype (autocast may compute k, v in bf16).
        keys[rows, :, slot] = self.split(self.k(x)[:, None])[:, :, 0].to(keys.dtype)
        values[rows, :, slot] = self.split(self.v(x)[:, None])[:, :, 0].to(values.dtype)
        q = self.split(self.q(x)[:, None])  # [B, H, 1, Dh]
        y = F.scaled_dot_product_attention(q, keys, values, attn_mask=valid[:, None, None, :])
        return self.out(y[:, :, 0].flatten(1))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + ffn(LN(x))."""

    def __init__(self, cfg: WorldModelConfig, num_tasks: int, bank: dict[str, float]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.embed_dim)
        self.norm2 = nn.LayerNorm(cfg.embed_dim)
        self.attn = Attention(cfg, bank)
        self.ffn: nn.Module
        if cfg.num_experts:
            self.ffn = MoE(
                cfg.embed_dim,
                cfg.expert_hidden,
                cfg.num_experts,
                cfg.top_k,
                num_tasks,
                bank,
                shared=cfg.shared_expert,
                capacity_factor=cfg.capacity_factor,
            )
        else:  # dense baseline with the active width of top-k experts plus the shared one
            width = cfg.expert_hidden * (cfg.top_k + int(cfg.shared_expert))
            self.ffn = SwiGLU(cfg.embed_dim, width, bank)

    def feed_forward(
        self, x: torch.Tensor, token_task: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed-forward on flattened tokens; returns (output, balance loss)."""
        h = self.norm2(x).flatten(0, -2)
        tasks = None if token_task is None else token_task.flatten()
        if isinstance(self.ffn, MoE):
            y, aux = self.ffn(h, tasks)
            return y.view_as(x), aux.balance
        return self.ffn(h).view_as(x), x.new_zeros(())


class Transformer(nn.Module):
    def __init__(self, cfg: WorldModelConfig, num_tasks: int) -> None:
        super().__init__()
        self.cfg = cfg
        bank = lora_kwargs(cfg.lora_count, cfg.lora_rank, cfg.lora_alpha, cfg.lora_scale_bound)
        self.pos = nn.Embedding(2 * cfg.max_steps, cfg.embed_dim)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(cfg, num_tasks, bank) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def positions(self, index: torch.Tensor) -> torch.Tensor:
        return self.pos(index.clamp_max(self.pos.num_embeddings - 1))

    def forward(
        self,
        x: torch.Tensor,
        token_task: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, L, D] tokens from position 0, ``token_task`` [B, L]; ``window`` [B] limits
        each row's attention to its last ``window`` tokens. Returns ([B, L, D], balance loss)."""
        length = x.shape[1]
        x = x + self.positions(torch.arange(length, device=x.device))
        mask = causal_mask(length, window, x.device)
        balance = x.new_zeros(())
        for block in self.blocks:
            x = x + block.attn(block.norm1(x), mask)
            y, bal = block.feed_forward(x, token_task)
            x, balance = x + y, balance + bal
        return self.norm(x), balance / len(self.blocks)

    def empty_cache(self, batch: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        cfg = self.cfg
        shape = (cfg.num_layers, batch, cfg.num_heads, 2 * cfg.kv_window_steps, cfg.head_dim)
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        count = torch.zeros(batch, dtype=torch.int64, device=device)
        return KVCache(zeros, zeros.clone(), count)

    def step(
        self,
        x: torch.Tensor,
        cache: KVCache,
        token_task: torch.Tensor | None = None,
        window: torch.Tensor | None = None,
        inplace: bool = False,
    ) -> tuple[torch.Tensor, KVCache, torch.Tensor]:
        """Append one token per row: ``x`` [B, D] -> ([B, D], new cache, balance loss).
        ``window`` [B] (tokens, at most the capacity) limits each row's attention.

        The input cache is left untouched unless ``inplace`` (search expands several children
        from one parent state, so steps are functional by default).
        """
        keys, values = layer_caches(cache, inplace)
        slot = cache.count % cache.capacity
        valid = replace(cache, count=cache.count + 1).valid(window)  # this token included
        x = x + self.positions(cache.count)
        balance = x.new_zeros(())
        for layer, block in enumerate(self.blocks):
            x = x + block.attn.step(block.norm1(x), keys[layer], values[layer], slot, valid)
            y, bal = block.feed_forward(x, token_task)
            x, balance = x + y, balance + bal
        after = KVCache(stack_layers(keys), stack_layers(values), cache.count + 1)
        return self.norm(x), after, balance / len(self.blocks)


def layer_caches(
    cache: KVCache, inplace: bool
) -> tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]:
    """Per layer, the key and value buffers this step writes its token into: views of the
    cache itself (``inplace``), of one copy of it, or, when autograd may differentiate through
    the step, one copy per layer (a write into one layer's view of a shared tensor would
    invalidate the keys another layer saved for backward)."""
    if inplace or not torch.is_grad_enabled():
        keys = cache.keys if inplace else cache.keys.clone()
        values = cache.values if inplace else cache.values.clone()
        return keys, values
    return [k.clone() for k in cache.keys], [v.clone() for v in cache.values]


def stack_layers(buffers: Sequence[torch.Tensor]) -> torch.Tensor:
    """[L, ...]: the cache tensor itself, or the per-layer copies stacked."""
    return buffers if isinstance(buffers, torch.Tensor) else torch.stack(list(buffers))


def causal_mask(length: int, window: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """[L, L] (or [B, 1, L, L] with per-row ``window`` [B]) bool: query i may attend key j
    iff j <= i (and i - j < window)."""
    i = torch.arange(length, device=device)
    mask = i[None, :] <= i[:, None]
    if window is None:
        return mask
    return mask & ((i[:, None] - i[None, :]) < window[:, None, None, None])

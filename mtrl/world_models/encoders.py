"""Observation encoders: an image ResNet per frame shape, per-task vector MLPs, one text encoder.

Image tasks share an encoder when they share a frame shape (every Atari game; Breakout and
Asterix of MinAtar). A batch holds frames zero-padded to the task set's largest shape
(``mtrl.envs.batch``); each encoder reads its rows cut back to its own shape, so its first
conv sees exactly its tasks' channels and size. The first shape's encoder is ``image``, as
it was when a task set allowed one shape, so single-shape models (and their checkpoints and
initialisation) are unchanged; further shapes go to ``more_images``. MinAtar's binary object
grids (one cell per object) keep full resolution: stride-1 stages instead of stride-2 ones,
which would merge neighbouring objects of a 10x10 grid (MinAtar's own DQN uses one stride-1
conv for the same reason, Young & Tian 2019).

Every encoder ends in SimNorm (TD-MPC2, Hansen et al. 2024): the latent is split into groups
of ``simnorm_group`` that are each softmax-normalised, which bounds latents and keeps the
next-latent regression from collapsing or exploding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtrl.envs.batch import TaskSet
from mtrl.envs.spec import Modality
from mtrl.world_models.config import WorldModelConfig
from mtrl.world_models.task_layout import TaskParts, span
from mtrl.world_models.text import HashedTextEncoder, MiniLMTextEncoder, encode_unique
from mtrl.world_models.types import Observations


def simnorm(x: torch.Tensor, group: int) -> torch.Tensor:
    return torch.softmax(x.unflatten(-1, (-1, group)), dim=-1).flatten(-2)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        groups = min(8, channels)
        self.net = nn.Sequential(
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ImageEncoder(nn.Module):
    """uint8 [N, C, H, W] -> [N, D]: stride-2 conv + residual block per stage, pool, project.

    ``stride=1`` keeps the full resolution through every stage and into the projection, without
    the pooling: in an object grid one cell is one object, and averaging a 10x10 grid down to
    ``image_grid`` cells would blur exactly the positions the game is about (which lane the
    chicken is in, where the ball is); MinAtar's own DQN also projects every cell of its
    feature map (Young & Tian 2019).

    GroupNorm rather than BatchNorm: a row's latent must not depend on the other rows of a
    mixed-task batch (and search calls it with arbitrary batch sizes).
    """

    def __init__(self, shape: tuple[int, ...], cfg: WorldModelConfig, stride: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = shape[0]
        for channels in cfg.image_channels:
            conv = nn.Conv2d(prev, channels, 3, stride=stride, padding=1)
            layers += [conv, ResidualBlock(channels)]
            prev = channels
        if stride == 1:  # every cell of the grid
            pool, cells = [], shape[1] * shape[2]
        else:
            pool, cells = [nn.AdaptiveAvgPool2d(cfg.image_grid)], cfg.image_grid**2
        self.net = nn.Sequential(*layers, nn.SiLU(), *pool, nn.Flatten())
        self.proj = nn.Linear(prev * cells, cfg.embed_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(self.net(frames.float() / 255.0))


class VectorEncoders(nn.Module):
    """One 2-layer MLP per vector task, stored stacked ``[Tv, ...]`` (inputs zero-padded).

    Applied with one batched matmul per task present (a loop over the few tasks, not rows).
    """

    def __init__(self, dims: dict[int, int], cfg: WorldModelConfig) -> None:
        super().__init__()
        self.slot = {task: i for i, task in enumerate(sorted(dims))}  # task id -> stacked index
        self.dims = dict(dims)
        width, hidden, count = max(dims.values()), cfg.vector_hidden, len(dims)
        self.w1 = nn.Parameter(torch.randn(count, width, hidden) / width**0.5)
        self.b1 = nn.Parameter(torch.zeros(count, hidden))
        self.w2 = nn.Parameter(torch.randn(count, hidden, cfg.embed_dim) / hidden**0.5)
        self.b2 = nn.Parameter(torch.zeros(count, cfg.embed_dim))

    def forward(self, x: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """``x`` [Nv, Dmax] zero-padded, ``task_ids`` [Nv] -> [Nv, D]."""
        out = x.new_empty(x.shape[0], self.w2.shape[-1])
        for task in torch.unique(task_ids).tolist():
            rows = (task_ids == task).nonzero().squeeze(1)
            out[rows] = self.mlp(x[rows], self.slot[task]).to(out.dtype)
        return out

    def mlp(self, x: torch.Tensor, i: int) -> torch.Tensor:
        h = F.layer_norm(x @ self.w1[i] + self.b1[i], (self.b1.shape[-1],))
        return F.silu(h) @ self.w2[i] + self.b2[i]

    def task_parts(self) -> TaskParts:
        """A task's stacked MLP; of ``w1`` only the rows of its own (unpadded) inputs."""
        parts: TaskParts = {"w1": {}, "b1": {}, "w2": {}, "b2": {}}
        for task, i in self.slot.items():
            parts["w1"][task] = (span(i), span(0, self.dims[task]))
            for name in ("b1", "w2", "b2"):
                parts[name][task] = (span(i),)
        return parts


class ObsEncoder(nn.Module):
    """Any ``Observations`` batch -> latents [N, D]; also encodes command strings."""

    def __init__(self, tasks: TaskSet, cfg: WorldModelConfig) -> None:
        super().__init__()
        self.group = cfg.simnorm_group
        self.dim = cfg.embed_dim
        vector = {
            i: s.obs_shape[0] for i, s in enumerate(tasks.specs) if s.modality == Modality.VECTOR
        }
        has_text = any(s.modality == Modality.TEXT for s in tasks.specs)
        kinds = _image_kinds(tasks)
        self.image_kinds = list(dict.fromkeys(k for k in kinds if k is not None))
        encoders = [ImageEncoder(shape, cfg, stride) for shape, stride in self.image_kinds]
        self.image = encoders[0] if encoders else None
        # More frame shapes only: a one-shape model's state dict keeps exactly its old keys.
        self.more_images = nn.ModuleList(encoders[1:]) if len(encoders) > 1 else None
        kind_of_task = [self.image_kinds.index(k) if k else -1 for k in kinds]
        self.register_buffer("image_kind", torch.tensor(kind_of_task), persistent=False)
        self.vector = VectorEncoders(vector, cfg) if vector else None
        self.text: nn.Module | None = None
        self.text_proj: nn.Module | None = None
        if has_text:
            self.text = (
                MiniLMTextEncoder(cfg.text_hidden, cfg.embed_dim)
                if cfg.text_encoder == "minilm"
                else HashedTextEncoder(cfg.text_buckets, cfg.text_hidden, cfg.embed_dim)
            )
            self.text_proj = nn.Linear(cfg.embed_dim, cfg.embed_dim)  # text features -> latent

    def forward(self, obs: Observations) -> torch.Tensor:
        device = obs.task_ids.device
        out = torch.zeros(obs.size, self.dim, device=device)
        if obs.image_rows.numel():
            _require(self.image, "image")
            tasks = obs.task_ids[obs.image_rows]
            out = _put(out, obs.image_rows, self.encode_images(obs.image.to(device), tasks))
        if obs.vector_rows.numel():
            _require(self.vector, "vector")
            tasks = obs.task_ids[obs.vector_rows]
            out = _put(out, obs.vector_rows, self.vector(obs.vector.to(device), tasks))
        if obs.text_rows.numel():
            _require(self.text_proj, "text")
            out = _put(out, obs.text_rows, self.text_proj(self.encode_text(obs.text)))
        return simnorm(out, self.group)

    def encode_images(self, frames: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """Padded frames [Ni, C, H, W] of tasks ``task_ids`` [Ni] -> [Ni, D], each row by its
        frame shape's encoder on the frame cut back to that shape."""
        if self.more_images is None:  # one shape: no grouping, no host sync (as before)
            (c, h, w), _ = self.image_kinds[0]
            return self.image(frames[:, :c, :h, :w])
        encoders = [self.image, *self.more_images]
        kinds = self.image_kind[task_ids]
        out = frames.new_empty(frames.shape[0], self.dim, dtype=torch.float32)
        for kind in torch.unique(kinds).tolist():
            rows = (kinds == kind).nonzero().squeeze(1)
            (c, h, w), _ = self.image_kinds[kind]
            out = _put(out, rows, encoders[kind](frames[rows, :c, :h, :w]))
        return out

    def encode_text(self, texts: tuple[str, ...]) -> torch.Tensor:
        _require(self.text, "text")
        return encode_unique(self.text, texts)

    def encode_commands(
        self, commands: tuple[tuple[str, ...], ...], width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Command lists of Nt rows -> embeddings [Nt, width, D] (zero-padded) and mask [Nt, A]."""
        device = next(self.parameters()).device
        emb = torch.zeros(len(commands), width, self.dim, device=device)
        mask = torch.zeros(len(commands), width, dtype=torch.bool, device=device)
        flat = [c for row in commands for c in row[:width]]
        if not flat:
            return emb, mask
        rows = torch.tensor(
            [r for r, row in enumerate(commands) for _ in row[:width]], device=device
        )
        cols = torch.tensor([c for row in commands for c in range(len(row[:width]))], device=device)
        emb = emb.index_put((rows, cols), self.encode_text(tuple(flat)).to(emb.dtype))
        mask[rows, cols] = True
        return emb, mask


# Suites whose frames are object grids, one cell per object: encoded at full resolution.
FULL_RESOLUTION_SUITES = frozenset({"minatar"})

ImageKind = tuple[tuple[int, ...], int]  # (frame shape, stride of the encoder's stages)


def _image_kinds(tasks: TaskSet) -> list[ImageKind | None]:
    """Per task: the encoder kind it needs (``None`` for non-image tasks)."""
    return [
        (s.obs_shape, 1 if s.suite in FULL_RESOLUTION_SUITES else 2)
        if s.modality == Modality.IMAGE
        else None
        for s in tasks.specs
    ]


def _require(encoder: nn.Module | None, modality: str) -> None:
    if encoder is None:
        raise ValueError(f"{modality} observations, but the TaskSet has no {modality} task")


def _put(out: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``out`` with ``rows`` replaced (out of place; under autocast values may be bf16)."""
    return out.index_copy(0, rows, values.to(out.dtype))

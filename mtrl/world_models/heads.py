"""Task-conditioned heads and action embeddings.

Every head is a ``TaskMLP``: either one MLP per task (``per_task_heads``) or one shared MLP
whose input is ``x + task_embedding[task]``. The same conditioning is used by all heads
(policy, value, reward, next latent), so switching the option changes them all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mtrl.envs.batch import TaskSet
from mtrl.envs.spec import TaskSpec
from mtrl.world_models.task_layout import TaskParts, span, task_rows
from mtrl.world_models.types import Actions, TaskGroups

MASKED = -1e9  # logit of an action outside a task's range (finite: no NaN in softmax)
KIND = {"discrete": 0, "continuous": 1, "text": 2}  # TaskTable.kind codes
DISCRETE, CONTINUOUS, TEXT = KIND["discrete"], KIND["continuous"], KIND["text"]


class TaskMLP(nn.Module):
    """[N, D] -> [N, out]: Linear -> LayerNorm -> SiLU -> Linear, conditioned on the task."""

    def __init__(
        self,
        num_tasks: int,
        d_in: int,
        hidden: int,
        d_out: int,
        per_task: bool,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.per_task, self.num_tasks = per_task, num_tasks
        # Output columns each task uses, where that differs by task (the policy head sets it).
        self.out_columns: dict[int, tuple[int, ...]] | None = None
        lead = (num_tasks,) if per_task else (1,)
        self.w1 = nn.Parameter(torch.randn(*lead, d_in, hidden) / math.sqrt(d_in))
        self.b1 = nn.Parameter(torch.zeros(*lead, hidden))
        # Zero-initialised outputs start value/reward/policy heads at "uniform, zero".
        scale = 0.0 if zero_init else 1.0 / math.sqrt(hidden)
        self.w2 = nn.Parameter(torch.randn(*lead, hidden, d_out) * scale)
        self.b2 = nn.Parameter(torch.zeros(*lead, d_out))
        self.task = None if per_task else nn.Parameter(torch.randn(num_tasks, d_in) * 0.02)

    def mlp(self, x: torch.Tensor, i: int) -> torch.Tensor:
        h = F.layer_norm(x @ self.w1[i] + self.b1[i], (self.b1.shape[-1],))
        return F.silu(h) @ self.w2[i] + self.b2[i]

    def forward(self, x: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        if self.task is not None:
            return self.mlp(x + self.task[groups.task_ids], 0)
        out = x.new_empty(x.shape[0], self.w2.shape[-1])
        for task, rows in groups.groups:  # a loop over the tasks present, not over rows
            out[rows] = self.mlp(x[rows], task).to(out.dtype)  # autocast may give bf16
        return out

    def task_parts(self) -> TaskParts:
        if self.task is not None:  # shared MLP: only the task-embedding rows are per task
            return task_rows(self.num_tasks, "task")
        parts = task_rows(self.num_tasks, "w1", "b1", "w2", "b2")
        if self.out_columns is not None:
            hidden = span(0, self.w2.shape[1])
            for t, cols in self.out_columns.items():
                parts["w2"][t], parts["b2"][t] = (span(t), hidden, cols), (span(t), cols)
        return parts


class TaskTable(nn.Module):
    """Static per-task facts as tensors, indexed by task id (buffers, not parameters)."""

    def __init__(self, tasks: TaskSet, kv_window_steps: tuple[int, ...]) -> None:
        super().__init__()
        specs = tasks.specs
        windows = torch.tensor(kv_window_steps) * 2  # in tokens
        self.register_buffer("kv_window", windows, False)
        width, dim = tasks.max_choices, max(tasks.max_action_dim, 1)
        self.continuous = tuple(i for i, s in enumerate(specs) if s.action.kind == "continuous")
        self.register_buffer("kind", torch.tensor([KIND[s.action.kind] for s in specs]), False)
        n = torch.tensor([s.action.n for s in specs])
        self.register_buffer("num_choices", n, False)
        self.register_buffer("choice_mask", torch.arange(width)[None] < n[:, None], False)
        d = torch.tensor([s.action.dim for s in specs])
        self.register_buffer("dim_mask", torch.arange(dim)[None] < d[:, None], False)
        low = torch.tensor([s.action.low for s in specs], dtype=torch.float32)[:, None]
        high = torch.tensor([s.action.high for s in specs], dtype=torch.float32)[:, None]
        self.register_buffer("center", (high + low) / 2, False)
        self.register_buffer("half_range", (high - low) / 2, False)
        offsets = torch.cumsum(torch.tensor([0] + [s.action.n for s in specs[:-1]]), 0)
        self.register_buffer("table_offset", offsets, False)


class PolicyHead(nn.Module):
    """Discrete logits, text-command scores, or a Gaussian, depending on each row's task."""

    def __init__(self, tasks: TaskSet, table: TaskTable, dim: int, hidden: int, per_task: bool):
        super().__init__()
        self.table, self.choices, self.action_dim = table, tasks.max_choices, tasks.max_action_dim
        self.has_text = any(s.action.kind == "text" for s in tasks.specs)
        width = max(self.choices, 2 * self.action_dim, dim if self.has_text else 0)
        self.mlp = TaskMLP(len(tasks), dim, hidden, width, per_task, zero_init=True)
        self.mlp.out_columns = {t: self.columns(spec, dim) for t, spec in enumerate(tasks.specs)}

    def columns(self, spec: TaskSpec, dim: int) -> tuple[int, ...]:
        """The output columns a task reads (see ``forward``): its logits, its command query,
        or its Gaussian's means and log-stds (which start after the task set's widest action)."""
        if spec.action.kind == "discrete":
            return span(0, spec.action.n)
        if spec.action.kind == "text":
            return span(0, dim)
        k = spec.action.dim
        return span(0, k) + span(self.action_dim, k)

    def forward(
        self,
        h: torch.Tensor,
        groups: TaskGroups,
        commands: torch.Tensor,
        command_mask: torch.Tensor,
        log_std_range: tuple[float, float, float],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> logits [B, A], mean [B, Da], log_std [B, Da]. ``log_std_range``: the log-std's
        bounds and the shift of its pre-activation (``WorldModelConfig.log_std_shift``)."""
        raw = self.mlp(h, groups)
        task = groups.task_ids
        logits = raw[:, : self.choices].masked_fill(~self.table.choice_mask[task], MASKED)
        if self.has_text:  # scaled dot product between a query and each command embedding
            dim = commands.shape[-1]
            scores = torch.einsum("bd,bad->ba", raw[:, :dim], commands) / math.sqrt(dim)
            text = (self.table.kind[task] == TEXT)[:, None]
            logits = torch.where(text, scores.masked_fill(~command_mask, MASKED), logits)
        mean, log_std = self.gaussian(raw, task, log_std_range)
        return logits, mean, log_std

    def gaussian(
        self, raw: torch.Tensor, task: torch.Tensor, log_std_range: tuple[float, float, float]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        da = self.action_dim
        dims = self.table.dim_mask[task][:, :da]
        mean = self.table.center[task] + self.table.half_range[task] * torch.tanh(raw[:, :da])
        low, high, shift = log_std_range  # bounded log-std, as in TD-MPC2
        log_std = low + (high - low) * torch.sigmoid(raw[:, da : 2 * da] + shift)
        return mean * dims, log_std * dims


class ActionEmbedding(nn.Module):
    """Action tokens: a table row per discrete action (per task), a per-task linear for
    continuous actions, a projection of the chosen command's encoding for text games."""

    def __init__(self, tasks: TaskSet, table: TaskTable, dim: int) -> None:
        super().__init__()
        self.table = table
        self.discrete = nn.Embedding(sum(s.action.n for s in tasks.specs) + 1, dim)
        count, da = len(table.continuous), max(tasks.max_action_dim, 1)
        self.slot = {task: i for i, task in enumerate(table.continuous)}
        self.cont_w = nn.Parameter(torch.randn(count, da, dim) / math.sqrt(da))
        self.cont_b = nn.Parameter(torch.zeros(count, dim))
        self.command = nn.Linear(dim, dim)
        choices = [s.action.n for s in tasks.specs]
        self.choice_rows = {  # rows of each task in ``discrete`` (continuous tasks have none)
            t: span(sum(choices[:t]), n) for t, n in enumerate(choices) if n
        }
        self.action_dims = {t: tasks[t].action.dim for t in table.continuous}

    def task_parts(self) -> TaskParts:
        """Rows of a task's actions in the table; a continuous task's linear (of ``cont_w``
        only the rows of its own action dimensions)."""
        return {
            "discrete.weight": {t: (r,) for t, r in self.choice_rows.items()},
            "cont_w": {t: (span(i), span(0, self.action_dims[t])) for t, i in self.slot.items()},
            "cont_b": {t: (span(i),) for t, i in self.slot.items()},
        }

    def forward(self, actions: Actions, groups: TaskGroups, commands: torch.Tensor) -> torch.Tensor:
        task = groups.task_ids
        kind = self.table.kind[task][:, None]
        index = torch.minimum(actions.index.clamp_min(0), self.table.num_choices[task] - 1)
        index = index.clamp_min(0)
        out = self.discrete(self.table.table_offset[task] + index)
        if commands.shape[1]:
            rows = torch.arange(task.shape[0], device=task.device)
            chosen = commands[rows, index.clamp_max(commands.shape[1] - 1)]
            out = torch.where(kind == TEXT, self.command(chosen), out)
        if actions.vector is not None and self.slot:
            out = torch.where(kind == CONTINUOUS, self.continuous(actions.vector, groups), out)
        return out

    def continuous(self, vector: torch.Tensor, groups: TaskGroups) -> torch.Tensor:
        """Per-task linear on actions rescaled to [-1, 1]; rows of other kinds stay zero."""
        task = groups.task_ids
        x = (vector - self.table.center[task]) / self.table.half_range[task]
        x = x[:, : self.cont_w.shape[1]] * self.table.dim_mask[task][:, : self.cont_w.shape[1]]
        out = x.new_zeros(x.shape[0], self.cont_b.shape[-1])
        for t, rows in groups.groups:
            if t in self.slot:
                y = x[rows] @ self.cont_w[self.slot[t]] + self.cont_b[self.slot[t]]
                out[rows] = y.to(out.dtype)
        return out

"""Per-task replay of search-annotated trajectories, sampled as unrolled sequences.

Each task has a ring buffer of rows; a row is one observation ``s_t`` with what acting stored
for it: the action taken, the reward that followed, the search policy and root value, the
legal mask. An episode that ended also stores its final observation as a row without an
action (``is_last``), flagged terminated or truncated, so truncations bootstrap from it and
terminations do not. Rows carry absolute indices (``total_added`` grows forever) so that
overwritten rows are recognised, never mixed into a sequence.

Memory per stored step (``bytes_per_step``): the observation as stored (image tasks: uint8
``C*H*W`` bytes, 12,288 for 3x64x64 frames — a stack of k frames is stored stacked, k times
that; vector tasks: ``4*D`` bytes, or ``2*D`` with ``compact_vectors`` float16, which keeps
about three significant digits), plus ``30 + 4*W + A + 4*dim*(K+1)`` bytes of action, search
policy (width W), searched actions (K of dim, continuous tasks), legal mask (A), reward, value
and bookkeeping: 30 + 72 + 18 = 120 bytes for an Atari step. Text rows hold Python strings,
counted by their UTF-8 length (their offered commands are Python tuples, not counted). A test
checks these numbers against the arrays.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mtrl.agents.targets import n_step_parts
from mtrl.envs.batch import crop_image
from mtrl.envs.registry import refuse_unknown, task_setting
from mtrl.envs.spec import Modality, TaskSpec


@dataclass(frozen=True)
class ReplayConfig:
    capacity: int = 100_000  # rows per task
    unroll_steps: int = 5  # T: a sampled sequence covers s_t .. s_{t+T}
    n_step: int = 5
    discount: float = 0.997
    # (task id or suite, discount) pairs overriding ``discount``; a task id wins over its
    # suite. The discount sets what delay costs: at 0.997 a 100-step text game hardly prefers
    # a point now to the same point ten commands later, so any value error decides between
    # them. Text-game agents use 0.9 (DRRN, He et al. 2016; the Jericho baselines, Hausknecht
    # et al. 2020); TD-MPC2 (Hansen et al. 2024) derives a task's from its episode length.
    task_discounts: tuple[tuple[str, float], ...] = ()
    policy_width: int = 0  # W: 0 means the task's action.n (discrete/text) or K (continuous)
    sampled_actions: int = 8  # K for continuous tasks
    compact_vectors: bool = False  # float16 vector observations
    priority_exponent: float = 0.0  # alpha; 0 samples uniformly
    priority_correction: float = 1.0  # beta of the importance weights

    def __post_init__(self) -> None:
        if self.capacity < self.unroll_steps + 2:
            raise ValueError(f"replay capacity {self.capacity} is too small for the unroll")
        for task, discount in (("", self.discount), *self.task_discounts):
            if not 0.0 < discount <= 1.0:
                where = f" of {task}" if task else ""
                raise ValueError(f"discount{where} must be in (0, 1], got {discount}")

    def discount_for(self, spec: TaskSpec) -> float:
        return task_setting(self.task_discounts, spec, self.discount)

    def discounts(self, specs: Sequence[TaskSpec]) -> torch.Tensor:
        """Each task's discount [len(specs)]. Overrides of registered tasks or suites outside
        ``specs`` are ignored (one launcher's list serves any subset of its tasks); a name of
        no registered task or suite is refused."""
        refuse_unknown(self.task_discounts, "task_discounts")
        return torch.tensor([self.discount_for(s) for s in specs], dtype=torch.float32)


@dataclass(frozen=True)
class SequenceBatch:
    """B sequences of one task; positions past an episode's end repeat its last row, masked."""

    rows: np.ndarray  # [B, T+1] int64 absolute row indices
    valid: np.ndarray  # [B, T+1] bool: position inside the episode (final row included)
    has_action: np.ndarray  # [B, T] bool: a real action was taken at this position
    action_index: np.ndarray  # [B, T] int64
    action_vector: np.ndarray  # [B, T, dim] float32 (continuous tasks; dim 0 otherwise)
    reward: np.ndarray  # [B, T] float32
    ended: np.ndarray  # [B, T] float32: 1 where the action ended the episode (terminated)
    policy: np.ndarray  # [B, T+1, W] float32 search policy targets
    policy_mask: np.ndarray  # [B, T+1] bool: rows with a search policy
    sampled: np.ndarray  # [B, T+1, K, dim] float32 the searched actions (continuous)
    legal: np.ndarray  # [B, T+1, A] bool
    reward_sum: np.ndarray  # [B, T+1] n-step discounted reward sums
    bootstrap_rows: np.ndarray  # [B, T+1] int64 rows whose target value completes the target
    bootstrap_weight: np.ndarray  # [B, T+1] discount^m, 0 at terminal states
    weight: np.ndarray  # [B] importance weights (1 when sampling uniformly)


class TaskReplay:
    def __init__(self, spec: TaskSpec, config: ReplayConfig) -> None:
        self.spec, self.config = spec, config
        self.discount = config.discount_for(spec)
        cap = config.capacity
        action = spec.action
        self.action_dim = action.dim if action.is_continuous else 0
        self.choices = 0 if action.is_continuous else action.n
        self.samples = config.sampled_actions if action.is_continuous else 0
        width = config.policy_width or (self.samples or action.n)
        obs_dtype = (
            np.uint8
            if spec.modality == Modality.IMAGE
            else (np.float16 if config.compact_vectors else np.float32)
        )
        self.text: list[str] = [""] * cap if spec.modality == Modality.TEXT else []
        self.commands: list[tuple[str, ...]] = [()] * cap if self.text else []
        obs_shape = () if spec.modality == Modality.TEXT else spec.obs_shape
        self.obs = np.zeros((cap if obs_shape else 0, *obs_shape), dtype=obs_dtype)
        self.action_index = np.zeros(cap, dtype=np.int64)
        self.action_vector = np.zeros((cap, self.action_dim), dtype=np.float32)
        self.reward = np.zeros(cap, dtype=np.float32)
        self.root_value = np.zeros(cap, dtype=np.float32)
        self.policy = np.zeros((cap, width), dtype=np.float32)
        self.sampled = np.zeros((cap, self.samples, self.action_dim), dtype=np.float32)
        self.legal = np.zeros((cap, self.choices), dtype=bool)
        # The next abs row of the same episode (itself while none): envs interleave their rows.
        self.next_row = np.zeros(cap, dtype=np.int64)
        self.is_last = np.zeros(cap, dtype=bool)
        self.terminated = np.zeros(cap, dtype=bool)
        self.priority = np.zeros(cap, dtype=np.float32)
        self.total_added = 0
        self._open: dict[int, int] = {}  # env key -> newest abs row of its running episode

    def __len__(self) -> int:
        return min(self.total_added, self.config.capacity)

    @property
    def bytes_per_step(self) -> float:
        arrays = (
            self.obs,
            self.action_index,
            self.action_vector,
            self.reward,
            self.root_value,
            self.policy,
            self.sampled,
            self.legal,
            self.next_row,
            self.is_last,
            self.terminated,
            self.priority,
        )
        fixed = sum(a.nbytes for a in arrays) / self.config.capacity
        text = sum(len(t.encode()) for t in self.text) / max(len(self), 1) if self.text else 0
        return fixed + text

    def add(
        self,
        env_key: int,
        obs: np.ndarray | str,
        legal: np.ndarray,
        action: int | np.ndarray,
        reward: float,
        policy: np.ndarray,  # [W]
        root_value: float,
        sampled_actions: np.ndarray | None = None,  # [K, dim] for continuous tasks
        commands: tuple[str, ...] = (),  # text tasks: the commands offered at s_t
    ) -> int:
        """Store ``s_t`` of env ``env_key`` with the action taken there and what followed."""
        row = self._write(env_key, obs, legal, commands)
        slot = row % self.config.capacity
        if self.action_dim:
            self.action_vector[slot] = action
            self.sampled[slot] = sampled_actions
        else:
            self.action_index[slot] = int(action)
        self.reward[slot], self.root_value[slot] = reward, root_value
        self.policy[slot, : len(policy)] = policy
        return row

    def end_episode(
        self,
        env_key: int,
        final_obs: np.ndarray | str,
        terminated: bool,
        commands: tuple[str, ...] = (),
    ) -> None:
        """Store the final observation of env ``env_key``'s episode and close it."""
        if env_key not in self._open:
            raise ValueError(f"{self.spec.id}: env {env_key} has no running episode to end")
        row = self._write(env_key, final_obs, np.zeros(self.choices, dtype=bool), commands)
        slot = row % self.config.capacity
        self.is_last[slot], self.terminated[slot] = True, terminated
        del self._open[env_key]

    def _write(
        self, env_key: int, obs: np.ndarray | str, legal: np.ndarray, commands: tuple[str, ...]
    ) -> int:
        row, slot = self.total_added, self.total_added % self.config.capacity
        previous = self._open.get(env_key, -1)
        if previous >= row - self.config.capacity + 1:  # still stored: link it to this row
            self.next_row[previous % self.config.capacity] = row
        self.next_row[slot] = row
        self._open[env_key] = row
        if self.text:
            self.text[slot], self.commands[slot] = str(obs), tuple(commands)
        else:
            # A frame from a batch mixing frame shapes comes padded (mtrl.envs.batch): store
            # it at the task's own shape, so padding never costs replay memory.
            self.obs[slot] = crop_image(obs, self.obs.shape[1:]) if np.ndim(obs) == 3 else obs
        self.legal[slot] = legal[: self.choices]
        self.is_last[slot] = self.terminated[slot] = False
        self.policy[slot] = 0.0
        if self.config.priority_exponent:  # only read when sampling by priority: O(capacity)
            self.priority[slot] = max(float(self.priority.max(initial=0.0)), 1.0)
        self.total_added += 1
        return row

    def set_priorities(self, rows: np.ndarray, priorities: np.ndarray) -> None:
        live = rows >= self.total_added - len(self)
        self.priority[rows[live] % self.config.capacity] = np.maximum(priorities[live], 1e-6)

    def offered_commands(self, rows: np.ndarray) -> list[tuple[str, ...]]:
        """Text tasks: the commands offered at absolute ``rows`` (flattened)."""
        return [self.commands[s] for s in (rows % self.config.capacity).reshape(-1)]

    def observations(self, rows: np.ndarray) -> np.ndarray | list[str]:
        """Observations of absolute ``rows`` (any shape), float32 for vectors."""
        slots = rows % self.config.capacity
        if self.text:
            return [self.text[s] for s in slots.reshape(-1)]
        obs = self.obs[slots]
        return obs.astype(np.float32) if obs.dtype == np.float16 else obs

    def sample(self, batch_size: int, rng: np.random.Generator) -> SequenceBatch:
        starts, weight = self._sample_starts(batch_size, rng)
        unroll, n = self.config.unroll_steps, self.config.n_step
        offsets = np.arange(unroll + n + 1)
        window = self._follow(starts, unroll + n)  # [B, T+n+1], repeats the last row at the end
        slots = window % self.config.capacity
        lengths = (window[:, 1:] != window[:, :-1]).sum(axis=1)  # real transitions in the window
        ends = window[:, -1]
        acted = offsets[None, : unroll + n] < lengths[:, None]
        rewards = np.where(acted, self.reward[slots[:, : unroll + n]], 0.0)
        # An unfinished episode's newest row still has an action: it is not terminal.
        terminal = (
            self.is_last[ends % self.config.capacity] & self.terminated[ends % self.config.capacity]
        )
        parts = n_step_parts(
            torch.from_numpy(rewards.astype(np.float64)),
            torch.from_numpy(lengths),
            torch.from_numpy(terminal),
            self.discount,
            n,
        )
        rows = window[:, : unroll + 1]
        seq_slots = slots[:, : unroll + 1]
        valid = offsets[None, : unroll + 1] <= lengths[:, None]
        has_action = acted[:, :unroll]
        return SequenceBatch(
            rows=rows,
            valid=valid,
            has_action=has_action,
            action_index=np.where(has_action, self.action_index[seq_slots[:, :-1]], 0),
            action_vector=self.action_vector[seq_slots[:, :-1]] * has_action[..., None],
            reward=np.where(has_action, self.reward[seq_slots[:, :-1]], 0.0).astype(np.float32),
            ended=(
                has_action & self.is_last[seq_slots[:, 1:]] & self.terminated[seq_slots[:, 1:]]
            ).astype(np.float32),
            policy=self.policy[seq_slots],
            policy_mask=valid & ~self.is_last[seq_slots],
            sampled=self.sampled[seq_slots],
            legal=self.legal[seq_slots],
            reward_sum=parts.reward_sum[:, : unroll + 1].numpy().astype(np.float32),
            bootstrap_rows=np.take_along_axis(
                window, parts.bootstrap_index[:, : unroll + 1].numpy(), axis=1
            ),
            bootstrap_weight=parts.bootstrap_weight[:, : unroll + 1].numpy().astype(np.float32),
            weight=weight,
        )

    def _follow(self, starts: np.ndarray, steps: int) -> np.ndarray:
        rows = [starts]
        for _ in range(steps):  # one vectorised gather per step along the episodes
            rows.append(self.next_row[rows[-1] % self.config.capacity])
        return np.stack(rows, axis=1)

    def _sample_starts(self, batch_size: int, rng: np.random.Generator):
        size = len(self)
        oldest = self.total_added - size
        candidates = oldest + np.arange(size)
        candidates = candidates[~self.is_last[candidates % self.config.capacity]]
        if candidates.size == 0:
            raise ValueError(f"replay of {self.spec.id} holds no sampleable step yet")
        alpha = self.config.priority_exponent
        if alpha == 0.0:
            return rng.choice(candidates, batch_size), np.ones(batch_size, dtype=np.float32)
        stored = self.priority[candidates % self.config.capacity].astype(np.float64)
        # Rows stored without a priority (a uniform run's replay, restored): like new rows.
        stored[stored <= 0] = max(float(stored.max()), 1.0)
        probs = stored**alpha
        probs /= probs.sum()
        picks = rng.choice(candidates.size, batch_size, p=probs)
        weight = (candidates.size * probs[picks]) ** -self.config.priority_correction
        return candidates[picks], (weight / weight.max()).astype(np.float32)


def batch_sizes(
    total: int, tasks: Sequence[Hashable], need: Mapping[Hashable, float] | None = None
) -> dict:
    """Split ``total`` samples over tasks: equally, or in proportion to a per-task ``need``."""
    if not tasks:
        raise ValueError("no tasks to sample")
    weights = np.ones(len(tasks)) if need is None else np.array([need[t] for t in tasks], float)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"per-task need must be >= 0 and not all zero, got {dict(need or {})}")
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for index in np.argsort(counts - exact, kind="stable")[: total - counts.sum()]:
        counts[index] += 1  # largest remainders first, so the sizes add up to total
    return dict(zip(tasks, counts.tolist(), strict=True))

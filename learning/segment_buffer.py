"""K-step guide segments for CTPG, stored per task as (T, capacity, ...) (anchors §1.5, §1.9).

A segment starts at a guide decision at state s_t of task i: the guide picked policy j_t, which
then acted for up to K steps. The segment keeps the K states s_t..s_{t+K-1}, the K executed
actions and rewards, a (K,) validity mask (steps after the episode ended are invalid; valid
steps are always a prefix), the end state (s_{t+K}, or the final observation when the episode
ended earlier), and a terminal flag (genuine termination inside the segment; a time-limit
truncation is not terminal and bootstraps, as everywhere in this project).

The K-step return ``R = sum_{k<n} gamma^k r_{t+k}`` and the bootstrap weight ``gamma^n``
(n = number of valid steps) are computed by the losses from the stored rewards and mask, so
the discount and reward scale stay algorithm parameters (learning/algorithms/ctpg.py).

:class:`SegmentRecorder` turns the per-step stream of the vectorised sampler into segments.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class SegmentBatch(NamedTuple):
    """Guide segments; every field has leading shape (T, B) (or (N,) when passed to ``add``).

    ``weight`` (T, B) float is 1 for rows drawn from a task that has segments (and is active),
    0 for filler rows of an empty or inactive task; None means all 1. It is never stored.
    """

    states: torch.Tensor  # (T, B, K, obs_dim): s_t .. s_{t+K-1}; invalid steps are 0
    actions: torch.Tensor  # (T, B, K, act_dim): executed (squashed) actions; invalid steps 0
    rewards: torch.Tensor  # (T, B, K): raw env rewards; invalid steps 0
    valid: torch.Tensor  # (T, B, K) float 0/1, a prefix of ones of length n >= 1
    guide_action: torch.Tensor  # (T, B) int64: policy index j_t chosen at s_t
    end_obs: torch.Tensor  # (T, B, obs_dim): s_{t+n}, the state after the last valid step
    terminal: torch.Tensor  # (T, B) float 0/1: genuine termination at the last valid step
    weight: torch.Tensor | None = None

    @property
    def obs(self) -> torch.Tensor:
        """Start state s_t, (T, B, obs_dim)."""
        return self.states[..., 0, :]

    @property
    def num_valid(self) -> torch.Tensor:
        """n, the number of valid steps, (T, B) float."""
        return self.valid.sum(-1)


STORED = ("states", "actions", "rewards", "valid", "guide_action", "end_obs", "terminal")


class SegmentBuffer:
    """T ring buffers of ``capacity`` segments each, with one write pointer per task.

    Unlike :class:`~learning.replay_buffer.TaskReplayBuffer`, tasks may insert different
    numbers of segments per call (segments finish at different times), so every task keeps
    its own write pointer and size. Storage grows by doubling up to ``capacity``.

    Args:
        num_tasks: T.
        capacity: segments kept per task (the oldest are overwritten).
        obs_dim: network observation size.
        act_dim: action size.
        K: guide step, the maximal segment length (anchors §1.5, default 10 there).
        device: where the storage lives.
    """

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int, K: int,
                 device: torch.device | str = "cpu"):
        if capacity < 1 or K < 1:
            raise ValueError(f"capacity={capacity} and K={K} must be >= 1")
        self.num_tasks, self.capacity, self.K = num_tasks, int(capacity), int(K)
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        self.ptr = torch.zeros(num_tasks, dtype=torch.long, device=self.device)
        self.size = torch.zeros(num_tasks, dtype=torch.long, device=self.device)
        self._storage: dict[str, torch.Tensor] = {}
        self._alloc = 0
        self._grow(min(self.capacity, 256))

    def _spec(self) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        k, f = self.K, torch.float32
        return {"states": ((k, self.obs_dim), f), "actions": ((k, self.act_dim), f),
                "rewards": ((k,), f), "valid": ((k,), f), "guide_action": ((), torch.long),
                "end_obs": ((self.obs_dim,), f), "terminal": ((), f)}

    def _grow(self, rows: int) -> None:
        new = {key: torch.zeros((self.num_tasks, rows, *shape), dtype=dtype, device=self.device)
               for key, (shape, dtype) in self._spec().items()}
        for key, old in self._storage.items():
            new[key][:, : self._alloc] = old
        self._storage, self._alloc = new, rows

    def __len__(self) -> int:
        """Segments stored in total over all tasks."""
        return int(self.size.sum())

    def add(self, task: torch.Tensor, segments: SegmentBatch) -> None:
        """Insert N segments; segment n goes to task ``task[n]``'s ring, in arrival order.

        Args:
            task: (N,) int64 task ids.
            segments: fields with leading shape (N,) (``weight`` ignored).

        Raises:
            ValueError: a task id outside [0, T) or a segment length other than K.
        """
        task = task.to(self.device, torch.long)
        if task.numel() == 0:
            return
        if int(task.min()) < 0 or int(task.max()) >= self.num_tasks:
            raise ValueError(f"task ids must lie in [0, {self.num_tasks})")
        if segments.valid.shape[-1] != self.K:
            raise ValueError(f"segments have length {segments.valid.shape[-1]}, buffer K={self.K}")
        one_hot = F.one_hot(task, self.num_tasks)  # (N, T)
        counts = one_hot.sum(0)  # (T,)
        rank = (one_hot.cumsum(0) * one_hot).sum(1) - 1  # arrival order within its task
        keep = rank >= counts[task] - self.capacity  # more than `capacity` in one call: newest
        needed = int(torch.clamp(self.size + counts, max=self.capacity).max())
        while self._alloc < needed:
            self._grow(min(self.capacity, 2 * self._alloc))
        slot = (self.ptr[task] + rank) % self.capacity
        for key in STORED:
            value = getattr(segments, key).to(self.device, self._storage[key].dtype)
            self._storage[key][task[keep], slot[keep]] = value[keep]
        self.ptr = (self.ptr + counts) % self.capacity
        self.size = torch.clamp(self.size + counts, max=self.capacity)

    def sample(self, batch_size: int, active: torch.Tensor | None = None) -> SegmentBatch:
        """Uniform draws with replacement from each task's segments: fields (T, batch_size, ...).

        Every task gets ``batch_size`` rows. A task with no segments (or not ``active``) gets
        filler rows (slot 0) with ``weight`` 0, so per-task weighted means ignore it. ``active``
        implements the guide-block re-weighting (anchors §1.7: guide batches come only from
        guided tasks); if no active task has segments, every non-empty task is used (the
        original's "all blocked -> uniform").

        Args:
            batch_size: B, rows per task.
            active: optional (T,) bool, the tasks whose segments train the guide.

        Raises:
            RuntimeError: if no task has a segment yet.
        """
        usable = self.size > 0
        if not bool(usable.any()):
            raise RuntimeError("cannot sample from an empty segment buffer")
        if active is not None:
            chosen = usable & active.to(self.device, torch.bool)
            usable = chosen if bool(chosen.any()) else usable
        u = torch.rand(self.num_tasks, batch_size, device=self.device)
        idx = (u * self.size[:, None]).long().clamp(max=self._alloc - 1)  # 0 where size == 0
        rows = torch.arange(self.num_tasks, device=self.device)[:, None]
        fields = {key: self._storage[key][rows, idx] for key in STORED}
        weight = usable[:, None].float().expand(self.num_tasks, batch_size)
        return SegmentBatch(**fields, weight=weight)

    def state_dict(self) -> dict:
        """Pointers, sizes and the allocated rows of every field, on the CPU."""
        return {"ptr": self.ptr.cpu(), "size": self.size.cpu(),
                **{key: value.cpu() for key, value in self._storage.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (same T, K and dims; capacity at least the saved rows).

        Raises:
            ValueError: if the saved rows exceed this buffer's capacity.
        """
        rows = state["states"].shape[1]
        if int(state["size"].max()) > self.capacity or int(state["ptr"].max()) >= self.capacity:
            raise ValueError(f"snapshot holds more segments per task than capacity {self.capacity}")
        self._storage = {key: state[key][:, : min(rows, self.capacity)].to(self.device)
                         for key in STORED}
        self._alloc = self._storage["states"].shape[1]
        self.ptr, self.size = state["ptr"].to(self.device), state["size"].to(self.device)


class SegmentRecorder:
    """Builds segments from the sampler's per-step (T, E) stream; episodes continue across calls.

    Each env has at most one open segment. A step with ``decision`` opens one (closing a still
    open one first, as a non-terminal segment shorter than K); every step of an open segment is
    appended; the segment is emitted to the buffer after K steps or when the episode ends
    (``done``), with ``terminal`` = genuine termination of that step. Steps outside any segment
    (no decision since the episode started) are not recorded.

    Args:
        buffer: the :class:`SegmentBuffer` receiving finished segments (its K is used).
        envs_per_task: E.
    """

    def __init__(self, buffer: SegmentBuffer, envs_per_task: int):
        self.buffer, self.K = buffer, buffer.K
        t, e, dev = buffer.num_tasks, envs_per_task, buffer.device
        self.open = torch.zeros(t, e, dtype=torch.bool, device=dev)
        self.count = torch.zeros(t, e, dtype=torch.long, device=dev)
        self.guide_action = torch.zeros(t, e, dtype=torch.long, device=dev)
        self.terminal = torch.zeros(t, e, device=dev)
        self.states = torch.zeros(t, e, self.K, buffer.obs_dim, device=dev)
        self.actions = torch.zeros(t, e, self.K, buffer.act_dim, device=dev)
        self.rewards = torch.zeros(t, e, self.K, device=dev)
        self.end_obs = torch.zeros(t, e, buffer.obs_dim, device=dev)

    def step(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
             next_obs: torch.Tensor, terminal: torch.Tensor, done: torch.Tensor,
             decision: torch.Tensor, guide_action: torch.Tensor) -> int:
        """Feed one env step of every (task, env); returns the number of segments emitted.

        Args:
            obs, next_obs: (T, E, obs_dim); next_obs is the real final observation on ``done``.
            action: (T, E, act_dim) executed action.
            reward: (T, E) raw reward.
            terminal: (T, E) genuine termination (bool or 0/1).
            done: (T, E) termination or truncation.
            decision: (T, E) bool, a guide decision was taken at ``obs`` this step.
            guide_action: (T, E) int64, the policy chosen at that decision (read where decision).
        """
        dev = self.open.device
        decision, done = decision.to(dev, torch.bool), done.to(dev, torch.bool)
        emitted = self._emit(decision & self.open)
        self.open |= decision
        self.count[decision] = 0
        self.terminal[decision] = 0.0
        self.guide_action[decision] = guide_action.to(dev, torch.long)[decision]
        t_idx, e_idx = self.open.nonzero(as_tuple=True)
        k = self.count[t_idx, e_idx]
        self.states[t_idx, e_idx, k] = obs.to(dev, torch.float32)[t_idx, e_idx]
        self.actions[t_idx, e_idx, k] = action.to(dev, torch.float32)[t_idx, e_idx]
        self.rewards[t_idx, e_idx, k] = reward.to(dev, torch.float32)[t_idx, e_idx]
        self.end_obs[t_idx, e_idx] = next_obs.to(dev, torch.float32)[t_idx, e_idx]
        self.terminal[t_idx, e_idx] = terminal.to(dev, torch.float32)[t_idx, e_idx]
        self.count[t_idx, e_idx] += 1
        return emitted + self._emit(self.open & ((self.count >= self.K) | done))

    def _emit(self, mask: torch.Tensor) -> int:
        """Send the open segments of the (T, E) ``mask`` to the buffer and close them."""
        t_idx, e_idx = mask.nonzero(as_tuple=True)
        if t_idx.numel() == 0:
            return 0
        valid = (torch.arange(self.K, device=mask.device) < self.count[t_idx, e_idx, None]).float()
        self.buffer.add(t_idx, SegmentBatch(
            states=self.states[t_idx, e_idx] * valid[..., None],
            actions=self.actions[t_idx, e_idx] * valid[..., None],
            rewards=self.rewards[t_idx, e_idx] * valid, valid=valid,
            guide_action=self.guide_action[t_idx, e_idx], end_obs=self.end_obs[t_idx, e_idx],
            terminal=self.terminal[t_idx, e_idx]))
        self.open[mask] = False
        return int(t_idx.numel())

    def state_dict(self) -> dict:
        """The open segments (for resuming mid-episode), on the CPU."""
        return {k: getattr(self, k).cpu() for k in
                ("open", "count", "guide_action", "terminal", "states", "actions", "rewards",
                 "end_obs")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v.to(self.open.device))

"""Per-task replay storage with the task axis first: (T, capacity, dim) (reference §2.3)."""

from __future__ import annotations

from typing import NamedTuple

import torch


class TransitionBatch(NamedTuple):
    """A task-batched minibatch; every field has leading shape (T, B).

    ``terminal`` is 1.0 only for genuine env termination; a time-limit truncation is stored
    as 0.0 so that it bootstraps (reference §2.3). ``weight`` (optional, (T, B) float 0/1 or
    any non-negative weight) turns every per-task mean over the batch into a weighted mean;
    None means unweighted. It lets a batch of fixed shape carry a different number of
    transitions per task (unsupervised data sharing, reference §3.7). It is never stored.
    """

    obs: torch.Tensor  # (T, B, obs_dim), network observation
    action: torch.Tensor  # (T, B, act_dim)
    reward: torch.Tensor  # (T, B)
    next_obs: torch.Tensor  # (T, B, obs_dim)
    terminal: torch.Tensor  # (T, B), float 0/1
    weight: torch.Tensor | None = None  # (T, B) per-transition weight; None = all 1


STORED_FIELDS = ("obs", "action", "reward", "next_obs", "terminal")


class TaskReplayBuffer:
    """T ring buffers of ``capacity`` transitions each, stored as (T, capacity, ...) tensors.

    Every call to :meth:`add` inserts the same number N of transitions for every task (the
    sampler collects equally from all tasks), so the tasks share one write pointer. Storage
    grows by doubling up to ``capacity`` so that short runs stay small.

    Args:
        num_tasks: T.
        capacity: transitions kept per task (``--replay_buffer_size``; original 1e6).
        obs_dim: network observation size.
        act_dim: action size.
        device: where the storage lives (the learner's device).
    """

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int,
                 device: torch.device | str = "cpu"):
        self.num_tasks, self.capacity = num_tasks, int(capacity)
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        self._ptr, self._size, self._alloc = 0, 0, 0
        self._storage: dict[str, torch.Tensor] = {}
        self._grow(min(self.capacity, 1024))

    def _shapes(self) -> dict[str, tuple[int, ...]]:
        return {"obs": (self.obs_dim,), "action": (self.act_dim,), "reward": (),
                "next_obs": (self.obs_dim,), "terminal": ()}

    def _grow(self, rows: int) -> None:
        new = {
            k: torch.zeros((self.num_tasks, rows, *shape), dtype=torch.float32, device=self.device)
            for k, shape in self._shapes().items()
        }
        for k, old in self._storage.items():
            new[k][:, : self._alloc] = old
        self._storage, self._alloc = new, rows

    def __len__(self) -> int:
        """Transitions stored per task."""
        return self._size

    def add(self, batch: TransitionBatch) -> None:
        """Insert (T, N, ...) transitions, N the same for every task (oldest overwritten)."""
        n = batch.reward.shape[1]
        if batch.reward.shape[0] != self.num_tasks:
            raise ValueError(f"expected {self.num_tasks} tasks, got {batch.reward.shape[0]}")
        if n > self.capacity:  # keep only the newest `capacity` transitions
            batch = TransitionBatch(*(getattr(batch, k)[:, -self.capacity:] for k in STORED_FIELDS))
            n = self.capacity
        while self._alloc < min(self.capacity, self._size + n) and self._alloc < self.capacity:
            self._grow(min(self.capacity, 2 * self._alloc))
        idx = (self._ptr + torch.arange(n, device=self.device)) % self.capacity
        for key in STORED_FIELDS:
            self._storage[key][:, idx] = getattr(batch, key).to(self.device, torch.float32)
        self._ptr = (self._ptr + n) % self.capacity
        self._size = min(self._size + n, self.capacity)

    def sample(self, batch_size: int) -> TransitionBatch:
        """Uniform with replacement from each task's buffer: fields of shape (T, batch_size, ...).

        Raises:
            RuntimeError: if the buffer is empty.
        """
        own = torch.arange(self.num_tasks, device=self.device)[:, None]
        return self.sample_from(own.expand(self.num_tasks, batch_size))

    def sample_from(self, source: torch.Tensor) -> TransitionBatch:
        """Uniform draws with replacement from chosen task buffers.

        Args:
            source: (R, N) int64 task ids; entry (r, n) is drawn from buffer ``source[r, n]``.

        Returns:
            A TransitionBatch whose fields have leading shape (R, N).

        Raises:
            RuntimeError: if the buffer is empty.
        """
        if self._size == 0:
            raise RuntimeError("cannot sample from an empty replay buffer")
        source = source.to(self.device)
        idx = torch.randint(0, self._size, source.shape, device=self.device)
        return TransitionBatch(*(self._storage[key][source, idx] for key in STORED_FIELDS))

    def state_dict(self) -> dict:
        """Write pointer, size and the stored rows (T, size, ...) of every field, on the CPU."""
        return {"ptr": self._ptr, "size": self._size,
                **{k: v[:, : self._size].cpu() for k, v in self._storage.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (same T, capacity and dims).

        Raises:
            ValueError: if the saved rows exceed this buffer's capacity or the shapes differ.
        """
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"snapshot holds {size} transitions per task, capacity is {self.capacity}")
        self._storage, self._alloc = {}, 0
        self._grow(max(size, min(self.capacity, 1024)))
        for key in STORED_FIELDS:
            self._storage[key][:, :size] = state[key].to(self.device)
        self._ptr, self._size = int(state["ptr"]), size

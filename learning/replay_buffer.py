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


STORED_FIELDS = ("obs", "action", "reward", "next_obs", "terminal")  # what add() takes, sample() gives
ROW_FIELDS = ("obs", "action", "reward", "terminal")  # stored once per row
_LOAD_CHUNK = 1 << 16  # rows per task linked at a time when loading an old-format snapshot


def same_bits(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(..., D) float32 pair -> (...) bool, True where the rows are bitwise identical.

    Bitwise rather than ``==`` so that a linked row returns exactly what was added (-0.0 is not
    linked to 0.0; a NaN only to the same NaN).
    """
    return (a.view(torch.int32) == b.view(torch.int32)).all(-1)


class TaskReplayBuffer:
    """T ring buffers of ``capacity`` transitions each; every per-row tensor is (T, capacity, ...).

    Every call to :meth:`add` inserts the same number N of transitions for every task (the
    sampler collects equally from all tasks), so the tasks share one write pointer.

    ``next_obs`` is not stored per row. The sampler's rows are step-major over E interleaved env
    streams per task (``stream_width``), so row r's next observation is usually row r + E's
    observation. Each row keeps an int32 link: -1 means "next_obs = obs of the row E later in
    the ring", k >= 0 means "next_obs = final_obs[k]" in a small side store shared by all
    tasks. The choice is made by exact (bitwise) comparison when the successor row is written,
    so correctness never depends on how the data was produced: episode ends, data that does not
    chain, and the newest E rows (whose successor is not written yet; they are re-checked by the
    next add) go to the side store. Side slots are freed when their row is overwritten or
    re-linked, and the side store doubles when it is full (it holds ~1/episode-length of rows;
    data that never chains puts every row there and costs about as much as storing next_obs).

    Per-row storage is allocated once, at full capacity, with ``torch.empty`` (no doubling, no
    copy): on the CPU the pages of a large allocation become resident only when first written,
    so a short run's RSS stays small; on CUDA the whole capacity is reserved at construction.

    Args:
        num_tasks: T.
        capacity: transitions kept per task (``--replay_buffer_size``; original 1e6).
        obs_dim: network observation size.
        act_dim: action size.
        device: where the storage lives (the learner's device).
        stream_width: E, interleaved env streams per task (the sampler's ``envs_per_task``).

    Raises:
        ValueError: capacity or stream_width below 1.
    """

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int,
                 device: torch.device | str = "cpu", *, stream_width: int = 1):
        self.num_tasks, self.capacity, self.stream_width = num_tasks, int(capacity), int(stream_width)
        self.obs_dim, self.act_dim, self.device = obs_dim, act_dim, torch.device(device)
        if self.capacity < 1 or self.stream_width < 1:
            raise ValueError(f"capacity {capacity} and stream_width {stream_width} must be >= 1")
        self._ptr, self._size = 0, 0
        shape = (num_tasks, self.capacity)
        self._storage = {k: torch.empty(shape + s, device=self.device) for k, s in
                         (("obs", (obs_dim,)), ("action", (act_dim,)), ("reward", ()), ("terminal", ()))}
        self._link = torch.empty(shape, dtype=torch.int32, device=self.device)  # (T, capacity)
        self._final = torch.empty(0, obs_dim, device=self.device)  # (K, obs_dim) side store
        self._used = torch.zeros(0, dtype=torch.bool, device=self.device)  # (K,) slot taken
        self._grow_side(max(64, 2 * num_tasks * self.stream_width))

    def __len__(self) -> int:
        """Transitions stored per task."""
        return self._size

    def memory_bytes(self) -> int:
        """Bytes of all allocated storage (virtual size; on the CPU unwritten pages are not resident)."""
        return sum(t.nbytes for t in (*self._storage.values(), self._link, self._final, self._used))

    def nbytes_per_transition(self) -> float:
        """Bytes one stored transition costs: its row (obs, action, reward, terminal, link) plus
        its share of the allocated side store (over the rows stored now; row bytes when empty).
        The old layout, which stored next_obs per row, cost 4 * (2 * obs_dim + act_dim + 2)."""
        row = sum(t[0, 0].nbytes for t in (*self._storage.values(), self._link))
        side = self._final.nbytes + self._used.nbytes
        return row + (side / (self.num_tasks * self._size) if self._size else 0.0)

    # -- side store ---------------------------------------------------------------------------
    def _grow_side(self, slots: int) -> None:
        final = torch.empty(slots, self.obs_dim, device=self.device)
        used = torch.zeros(slots, dtype=torch.bool, device=self.device)
        final[: len(self._final)], used[: len(self._used)] = self._final, self._used
        self._final, self._used = final, used

    def _free(self, links: torch.Tensor) -> None:
        self._used[links[links >= 0].long()] = False

    def _set_next(self, rows: torch.Tensor, next_obs: torch.Tensor, chain: torch.Tensor) -> None:
        """Set the links of physical rows (k,) of every task: chain (T, k) True -> successor row;
        otherwise a fresh side slot that receives next_obs (T, k, obs_dim)."""
        link = torch.full(chain.shape, -1, dtype=torch.int32, device=self.device)
        need = ~chain
        m = int(need.sum())
        if m:
            free = (~self._used).nonzero().squeeze(1)
            if len(free) < m:
                self._grow_side(max(2 * len(self._used), len(self._used) + m - len(free)))
                free = (~self._used).nonzero().squeeze(1)
            slots = free[:m]
            self._used[slots] = True
            self._final[slots] = next_obs[need]
            link[need] = slots.to(torch.int32)
        self._link[:, rows] = link

    # -- adding and sampling --------------------------------------------------------------------
    def add(self, batch: TransitionBatch) -> None:
        """Insert (T, N, ...) transitions, N the same for every task (oldest overwritten; of
        N > capacity only the newest ``capacity`` are kept).

        Raises:
            ValueError: if the batch does not hold T tasks.
        """
        if batch.reward.shape[0] != self.num_tasks:
            raise ValueError(f"expected {self.num_tasks} tasks, got {batch.reward.shape[0]}")
        n = min(batch.reward.shape[1], self.capacity)
        if n == 0:
            return
        obs, action, reward, next_obs, terminal = (
            getattr(batch, k)[:, batch.reward.shape[1] - n:].to(self.device, torch.float32)
            for k in STORED_FIELDS)
        e, c, ptr, dev = self.stream_width, self.capacity, self._ptr, self.device
        rows = (ptr + torch.arange(n, device=dev)) % c
        self._free(self._link[:, rows[rows < self._size]])  # live rows about to be overwritten
        # The previous adds' newest rows (ptr - E + j) whose successor is row j of this batch and
        # which survive it: link them if their pending next_obs is that row's obs.
        j = torch.arange(min(e, n), device=dev)
        j = j[(e - j <= self._size) & (n + e - j <= c)]
        if len(j):
            prev = (ptr - e + j) % c
            links = self._link[:, prev]
            pending = self._final[links.long()]
            self._free(links)
            self._set_next(prev, pending, same_bits(pending, obs[:, j]))
        first = min(n, c - ptr)  # rows ptr.. up to the end of the ring, then from row 0
        for key, value in zip(ROW_FIELDS, (obs, action, reward, terminal)):
            self._storage[key][:, ptr: ptr + first] = value[:, :first]
            self._storage[key][:, : n - first] = value[:, first:]
        chain = torch.zeros(self.num_tasks, n, dtype=torch.bool, device=dev)
        chain[:, : max(n - e, 0)] = same_bits(next_obs[:, : max(n - e, 0)], obs[:, e:])
        self._set_next(rows, next_obs, chain)
        self._ptr = (ptr + n) % c
        self._size = min(self._size + n, c)

    def sample(self, batch_size: int) -> TransitionBatch:
        """Uniform with replacement from each task's buffer: fields of shape (T, batch_size, ...).

        Raises:
            RuntimeError: if the buffer is empty.
        """
        own = torch.arange(self.num_tasks, device=self.device)[:, None]
        return self.sample_from(own.expand(self.num_tasks, batch_size))

    def sample_from(self, source: torch.Tensor) -> TransitionBatch:
        """Uniform draws with replacement from chosen task buffers (one ``torch.randint`` of
        source's shape on the buffer's device, so a seed fixes the rows drawn).

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
        return self._gather(source, torch.randint(0, self._size, source.shape, device=self.device))

    def transitions(self) -> TransitionBatch:
        """Every stored row, fields (T, len(self), ...), row i = storage slot i (the order sample
        indices refer to). Materialises next_obs: meant for tests and inspection."""
        idx = torch.arange(self._size, device=self.device).expand(self.num_tasks, -1)
        return self._gather(torch.arange(self.num_tasks, device=self.device)[:, None].expand_as(idx), idx)

    def _gather(self, source: torch.Tensor, idx: torch.Tensor) -> TransitionBatch:
        s, link = self._storage, self._link[source, idx]
        chained = s["obs"][source, (idx + self.stream_width) % self.capacity]
        next_obs = torch.where((link < 0)[..., None], chained, self._final[link.clamp(min=0).long()])
        return TransitionBatch(s["obs"][source, idx], s["action"][source, idx], s["reward"][source, idx],
                               next_obs, s["terminal"][source, idx])

    # -- snapshots ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Write pointer, size, stream_width, the stored rows (T, size, ...) of obs, action, reward
        and terminal, ``link`` (T, size) int32 and ``final_obs`` (K, obs_dim) holding only the
        side slots in use, renumbered 0..K-1; all on the CPU, each tensor its own copy of just
        those rows (torch.save writes a view's whole storage: a slice of the preallocated
        (T, capacity, ...) arrays would save the full capacity)."""
        link = self._link[:, : self._size].clone()
        used = link >= 0
        slots = link[used].long()
        link[used] = torch.arange(len(slots), dtype=torch.int32, device=self.device)
        return {"ptr": self._ptr, "size": self._size, "stream_width": self.stream_width,
                **{k: v[:, : self._size].to("cpu", copy=True) for k, v in self._storage.items()},
                "link": link.cpu(), "final_obs": self._final[slots].cpu()}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` (same T, capacity and dims). Also reads the old format
        (``next_obs`` (T, size, obs_dim) stored per row, no link), linking its rows as add() would.

        Raises:
            ValueError: if the saved rows exceed this buffer's capacity, the shapes differ, or
                ptr and size do not describe a ring (size < capacity needs ptr == size).
        """
        size, ptr, c = int(state["size"]), int(state["ptr"]), self.capacity
        if size > c:
            raise ValueError(f"snapshot holds {size} transitions per task, capacity is {c}")
        if not 0 <= ptr < c or (size < c and ptr != size):
            raise ValueError(f"snapshot ptr {ptr} and size {size} do not fit capacity {c}")
        for key in ROW_FIELDS:
            if tuple(state[key].shape) != tuple(self._storage[key][:, :size].shape):
                raise ValueError(f"snapshot {key} has shape {tuple(state[key].shape)}")
            self._storage[key][:, :size] = state[key].to(self.device)
        if "next_obs" in state and state["next_obs"].shape != state["obs"].shape:
            raise ValueError(f"snapshot next_obs has shape {tuple(state['next_obs'].shape)}")
        self._used.zero_()
        if "next_obs" not in state and int(state["stream_width"]) != self.stream_width:
            state = {**state, "next_obs": _unlinked_next_obs(state, c)}
        if "next_obs" in state:
            for start in range(0, size, _LOAD_CHUNK):
                rows = torch.arange(start, min(size, start + _LOAD_CHUNK), device=self.device)
                nxt = state["next_obs"][:, start: start + len(rows)].to(self.device, torch.float32)
                succ = self._storage["obs"][:, (rows + self.stream_width) % c]
                has = (rows - ptr) % c + self.stream_width < c  # not among the newest E rows
                self._set_next(rows, nxt, has & same_bits(nxt, succ))
        else:
            final = state["final_obs"].to(self.device)
            if len(final) > len(self._final):
                self._grow_side(len(final))
            self._final[: len(final)], self._used[: len(final)] = final, True
            self._link[:, :size] = state["link"].to(self.device)
        self._ptr, self._size = ptr, size


def _unlinked_next_obs(state: dict, capacity: int) -> torch.Tensor:
    """(T, size, obs_dim) next observations of a compact snapshot (for another stream_width)."""
    link, obs = state["link"], state["obs"]
    idx = (torch.arange(link.shape[1], device=link.device) + int(state["stream_width"])) % capacity
    chained = obs[:, idx.clamp(max=max(obs.shape[1] - 1, 0))]  # clamped rows are side rows
    final = torch.cat([state["final_obs"], obs.new_zeros(1, obs.shape[2])])  # never empty
    return torch.where((link < 0)[..., None], chained, final[link.clamp(min=0).long()])

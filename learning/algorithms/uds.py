"""Unsupervised data sharing (UDS; Yu et al. 2022) on the DnC learner (reference §3.7).

Task i trains on its own minibatch plus transitions of the other tasks relabelled with the
suite's minimum reward, keeping only those its critic Q1_i rates above a quantile of its own
batch. The number kept differs per task, so the shared part is carried as a fixed-size batch
with a 0/1 weight per transition and the SAC losses take weighted means.
"""

from __future__ import annotations

import torch

from learning.algorithms.dnc import DnCSAC
from learning.algorithms.sac import Stats
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch


def other_task_sources(num_tasks: int, per_task: int, device=None) -> torch.Tensor:
    """(T, (T-1)*per_task) int64: row i lists every task j != i, ``per_task`` times each."""
    t = num_tasks
    offsets = torch.arange(t - 1, device=device)
    rows = torch.arange(t, device=device)[:, None]
    others = offsets[None] + (offsets[None] >= rows).long()  # (T, T-1), skips i
    return others.repeat_interleave(per_task, dim=1)


def quantile_threshold(q_own: torch.Tensor, quantile: float) -> torch.Tensor:
    """Per-task sharing threshold (reference §3.7 step 3).

    ``thr_i = v_i[floor(B * quantile)]`` with ``v_i = (-inf, sorted ascending Q1_i(own batch))``;
    quantile 0 gives -inf (everything kept).

    Shapes: q_own (T, B) -> (T,).
    """
    t, b = q_own.shape
    values = torch.cat([torch.full((t, 1), -torch.inf, dtype=q_own.dtype, device=q_own.device),
                        q_own.sort(dim=1).values], dim=1)
    return values[:, int(b * quantile)]


def share_data(own: TransitionBatch, others: TransitionBatch, qf: TwinQFunction,
               min_reward: float, quantile: float) -> tuple[TransitionBatch, Stats]:
    """Build each task's training batch from its own and the other tasks' transitions
    (reference §3.7 steps 2-4).

    Other-task rewards are relabelled to ``min_reward``. With ``quantile == 0`` every
    other-task transition is kept; otherwise those with ``Q1_i(s, a) > thr_i``
    (:func:`quantile_threshold` on the own batch) are kept. The own transitions always count.

    Args:
        own: (T, B) own transitions.
        others: (T, M) transitions of the other tasks, row i for task i.
        qf: the online critics; Q1_i scores both sets (no gradient).
        min_reward: the suite's lowest per-step reward.
        quantile: ``--sharing_quantile`` in [0, 1).

    Returns:
        (batch of (T, B + M) with ``weight`` 1 for own and kept transitions and 0 for dropped,
        stats with SharedData = kept / M per task, the fraction of other-task transitions kept).
    """
    t, m = others.reward.shape
    if quantile == 0 or m == 0:
        keep = torch.ones_like(others.reward)
    else:
        with torch.no_grad():
            threshold = quantile_threshold(qf.q1_value(own.obs, own.action), quantile)
            keep = (qf.q1_value(others.obs, others.action) > threshold[:, None]).float()
    weight = torch.cat([torch.ones_like(own.reward), keep], dim=1)
    relabelled = torch.full_like(others.reward, float(min_reward))
    batch = TransitionBatch(
        obs=torch.cat([own.obs, others.obs], 1), action=torch.cat([own.action, others.action], 1),
        reward=torch.cat([own.reward, relabelled], 1),
        next_obs=torch.cat([own.next_obs, others.next_obs], 1),
        terminal=torch.cat([own.terminal, others.terminal], 1), weight=weight)
    shared = keep.mean(1) if m else torch.zeros(t, device=keep.device)
    return batch, {"SharedData": shared}


class UDSSAC(DnCSAC):
    """DnC learners trained on shared, relabelled data (``uds_dnc``, ``qmp_uds_dnc``).

    Args:
        *args, **kwargs: as :class:`DnCSAC`.
        min_reward: the suite's ``min_reward`` used for relabelling.
        sharing_quantile: ``--sharing_quantile`` in [0, 1).
    """

    def __init__(self, *args, min_reward: float, sharing_quantile: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_reward, self.sharing_quantile = float(min_reward), float(sharing_quantile)
        self._share_stats: Stats = {}

    def sample_batch(self, buffer: TaskReplayBuffer, batch_size: int) -> TransitionBatch:
        """B own transitions and B//(T-1) from every other buffer per task, shared by
        :func:`share_data`."""
        own = buffer.sample(batch_size)
        per_task = batch_size // (self.num_tasks - 1) if self.num_tasks > 1 else 0
        source = other_task_sources(self.num_tasks, per_task, buffer.device)
        others = buffer.sample_from(source)
        batch, self._share_stats = share_data(own, others, self.qf, self.min_reward,
                                              self.sharing_quantile)
        return batch

    def update(self, batch: TransitionBatch) -> Stats:
        stats = super().update(batch)
        stats.update(self._share_stats)
        return stats

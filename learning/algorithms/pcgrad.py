"""PCGrad: gradient surgery for multi-task learning (Yu et al. 2020; reference §3.10).

From a (T,) vector of per-task losses: all T gradients in one batched backward, flattened to
(T, P); each task's gradient is projected off every other task gradient it conflicts with
(negative dot product), visiting the tasks in a fresh random order per task; then the
projected gradients are merged into one ``.grad`` per parameter: the mean over tasks, for
every parameter (the original's rule as it acts on its networks, docs/deviations.md).
"""

from __future__ import annotations

import torch
from torch import nn


def per_task_gradients(per_task_loss: torch.Tensor, params: list[nn.Parameter],
                       retain_graph: bool = False) -> torch.Tensor:
    """Gradients of every task's loss in one batched backward.

    ``torch.autograd.grad`` with ``is_grads_batched=True`` and the identity as the batch of
    output gradients: row t of the result is d loss_t / d params.

    Args:
        per_task_loss: (T,) losses.
        params: P parameters in total (elements).

    Returns:
        (T, P) flattened gradients (zeros where a parameter is unused).
    """
    t = per_task_loss.shape[0]
    eye = torch.eye(t, dtype=per_task_loss.dtype, device=per_task_loss.device)
    grads = torch.autograd.grad(per_task_loss, params, grad_outputs=eye, is_grads_batched=True,
                                allow_unused=True, retain_graph=retain_graph)
    return torch.cat([
        (g if g is not None else torch.zeros(t, *p.shape, dtype=p.dtype, device=p.device))
        .reshape(t, -1) for g, p in zip(grads, params)
    ], dim=1)


def project_conflicting(grads: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """PCGrad projection (Yu et al. 2020, Alg. 1; reference §3.10).

    For every task i, for s = 0..T-1 with j = order[i, s]:
    ``if g_i' . g_j < 0: g_i' <- g_i' - (g_i' . g_j / |g_j|^2) g_j``, starting from g_i' = g_i
    and always projecting against the *original* g_j (j = i included, as in the original;
    it never conflicts while g_i' is unchanged). The T steps are vectorised over i.

    Args:
        grads: (T, P) task gradients.
        order: (T, T) int64, row i a permutation of the tasks (the visiting order of task i).

    Returns:
        (T, P) projected gradients.
    """
    projected = grads.clone()
    sq_norm = (grads * grads).sum(1)  # (T,)
    for step in range(order.shape[1]):
        j = order[:, step]  # (T,) the task each i visits now
        g_j = grads[j]  # (T, P)
        dot = (projected * g_j).sum(1)
        coef = torch.where(dot < 0, dot / sq_norm[j].clamp(min=1e-30), torch.zeros_like(dot))
        projected = projected - coef[:, None] * g_j
    return projected


def merge(projected: torch.Tensor) -> torch.Tensor:
    """One update from T projected gradients: their mean over tasks (reference §3.10).

    The original takes the mean for parameters that received a gradient (possibly zero) from
    every task and the sum for the others; its multi-head heads and per-task temperatures are
    evaluated for every sample and receive zero gradients from the other tasks, so in every
    experiment every parameter gets the mean. A task-specific slice therefore moves by 1/T of
    its own task's projected gradient.

    Shapes: projected (T, P) -> (P,).
    """
    return projected.mean(0)


def random_orders(num_tasks: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(T, T): row i an independent uniformly random permutation of 0..T-1."""
    return torch.rand(num_tasks, num_tasks, device=device).argsort(dim=1)


def pcgrad_backward(per_task_loss: torch.Tensor, params: list[nn.Parameter],
                    retain_graph: bool = False, order: torch.Tensor | None = None) -> None:
    """Write the PCGrad-combined gradient of ``per_task_loss`` into ``.grad`` of ``params``.

    Args:
        per_task_loss: (T,) per-task losses.
        params: the parameters one optimiser steps.
        retain_graph: keep the graph for another backward (the second critic).
        order: optional (T, T) visiting orders; default a fresh :func:`random_orders`.
    """
    t = per_task_loss.shape[0]
    grads = per_task_gradients(per_task_loss, params, retain_graph)
    if order is None:
        order = random_orders(t, grads.device)
    flat = merge(project_conflicting(grads, order))
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n

"""PCGrad: gradient surgery for multi-task learning (Yu et al. 2020; reference §3.10).

From a (T,) vector of per-task losses: all T gradients in one batched backward, flattened to
(T, P); each task's gradient is projected off every other task gradient it conflicts with
(negative dot product), visiting the tasks in a fresh random order per task; then the
projected gradients are merged into one ``.grad`` per parameter: the mean over tasks for
parameters every task uses, the sum for task-specific parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from learning.networks.layers import StackedLinear


@dataclass
class ParameterGroup:
    """Parameters that one optimiser steps, with the merge rule of each.

    Attributes:
        params: the parameters.
        task_specific: per parameter, True when task t's loss only touches task t's slice
            (stacked multi-head heads, per-task temperatures): such parameters get the sum of
            the projected task gradients; all others (shared trunk, shared nets) the mean.
    """

    params: list[nn.Parameter]
    task_specific: list[bool]

    @classmethod
    def of(cls, module: nn.Module) -> "ParameterGroup":
        """Every parameter of ``module``; those of :class:`StackedLinear` layers are task-specific."""
        specific = {id(p) for m in module.modules() if isinstance(m, StackedLinear)
                    for p in m.parameters(recurse=False)}
        params = list(module.parameters())
        return cls(params, [id(p) in specific for p in params])


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


def merge(projected: torch.Tensor, task_specific: torch.Tensor) -> torch.Tensor:
    """One update from T projected gradients: mean over tasks on shared elements, sum on
    task-specific ones (reference §3.10).

    Args:
        projected: (T, P).
        task_specific: (P,) bool.

    Returns:
        (P,) merged gradient.
    """
    return torch.where(task_specific, projected.sum(0), projected.mean(0))


def random_orders(num_tasks: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(T, T): row i an independent uniformly random permutation of 0..T-1."""
    return torch.rand(num_tasks, num_tasks, device=device).argsort(dim=1)


def pcgrad_backward(per_task_loss: torch.Tensor, group: ParameterGroup,
                    retain_graph: bool = False, order: torch.Tensor | None = None) -> None:
    """Write the PCGrad-combined gradient of ``per_task_loss`` into ``.grad`` of the group.

    Args:
        per_task_loss: (T,) per-task losses.
        group: the parameters and their merge rule.
        retain_graph: keep the graph for another backward (the second critic).
        order: optional (T, T) visiting orders; default a fresh :func:`random_orders`.
    """
    t = per_task_loss.shape[0]
    grads = per_task_gradients(per_task_loss, group.params, retain_graph)
    if order is None:
        order = random_orders(t, grads.device)
    mask = torch.cat([torch.full((p.numel(),), s, dtype=torch.bool, device=grads.device)
                      for p, s in zip(group.params, group.task_specific)])
    flat = merge(project_conflicting(grads, order), mask)
    offset = 0
    for p in group.params:
        n = p.numel()
        p.grad = flat[offset: offset + n].view_as(p).clone()
        offset += n

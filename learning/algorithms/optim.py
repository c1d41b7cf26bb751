"""Adam with the fastest implementation torch has for the parameters' device.

torch's default Adam on CPU uses the ``foreach`` path; its element-wise work over the stacked
(T, in, out) weights (``lerp_``, ``sqrt``, ``div``, ``addcdiv_``) is about half of a batched SAC
update at the presets' minibatch sizes. The ``fused`` kernel (one pass per parameter, CPU and
CUDA since torch 2.4) does the same arithmetic about 1.6-1.9x faster on CPU (docs/benchmarks.md,
"Optimizer implementation"). The update rule is Adam's either way (Kingma & Ba 2015, Alg. 1);
results differ from the foreach path only in float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

OPTIMIZER_IMPLS = ("fused", "foreach", "for-loop")


def _fused_supported(params: list[torch.Tensor]) -> bool:
    devices = {p.device.type for p in params}
    try:
        from torch.optim.optimizer import _get_fused_kernels_supported_devices
        supported = set(_get_fused_kernels_supported_devices())
    except ImportError:  # pragma: no cover - private helper moved
        supported = {"cpu", "cuda"}
    return bool(params) and devices <= supported and all(p.is_floating_point() for p in params)


def adam(params: Iterable[torch.Tensor], lr: float, impl: str = "fused") -> torch.optim.Adam:
    """``torch.optim.Adam(params, lr)`` with the ``impl`` implementation where the device has it.

    Args:
        params: the tensors to optimise (all on one device).
        lr: learning rate.
        impl: ``fused`` (default; falls back to ``foreach`` on a device without the fused kernel,
            e.g. MPS on old torch), ``foreach`` or ``for-loop`` (torch's single-tensor path).

    Raises:
        ValueError: ``impl`` is not one of ``OPTIMIZER_IMPLS``.
    """
    if impl not in OPTIMIZER_IMPLS:
        raise ValueError(f"optimizer impl={impl!r}; allowed: {', '.join(OPTIMIZER_IMPLS)}")
    params = list(params)
    if impl == "fused" and _fused_supported(params):
        return torch.optim.Adam(params, lr=lr, fused=True)
    if impl == "for-loop":
        return torch.optim.Adam(params, lr=lr, foreach=False)
    return torch.optim.Adam(params, lr=lr, foreach=True)


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float | None,
                   num_tasks: int | None = None) -> torch.Tensor | None:
    """Rescale the gradients of ``params`` so that their L2 norm is at most ``max_norm``
    (``--grad_clip``; CTPG's ``clip_grad_norm = 0.1`` on actor, critic and temperature, anchors
    §1.11, DarkDawn233/CTPG ``mtrl/agent/sac.py`` lines 376, 461, 483).

    ``num_tasks=None``: one norm over every gradient (``torch.nn.utils.clip_grad_norm_``, as the
    release does for its shared networks). ``num_tasks=T``: one norm per task over the task-t
    slices ``grad[t]`` of parameters stacked with the task axis first, (T, ...), so T separate
    learners (the DnC family, ``task_reduction="sum"``) are clipped as T independent SAC agents
    would be and one task's large gradient never shrinks another task's step.

    Args:
        params: the parameters whose ``.grad`` is rescaled in place (None grads are skipped).
        max_norm: the bound; None leaves the gradients alone (returns None).
        num_tasks: T for per-task clipping, or None.

    Returns:
        The norm(s) before clipping: a scalar, or (T,) per task; None when ``max_norm`` is None.

    Raises:
        ValueError: ``max_norm <= 0``, or per-task clipping of a parameter whose first axis is
            not T.
    """
    if max_norm is None:
        return None
    if not max_norm > 0:
        raise ValueError(f"--grad_clip must be > 0 (or unset), got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    if num_tasks is None:
        return torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_norm)
    if not grads:
        return torch.zeros(num_tasks)
    for g in grads:
        if g.dim() == 0 or g.shape[0] != num_tasks:
            raise ValueError(f"per-task gradient clipping needs parameters of shape (T={num_tasks}, ...); "
                             f"got {tuple(g.shape)}")
    sq = torch.stack([g.reshape(num_tasks, -1).pow(2).sum(1) for g in grads]).sum(0)  # (T,)
    norm = sq.sqrt()
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)  # torch's clip_grad_norm_ formula, per task
    for g in grads:
        g.mul_(scale.reshape(-1, *([1] * (g.dim() - 1))).to(g.dtype))
    return norm

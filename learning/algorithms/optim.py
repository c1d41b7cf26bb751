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

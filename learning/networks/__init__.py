"""Task-batched MLPs: every network maps (T, B, in) -> (T, B, out).

An input whose leading (task) axis has size 1 is broadcast to every task, which is how one
batch of states is fed to all T task networks at once (the Q-switch candidates, reference §3.5).
Architectures are chosen by name from :data:`ARCHITECTURES`.
"""

from __future__ import annotations

from typing import Any, Callable

from torch import nn

from learning.networks.care import CAREMLP
from learning.networks.care_ptsl import CAREPTSLMLP
from learning.networks.moore import MOOREMLP
from learning.networks.multihead import MultiheadMLP
from learning.networks.paco import PaCoMLP
from learning.networks.ptsl import PTSLMLP
from learning.networks.separate import SeparateMLP
from learning.networks.shared import SharedMLP
from learning.networks.shared_onehot import SharedOneHotMLP
from learning.networks.soft_modular import SoftModularMLP
from learning.networks.soft_modular_mtrl import MTRLSoftModularMLP

SM_VARIANTS = ("paper", "ctpg", "mtrl")


def soft_modular(num_tasks: int, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int,
                 init: str = "xavier_uniform", variant: str = "paper", **options) -> nn.Module:
    """Soft Modularization by ``variant``: ``paper`` (Soft-Module's code) and ``ctpg`` (CTPG's module),
    :class:`SoftModularMLP`; ``mtrl`` (mtrl's, PTSL's SM baseline), :class:`MTRLSoftModularMLP`.
    Options left at None take the variant's defaults.

    Raises:
        ValueError: unknown variant (the message lists the allowed ones) or a bad option.
    """
    options = {k: v for k, v in options.items() if v is not None}
    if variant == "mtrl":
        if options.pop("num_gating_layers", 1) != 1:
            raise ValueError("Soft Modularization variant mtrl has one routing projection; "
                             "--sm_gating_layers must be 1 (or unset)")
        return MTRLSoftModularMLP(num_tasks, in_dim, hidden_sizes, out_dim, init=init, **options)
    if variant not in SM_VARIANTS:
        raise ValueError(f"unknown Soft Modularization variant {variant!r}; allowed: {', '.join(SM_VARIANTS)}")
    options.pop("state_dim", None)  # paper / ctpg treat the critic's [s, a] as one input
    options.setdefault("num_gating_layers", 2 if variant == "paper" else 1)
    return SoftModularMLP(num_tasks, in_dim, hidden_sizes, out_dim, init=init, variant=variant, **options)


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "separate": SeparateMLP,
    "multihead": MultiheadMLP,
    "shared": SharedMLP,
    "shared_onehot": SharedOneHotMLP,
    "ptsl": PTSLMLP,
    "care": CAREMLP,
    "care_ptsl": CAREPTSLMLP,
    "soft_modular": soft_modular,
    "paco": PaCoMLP,
    "moore": MOOREMLP,
}
# Architectures that share parameters across tasks and give every task its own output row
# (usable by mtsac, qmp_sac and ctpg_sac: each can act as T task policies).
TASK_CONDITIONED = ("multihead", "shared_onehot", "ptsl", "care", "care_ptsl", "soft_modular", "paco",
                    "moore")


def build_network(
    architecture: str,
    num_tasks: int,
    in_dim: int,
    hidden_sizes: tuple[int, ...],
    out_dim: int,
    init: str = "xavier_uniform",
    options: dict[str, Any] | None = None,
) -> nn.Module:
    """Build a task-batched MLP by architecture name; ``options`` are the architecture's own
    keyword arguments (PTSL's ``pal_dim``, CARE's ``num_experts`` ...).

    Raises:
        ValueError: unknown architecture (the message lists the allowed names).
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; allowed: {', '.join(ARCHITECTURES)}"
        )
    return ARCHITECTURES[architecture](num_tasks, in_dim, tuple(hidden_sizes), out_dim, init=init,
                                       **(options or {}))

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

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "separate": SeparateMLP,
    "multihead": MultiheadMLP,
    "shared": SharedMLP,
    "shared_onehot": SharedOneHotMLP,
    "ptsl": PTSLMLP,
    "care": CAREMLP,
    "care_ptsl": CAREPTSLMLP,
    "soft_modular": SoftModularMLP,
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

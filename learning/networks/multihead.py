"""``multihead``: one shared trunk and T stacked output heads (reference §2.2)."""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import StackedLinear, plain_linear


class MultiheadMLP(nn.Module):
    """Shared ReLU trunk, then task t's own linear head.

    Unlike the original, the head is chosen by the task axis, not by reading the one-hot at
    the end of the observation, and every sample goes through its own head only.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim).
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
    ):
        super().__init__()
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        sizes = (in_dim, *hidden_sizes)
        self.hidden = nn.ModuleList(
            plain_linear(a, b, init) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.heads = StackedLinear(num_tasks, sizes[-1], out_dim, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk activations, (T or 1, B, hidden_sizes[-1]); a leading 1 stays 1."""
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.features(x))

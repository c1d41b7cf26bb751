"""``separate``: T independent MLPs stored as stacked weights (DESIGN §4)."""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import StackedLinear


class SeparateMLP(nn.Module):
    """T independent ReLU MLPs evaluated with one batched matmul per layer.

    Task t's output depends only on task t's slice of every weight, so the sum of per-task
    losses gives each task exactly its own gradient, and one Adam over the stacked weights
    equals T Adams (Adam is element-wise).

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
            StackedLinear(num_tasks, a, b, init) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.output = StackedLinear(num_tasks, sizes[-1], out_dim, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations, (T, B, hidden_sizes[-1])."""
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

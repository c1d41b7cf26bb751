"""``shared``: one MLP applied to every task (reference §2.2)."""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import plain_linear


class SharedMLP(nn.Module):
    """One ReLU MLP for all tasks; the task id reaches it only through the observation
    (``--include_task_id``).

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim), where a leading 1 is broadcast to T.
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
        self.output = plain_linear(sizes[-1], out_dim, init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.output(self.features(x))
        if out.shape[0] == 1 and self.num_tasks > 1:
            out = out.expand(self.num_tasks, -1, -1)
        return out

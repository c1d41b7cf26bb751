"""``shared_onehot``: one MLP for all tasks, conditioned on the task by a one-hot input
(CTPG's MTSAC, anchors §1.10; the original's ``shared`` with ``--include_task_id``).

The one-hot is the task *axis* index, not read from the observation, so row t of the output is
task t's network even when the states come from another task: policy j can act on task i's
states (QMP's candidates, CTPG's guide and hindsight), which a one-hot taken from the
observation cannot do.
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.shared import SharedMLP


class SharedOneHotMLP(nn.Module):
    """``f([x, onehot(t)])`` for every task row t, one set of weights.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); a leading 1 is fed to every task.
    """

    def __init__(self, num_tasks: int, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int,
                 init: str = "xavier_uniform"):
        super().__init__()
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        self.mlp = SharedMLP(num_tasks, in_dim + num_tasks, hidden_sizes, out_dim, init=init)
        self.register_buffer("one_hot", torch.eye(num_tasks), persistent=False)

    def _with_task(self, x: torch.Tensor) -> torch.Tensor:
        t, b = self.num_tasks, x.shape[1]
        x = x.expand(t, b, x.shape[-1])
        return torch.cat([x, self.one_hot[:, None, :].expand(t, b, t)], dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations, (T, B, hidden_sizes[-1])."""
        return self.mlp.features(self._with_task(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self._with_task(x))

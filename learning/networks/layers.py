"""Linear layers with a stacked task axis, and the garage-style initialisations (reference §2.2)."""

from __future__ import annotations

import math

import torch
from torch import nn


def init_weight_(weight: torch.Tensor, init: str) -> None:
    """Xavier-uniform (garage policies) or Xavier-normal (garage Q functions) in place.

    ``weight`` has shape (..., in, out); fan-in/fan-out are the last two axes, so a stacked
    (T, in, out) tensor gets the same per-task distribution as T separate layers.
    """
    fan_in, fan_out = weight.shape[-2], weight.shape[-1]
    if init == "xavier_uniform":
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        nn.init.uniform_(weight, -bound, bound)
    elif init == "xavier_normal":
        nn.init.normal_(weight, 0.0, math.sqrt(2.0 / (fan_in + fan_out)))
    else:
        raise ValueError(f"unknown init {init!r}; allowed: xavier_uniform, xavier_normal")


class StackedLinear(nn.Module):
    """T independent linear layers stored as one (T, in, out) weight.

    ``forward`` maps (T, B, in) -> (T, B, out) with one batched matmul
    (``torch.baddbmm``, i.e. ``"tbi,tio->tbo"``); an input with leading axis 1 is
    broadcast to every task.
    """

    def __init__(self, num_tasks: int, in_dim: int, out_dim: int, init: str = "xavier_uniform"):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_tasks, in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(num_tasks, 1, out_dim))
        init_weight_(self.weight.data, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 1 and self.weight.shape[0] > 1:
            # A materialised copy: baddbmm on a stride-0 batch axis is ~40x slower.
            x = x.expand(self.weight.shape[0], -1, -1).contiguous()
        return torch.baddbmm(self.bias, x, self.weight)


def plain_linear(in_dim: int, out_dim: int, init: str) -> nn.Linear:
    """An ``nn.Linear`` with garage initialisation (Xavier weights, zero bias)."""
    layer = nn.Linear(in_dim, out_dim)
    init_weight_(layer.weight.data.T, init)  # (out, in).T has the (in, out) fan layout
    nn.init.zeros_(layer.bias)
    return layer


def relu_mlp(sizes: tuple[int, ...], init: str) -> nn.Sequential:
    """Linear layers of widths ``sizes`` with ReLU between them and none after the last."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [plain_linear(a, b, init), nn.ReLU()]
    return nn.Sequential(*layers[:-1])

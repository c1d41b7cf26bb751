"""Gradient-free forward passes of the task-batched MLPs for acting (bench/bench_collection.py).

Acting runs the policy and the critic on tiny batches once per env step, so the fixed cost of
every call (module dispatch, a fresh output tensor for each ReLU) is a large share of its time.
:func:`inference_forward` runs the ``separate`` and ``multihead`` networks through the very same
layers and kernels as their ``forward`` (the same values, bit for bit), with the ReLUs in place
and without the per-module call overhead; any other network is simply called.

Only for use under ``torch.no_grad()``: the in-place ReLUs would break autograd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from learning.networks.layers import StackedLinear
from learning.networks.multihead import MultiheadMLP
from learning.networks.separate import SeparateMLP


def _stacked(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``StackedLinear.forward`` (a leading task axis of 1 broadcast by a materialised copy)."""
    if type(layer) is not StackedLinear:
        return layer(x)
    weight = layer.weight
    if x.shape[0] == 1 and weight.shape[0] > 1:
        x = x.expand(weight.shape[0], -1, -1).contiguous()
    return torch.baddbmm(layer.bias, x, weight)


def _linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if type(layer) is not nn.Linear:
        return layer(x)
    return F.linear(x, layer.weight, layer.bias)


def inference_forward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for a task-batched MLP, call under ``torch.no_grad()``: (T or 1, B, in) -> (T, B, out)."""
    kind = type(net)
    if kind is SeparateMLP:
        for layer in net.hidden:
            x = _stacked(layer, x).relu_()
        return _stacked(net.output, x)
    if kind is MultiheadMLP:
        for layer in net.hidden:
            x = _linear(layer, x).relu_()
        return _stacked(net.heads, x)
    return net(x)

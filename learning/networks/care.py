"""``care``: CARE, a task-attended mixture of state encoders (Sodhani et al., ICML 2021).

Structure restated from facebookresearch/mtrl's CARE run (reference anchors §3.1; mtrl
``encoder.MixtureofExpertsEncoder`` with ``mode=attention``, ``TaskEncoder`` with pretrained
embeddings, ``Actor.encode`` concatenating the task encoding):

    c_t   = g(e_t)                                   context of task t, (T, C)
    a_t   = softmax(f(c_t) / temperature)            attention over E experts, (T, E)
    z_tb  = sum_e a_te * h_e(s_tb)                   mixture of expert encodings, (T, B, Z)
    y_tb  = MLP([z_tb, c_t])                         shared output MLP, (T, B, out)

``e_t`` is a fixed task-description embedding (a buffer); ``g`` is mtrl's projection
ReLU -> Linear(D, 2C) -> ReLU -> Linear(2C, C) -> ReLU followed by its trunk MLP (ReLU hidden
layers, linear output); ``f`` is a ReLU MLP with a linear output; every expert ``h_e`` is
Linear -> ReLU -> ... -> Linear (no activation on the encoding).

Task conditioning comes from the task axis: row t uses e_t. The context and attention are
computed once per task, not once per sample as in mtrl (same values, T instead of T*B rows).
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import StackedLinear, plain_linear


def fixed_task_embeddings(num_tasks: int, seed: int = 0) -> torch.Tensor:
    """Deterministic stand-in for sentence embeddings: T orthonormal rows, (T, T).

    The lead supplies real task-description embeddings (mtrl used RoBERTa sentence
    embeddings) through the ``task_embeddings`` option; this default only makes the rows
    distinct and reproducible.
    """
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(num_tasks, num_tasks, generator=generator))
    return q


def relu_mlp(sizes: tuple[int, ...], init: str) -> nn.Sequential:
    """Linear layers of widths ``sizes`` with ReLU between them and none after the last."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [plain_linear(a, b, init), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class CAREMLP(nn.Module):
    """CARE: experts shared by all tasks, mixed per task by attention from its context.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); a leading 1 runs the experts once on the
    B shared states and mixes them with every task's attention.
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        num_experts: int = 4,
        encoder_sizes: tuple[int, ...] = (50, 50),
        context_dim: int = 50,
        context_hidden_sizes: tuple[int, ...] = (50, 50),
        attention_hidden_sizes: tuple[int, ...] = (50, 50),
        temperature: float = 1.0,
        task_embeddings: torch.Tensor | None = None,
    ):
        super().__init__()
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        self.temperature = temperature
        emb = fixed_task_embeddings(num_tasks) if task_embeddings is None else task_embeddings
        if emb.ndim != 2 or emb.shape[0] != num_tasks:
            raise ValueError(f"task_embeddings must be ({num_tasks}, D), got {tuple(emb.shape)}")
        self.register_buffer("task_embeddings", emb.detach().float().clone())
        d, c = emb.shape[1], context_dim
        self.context = nn.Sequential(
            nn.ReLU(), plain_linear(d, 2 * c, init), nn.ReLU(), plain_linear(2 * c, c, init), nn.ReLU(),
            relu_mlp((c, *context_hidden_sizes, c), init),
        )
        self.attention = relu_mlp((c, *attention_hidden_sizes, num_experts), init)
        sizes = (in_dim, *encoder_sizes)
        self.experts = nn.ModuleList(
            StackedLinear(num_experts, a, b, init) for a, b in zip(sizes[:-1], sizes[1:])
        )
        trunk = (encoder_sizes[-1] + c, *hidden_sizes)
        self.hidden = nn.ModuleList(plain_linear(a, b, init) for a, b in zip(trunk[:-1], trunk[1:]))
        self.output = plain_linear(trunk[-1], out_dim, init)

    def context_vectors(self) -> torch.Tensor:
        """Task contexts c_t = g(e_t), (T, context_dim)."""
        return self.context(self.task_embeddings)

    def mixing_weights(self) -> torch.Tensor:
        """Attention a_t = softmax(f(c_t) / temperature) over experts, (T, E); rows sum to 1."""
        return torch.softmax(self.attention(self.context_vectors()) / self.temperature, dim=-1)

    def expert_encodings(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on every state: (T' , B, in) -> (E, T', B, Z), T' = T or 1."""
        t_in, b, _ = x.shape
        h = x.reshape(1, t_in * b, -1)  # experts are shared: fold the task axis into the batch
        for i, layer in enumerate(self.experts):
            h = layer(h) if i == 0 else layer(torch.relu(h))
        return h.reshape(h.shape[0], t_in, b, -1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Output-MLP input [z_tb, c_t], (T, B, Z + C)."""
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        context = self.context_vectors()
        weights = torch.softmax(self.attention(context) / self.temperature, dim=-1)
        h = self.expert_encodings(x)
        h = h.expand(-1, self.num_tasks, -1, -1)  # a leading 1: the same states for every task
        z = torch.einsum("te,etbz->tbz", weights, h)
        return torch.cat([z, context[:, None, :].expand(-1, z.shape[1], -1)], dim=-1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations of the output MLP, (T, B, hidden_sizes[-1])."""
        h = self.encode(x)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

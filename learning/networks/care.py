"""``care``: CARE, a task-attended mixture of state encoders (Sodhani et al., ICML 2021).

Structure restated from facebookresearch/mtrl's CARE run (anchors §3.1; PTSL's copy of mtrl:
``mtrl/agent/components/encoder.py`` lines 365-453 ``MixtureofExpertsEncoder``,
``moe_layer.py`` lines 458-540 ``AttentionBasedExperts``, ``task_encoder.py`` lines 40-82,
``actor.py`` lines 449-455 concatenating the task encoding):

    c_t   = g(e_t)                                   context of task t, (T, C)
    a_t   = softmax(f(c_t) / temperature)            attention over E experts, (T, E)
    z_tb  = sum_e a_te * h_e(s_tb)                   mixture of expert encodings, (T, B, Z)
    y_tb  = MLP([z_tb, c_t])                         output MLP (the trunk), (T, B, out)

``e_t`` is a fixed task-description embedding (a buffer); ``g`` is mtrl's projection
ReLU -> Linear(D, 2C) -> ReLU -> Linear(2C, C) -> ReLU followed by its trunk MLP (ReLU hidden
layers, linear output); ``f`` is a ReLU MLP with a linear output; every expert ``h_e`` is
Linear -> ReLU -> ... -> Linear (no activation on the encoding).

Two arrangements (``--care_arrangement``):

- ``mtrl`` (mtrl and PTSL; the default): g and the experts (:class:`CAREShared`) are built once,
  owned and trained by the critic (``learning/q_functions/care_twin_q.py``), and read detached by
  the actor, whose own parts are its attention f and its trunk (mtrl ``sac.py`` lines 398-405
  detach the encoder in the actor loss; ``get_task_info`` lines 470-495 detaches the task encoding
  for every loss but the critic's; the experts are tied, ``encoder.py`` lines 455-460);
- ``per_network`` (Meta-World+'s JAX baselines, rainx0r/metaworld-algorithms ``nn/care.py``,
  ``rl/networks.py`` lines 217-221: the critic's CARE runs on [a, s]): every network owns all its
  parts and its experts see its whole input.

Task conditioning comes from the task axis: row t uses e_t. The context and attention are
computed once per task, not once per sample as in mtrl (same values, T instead of T*B rows).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from learning.networks.layers import StackedLinear, plain_linear, relu_mlp


def fixed_task_embeddings(num_tasks: int, seed: int = 0) -> torch.Tensor:
    """Deterministic stand-in for sentence embeddings: T orthonormal rows, (T, T).

    The lead supplies real task-description embeddings (mtrl used RoBERTa sentence
    embeddings) through the ``task_embeddings`` option; this default only makes the rows
    distinct and reproducible.
    """
    generator = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(num_tasks, num_tasks, generator=generator))
    return q


class CAREShared(nn.Module):
    """CARE's task encoder g and its E experts h_e (the parts mtrl shares between actor and critic).

    Raises:
        ValueError: ``task_embeddings`` not (T, D).
    """

    def __init__(self, num_tasks: int, state_dim: int, init: str = "xavier_uniform", num_experts: int = 4,
                 encoder_sizes: tuple[int, ...] = (50, 50), context_dim: int = 50,
                 context_hidden_sizes: tuple[int, ...] = (50, 50), task_embeddings: torch.Tensor | None = None):
        super().__init__()
        emb = fixed_task_embeddings(num_tasks) if task_embeddings is None else task_embeddings
        if emb.ndim != 2 or emb.shape[0] != num_tasks:
            raise ValueError(f"task_embeddings must be ({num_tasks}, D), got {tuple(emb.shape)}")
        self.register_buffer("task_embeddings", emb.detach().float().clone())
        self.num_tasks, self.state_dim, self.num_experts = num_tasks, state_dim, num_experts
        d, c = emb.shape[1], context_dim
        self.context_dim, self.encoding_dim = c, encoder_sizes[-1]
        self.context = nn.Sequential(
            nn.ReLU(), plain_linear(d, 2 * c, init), nn.ReLU(), plain_linear(2 * c, c, init), nn.ReLU(),
            relu_mlp((c, *context_hidden_sizes, c), init),
        )
        sizes = (state_dim, *encoder_sizes)
        self.experts = nn.ModuleList(
            StackedLinear(num_experts, a, b, init) for a, b in zip(sizes[:-1], sizes[1:])
        )

    def context_vectors(self) -> torch.Tensor:
        """Task contexts c_t = g(e_t), (T, context_dim)."""
        return self.context(self.task_embeddings)

    def expert_encodings(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert on every state: (T', B, state_dim) -> (E, T', B, Z), T' = T or 1."""
        t_in, b, _ = x.shape
        h = x.reshape(1, t_in * b, -1)  # experts are shared: fold the task axis into the batch
        for i, layer in enumerate(self.experts):
            h = layer(h) if i == 0 else layer(torch.relu(h))
        return h.reshape(h.shape[0], t_in, b, -1)


class CAREEncoder(nn.Module):
    """[z_tb, c_t] from states: a network's own attention f over the experts of a :class:`CAREShared`.

    ``shared=None``: the encoder builds and owns its shared parts. Given ``shared``: owned (the
    mtrl critic) or, with ``detach_shared``, borrowed (the mtrl actor): not a submodule (its
    parameters are not this network's) and read without gradient.

    Shapes: (T or 1, B, state_dim) -> (T, B, Z + C).
    """

    def __init__(self, num_tasks: int, state_dim: int, init: str = "xavier_uniform", num_experts: int = 4,
                 attention_hidden_sizes: tuple[int, ...] = (50, 50), temperature: float = 1.0,
                 shared: CAREShared | None = None, detach_shared: bool = False, **shared_options):
        super().__init__()
        if shared is None:
            shared = CAREShared(num_tasks, state_dim, init, num_experts, **shared_options)
        elif shared.state_dim != state_dim or shared.num_tasks != num_tasks:
            raise ValueError(f"shared CARE parts for (T={shared.num_tasks}, state={shared.state_dim}), "
                             f"network has (T={num_tasks}, state={state_dim})")
        self.detach_shared = detach_shared
        if detach_shared:
            self._borrowed = (shared,)  # a tuple hides it from nn.Module: not this network's parameters
        else:
            self.shared = shared
        self.num_tasks, self.temperature = num_tasks, temperature
        self.attention = relu_mlp((shared.context_dim, *attention_hidden_sizes, shared.num_experts), init)
        self.out_dim = shared.encoding_dim + shared.context_dim

    @property
    def parts(self) -> CAREShared:
        return self._borrowed[0] if self.detach_shared else self.shared

    def _shared_grad(self):
        return torch.no_grad() if self.detach_shared else contextlib.nullcontext()

    def context_vectors(self) -> torch.Tensor:
        """c_t, (T, C) (detached when borrowed)."""
        with self._shared_grad():
            return self.parts.context_vectors()

    def mixing_weights(self, context: torch.Tensor | None = None) -> torch.Tensor:
        """Attention a_t = softmax(f(c_t) / temperature) over experts, (T, E); rows sum to 1."""
        context = self.context_vectors() if context is None else context
        return torch.softmax(self.attention(context) / self.temperature, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        context = self.context_vectors()
        weights = self.mixing_weights(context)
        with self._shared_grad():
            h = self.parts.expert_encodings(x)
        h = h.expand(-1, self.num_tasks, -1, -1)  # a leading 1: the same states for every task
        z = torch.einsum("te,etbz->tbz", weights, h)
        return torch.cat([z, context[:, None, :].expand(-1, z.shape[1], -1)], dim=-1)


class CAREMLP(nn.Module):
    """CARE: experts shared by all tasks, mixed per task by attention from its context, then a
    ReLU MLP on [z_tb, c_t]. Options: see :class:`CAREEncoder` and :class:`CAREShared`.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); a leading 1 runs the experts once on the
    B shared states and mixes them with every task's attention.
    """

    def __init__(self, num_tasks: int, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int,
                 init: str = "xavier_uniform", **care_options):
        super().__init__()
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        self.encoder = CAREEncoder(num_tasks, in_dim, init, **care_options)
        trunk = (self.encoder.out_dim, *hidden_sizes)
        self.hidden = nn.ModuleList(plain_linear(a, b, init) for a, b in zip(trunk[:-1], trunk[1:]))
        self.output = plain_linear(trunk[-1], out_dim, init)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Output-MLP input [z_tb, c_t], (T, B, Z + C)."""
        return self.encoder(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations of the output MLP, (T, B, hidden_sizes[-1])."""
        h = self.encode(x)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.features(x))

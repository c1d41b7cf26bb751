"""``moore``: mixture of orthogonal experts (Hendawi et al., ICLR 2024).

Structure restated from metaworld-algorithms ``MOORENetwork`` (reference anchors §3.2):

    u_e(s)  = expert e: ReLU hidden layers, then a linear layer to H (no activation)
    (v_1..v_E)(s) = GramSchmidt(u_1(s), ..., u_E(s))      orthonormal per sample, (E, H)
    f_t(s)  = tanh(sum_e w_te v_e(s))                      task t's representation, (H,)
    y_t(s)  = head_t(f_t(s))                               task t's own linear head

with H = hidden_sizes[-1], so the experts span the whole ``hidden_sizes`` stack and the total
depth equals an MLP's. w_t (E,) is task t's row of a learned (T, E) matrix: the original's
bias-free linear task encoder applied to a one-hot, read here from the task axis.
Gram-Schmidt is the classical one with a 1e-8 guard on every norm (as the original); it needs
E <= H.
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import StackedLinear, init_weight_

EPS = 1e-8


def gram_schmidt(u: torch.Tensor) -> torch.Tensor:
    """Orthonormalise the E vectors of every sample, (N, E, H) -> (N, E, H), differentiably.

    v_1 = u_1 / |u_1|;  v_e = w_e / |w_e| with w_e = u_e - sum_{j<e} <u_e, v_j> v_j.
    A loop over the E experts (not over tasks or samples), as in the original.
    """
    basis = u[:, :1] / (u[:, :1].norm(dim=-1, keepdim=True) + EPS)
    for e in range(1, u.shape[1]):
        v = u[:, e : e + 1]  # (N, 1, H)
        w = v - (v @ basis.transpose(1, 2)) @ basis
        basis = torch.cat([basis, w / (w.norm(dim=-1, keepdim=True) + EPS)], dim=1)
    return basis


class MOOREMLP(nn.Module):
    """Orthogonal experts shared by all tasks, mixed by task weights, then per-task heads.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); a leading 1 runs the experts and
    Gram-Schmidt once on the B shared states.
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        num_experts: int = 4,
    ):
        super().__init__()
        if num_experts > hidden_sizes[-1]:
            raise ValueError(f"num_experts={num_experts} > representation width {hidden_sizes[-1]}")
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        sizes = (in_dim, *hidden_sizes)
        self.experts = nn.ModuleList(
            StackedLinear(num_experts, a, b, init) for a, b in zip(sizes[:-1], sizes[1:])
        )
        task_weights = torch.empty(num_tasks, num_experts)
        init_weight_(task_weights, init)
        self.task_weights = nn.Parameter(task_weights)  # w, (T, E)
        self.heads = StackedLinear(num_tasks, sizes[-1], out_dim, init)

    def orthogonal_experts(self, x: torch.Tensor) -> torch.Tensor:
        """Orthonormalised expert outputs, (T', B, in) -> (T', B, E, H), T' = T or 1."""
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        t_in, b, _ = x.shape
        h = x.reshape(1, t_in * b, -1)  # experts are shared: fold the task axis into the batch
        for i, layer in enumerate(self.experts):
            h = layer(h) if i == 0 else layer(torch.relu(h))
        v = gram_schmidt(h.transpose(0, 1))  # (N, E, H)
        return v.reshape(t_in, b, *v.shape[1:])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """tanh(sum_e w_te v_e), (T, B, hidden_sizes[-1])."""
        v = self.orthogonal_experts(x).expand(self.num_tasks, -1, -1, -1)
        return torch.tanh(torch.einsum("te,tbeh->tbh", self.task_weights, v))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.heads(self.features(x))

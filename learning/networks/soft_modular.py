"""``soft_modular``: Soft Modularization (Yang et al. 2020; anchors §1.12, §2.6, §3.1).

For task t and state s (E = hidden_sizes[-1], n = num_modules, L = num_layers, G = gating_hidden):

    f = F(s)                   observation embedding: Linear/ReLU MLP over hidden_sizes, no final ReLU
    z = e_t * f                the task's learned embedding e_t (E,) gates the observation embedding
    g = Gate(z)                num_gating_layers Linear layers on ReLU(z), ReLU between (G wide)
    q_0 = Wd_0 ReLU(g);  q_l = Wd_l ReLU(Wu_l(c_l) * g)  for l = 1 .. L-1
    P_l = softmax(q_l) over its last axis: (n, n) for l < L-1, (1, n) for l = L-1,

where P_l[j, k] is the weight of module k of layer l in the input of module j of layer l+1 (the
weights into each module sum to one) and P_{L-1} mixes the last layer into one vector. Modules
m_{l,k}(x) = W_{l,k} x + b_{l,k} (module_hidden wide); the output layer maps that vector to out_dim.

variant "paper" (Soft-Module code, which CTPG cites): c_l = [P_0, .., P_{l-1}] flattened,
    x_0 = ReLU(f),  x_{l+1, j} = ReLU(sum_k P_l[j, k] m_{l,k}(x_{l,k})),  out = Linear(x_L).
variant "ctpg" (CTPG's SoftModularizedMLP): c_l = q_{l-1} (previous logits),
    x_0 = f,        x_{l+1, j} = sum_k P_l[j, k] ReLU(m_{l,k}(x_{l,k})),      out = Linear(x_L).
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import init_weight_, plain_linear

VARIANTS = ("paper", "ctpg")


class SoftModularMLP(nn.Module):
    """Soft Modularization with the task taken from the task axis (row t uses e_t).

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); ``routing`` gives the L mixing matrices.
    ``hidden_sizes`` are the observation-embedding widths (CTPG and Soft-Module MT10: (400, 400)).
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        num_layers: int = 4,
        num_modules: int = 4,
        module_hidden: int = 128,
        gating_hidden: int = 256,
        num_gating_layers: int = 2,
        variant: str = "paper",
    ):
        super().__init__()
        if variant not in VARIANTS or not hidden_sizes or num_layers < 1:
            raise ValueError(f"variant in {VARIANTS}, hidden_sizes non-empty, num_layers >= 1")
        self.num_tasks, self.in_dim, self.out_dim, self.variant = num_tasks, in_dim, out_dim, variant
        self.num_modules, self.num_layers = num_modules, num_layers
        sizes = (in_dim, *hidden_sizes)
        self.obs_net = nn.ModuleList(plain_linear(a, b, init) for a, b in zip(sizes[:-1], sizes[1:]))
        # e_t == one-hot(t) @ W of a bias-free Linear(T -> E) with the same (T, E) Xavier fan.
        self.task_embedding = nn.Parameter(torch.empty(num_tasks, 1, sizes[-1]))
        init_weight_(self.task_embedding.data.view(num_tasks, sizes[-1]), init)
        gates = (sizes[-1], *([gating_hidden] * num_gating_layers))
        self.gating = nn.ModuleList(plain_linear(a, b, init) for a, b in zip(gates[:-1], gates[1:]))
        n2 = num_modules * num_modules
        self.route_down = nn.ModuleList(
            plain_linear(gates[-1], n2 if i < num_layers - 1 else num_modules, init)
            for i in range(num_layers)
        )
        self.route_up = nn.ModuleList(
            plain_linear(n2 * (i if variant == "paper" else 1), gates[-1], init)
            for i in range(1, num_layers)
        )
        widths = (sizes[-1], *([module_hidden] * num_layers))
        self.module_weight = nn.ParameterList()
        self.module_bias = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            weight = torch.empty(num_modules, a, b)
            init_weight_(weight, init)  # Xavier per module, as mtrl's per-expert init
            self.module_weight.append(nn.Parameter(weight))
            self.module_bias.append(nn.Parameter(torch.zeros(num_modules, b)))
        self.last = plain_linear(module_hidden, out_dim, init)

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """f (T or 1, B, E) and the gating features g (T, B, G)."""
        for i, layer in enumerate(self.obs_net):
            x = layer(torch.relu(x) if i else x)
        z = self.task_embedding * x  # (T, 1, E) * (T or 1, B, E): row t gated by e_t
        if not self.gating:
            return x, z
        z = self.gating[0](torch.relu(z))
        for layer in self.gating[1:]:
            z = layer(torch.relu(z))
        return x, z

    def _routing(self, g: torch.Tensor) -> list[torch.Tensor]:
        n, probs, logits = self.num_modules, [], None
        for i, route_down in enumerate(self.route_down):
            if i == 0:
                hidden = torch.relu(g)
            else:  # "paper" conditions on all previous P (flattened), "ctpg" on the last logits
                cond = torch.cat([p.flatten(-2) for p in probs], -1) if self.variant == "paper" else logits
                hidden = torch.relu(self.route_up[i - 1](cond) * g)
            logits = route_down(hidden)
            rows = n if i < self.num_layers - 1 else 1
            probs.append(torch.softmax(logits.unflatten(-1, (rows, n)), dim=-1))
        return probs

    def routing(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The L mixing matrices P_l: (T, B, n, n) for l < L-1, then (T, B, 1, n); rows sum to one."""
        return self._routing(self._embed(x)[1])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The mixed last-layer vector fed to the output layer, (T, B, module_hidden)."""
        f, g = self._embed(x)
        probs = self._routing(g)
        paper = self.variant == "paper"
        h = (torch.relu(f) if paper else f).unsqueeze(-2)  # (T or 1, B, 1, E): one input for all modules
        for p, weight, bias in zip(probs, self.module_weight, self.module_bias):
            h = torch.einsum("tbki,kio->tbko", h.expand(*h.shape[:2], self.num_modules, -1), weight) + bias
            h = torch.einsum("tbjk,tbko->tbjo", p, h if paper else torch.relu(h))
            h = torch.relu(h) if paper else h
        return h.squeeze(-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last(self.features(x))

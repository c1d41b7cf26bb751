"""``soft_modular`` variant ``mtrl``: mtrl's Soft Modularization, the SM baseline of the PTSL paper.

Restated from facebookresearch/mtrl as PTSL ran it (JosselinSomervilleRoberts/PTSL @39f8443:
``mtrl/agent/components/soft_modularization.py`` lines 21-105 ``SoftModularizedMLP`` and 108-201
``RoutingNetwork``; ``actor.py`` lines 326-358 build it with ``num_layers=2`` and the config's width;
the README's SM command, lines 173-189: feed-forward state encoder 50/2/50, learned task encoder,
4 experts; ``encoder.py`` lines 230-292, ``task_encoder.py`` lines 67-82, ``critic.py`` lines 74-78
and 275-285). For task t and state s (n modules, H = ``module_hidden``, L = ``num_layers``):

    f      = F(s): Linear(S, 50) ReLU Linear(50, 50) ReLU Linear(50, 50)     mtrl's encoder, (B, 50)
    x      = f (actor) | P([f, a]) (critic; P = Linear(50 + A, 50))         ``state_dim`` < in_dim
    e_t    = M(ReLU(E_t)): E a learned (T, 50) table, M 3 Linear layers, ReLU between
    r      = R(x * e_t)                 projection before routing, Linear(50, G), G = ``gating_hidden``
    q_0    = Wd_0 ReLU(r);  q_l = Wd_l ReLU(Wu_l(q_{l-1}) * r)    logits (n * n); P_l = row softmax
    h_0    = x for every module;  h_{l+1, j} = sum_k P_l[j, k] ReLU(h_{l,k} W_{l,k} + b_{l,k})  (l < L-1)
    y      = mean_k (h_{L-1, k} W_{L-1,k} + b_{L-1,k})      the last layer averaged over the modules

P_l[j, k] is the weight of module k's output in module j's input (rows sum to one). Initialisation as
mtrl's ``weight_init`` (``mtrl/agent/utils.py`` lines 67-106): Xavier-uniform weights (per module for
the module layers), zero biases; the task table keeps ``nn.Embedding``'s N(0, 1).
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import init_weight_, plain_linear


def _mlp(sizes: tuple[int, ...], init: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [plain_linear(a, b, init), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class MTRLSoftModularMLP(nn.Module):
    """mtrl's soft-modularised MLP with its state and task encoders; the task is the task axis.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim). ``module_hidden`` and ``gating_hidden`` default to
    ``hidden_sizes[-1]`` (mtrl's ``hidden_dim`` is both). ``state_dim`` (default in_dim): the first
    ``state_dim`` inputs are the state; the rest (a critic's action) joins after the state encoder.

    Raises:
        ValueError: ``num_layers`` < 2 or ``state_dim`` > ``in_dim``.
    """

    def __init__(self, num_tasks: int, in_dim: int, hidden_sizes: tuple[int, ...], out_dim: int,
                 init: str = "xavier_uniform", num_layers: int = 2, num_modules: int = 4,
                 module_hidden: int | None = None, gating_hidden: int | None = None,
                 state_dim: int | None = None, encoder_sizes: tuple[int, ...] = (50, 50, 50),
                 task_sizes: tuple[int, ...] = (50, 50, 50, 50)):
        super().__init__()
        state_dim = in_dim if state_dim is None else state_dim
        if num_layers < 2 or not 0 < state_dim <= in_dim:
            raise ValueError(f"mtrl Soft Modularization needs num_layers >= 2 (got {num_layers}) and "
                             f"0 < state_dim <= in_dim (got {state_dim}, {in_dim})")
        width = hidden_sizes[-1]
        hidden, gate = module_hidden or width, gating_hidden or width
        self.num_tasks, self.in_dim, self.out_dim, self.state_dim = num_tasks, in_dim, out_dim, state_dim
        self.num_modules, self.num_layers = num_modules, num_layers
        feature = encoder_sizes[-1]
        self.encoder = _mlp((state_dim, *encoder_sizes), init)
        if state_dim < in_dim:
            self.action_projection = plain_linear(feature + in_dim - state_dim, feature, init)
        self.task_table = nn.Parameter(torch.randn(num_tasks, task_sizes[0]))  # nn.Embedding's N(0, 1)
        self.task_mlp = _mlp(task_sizes, init)
        if task_sizes[-1] != feature:
            raise ValueError(f"task encoding width {task_sizes[-1]} != state encoding width {feature}")
        n2 = num_modules * num_modules
        self.routing_projection = plain_linear(feature, gate, init)
        self.route_down = nn.ModuleList(plain_linear(gate, n2, init) for _ in range(num_layers - 1))
        self.route_up = nn.ModuleList(plain_linear(n2, gate, init) for _ in range(num_layers - 2))
        widths = (feature, *([hidden] * (num_layers - 1)), out_dim)
        self.module_weight = nn.ParameterList()
        self.module_bias = nn.ParameterList()
        for a, b in zip(widths[:-1], widths[1:]):
            weight = torch.empty(num_modules, a, b)
            init_weight_(weight, init)
            self.module_weight.append(nn.Parameter(weight))
            self.module_bias.append(nn.Parameter(torch.zeros(num_modules, b)))

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """x of the module layers, (T or 1, B, 50)."""
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        f = self.encoder(x[..., : self.state_dim])
        if self.state_dim < self.in_dim:
            f = self.action_projection(torch.cat([f, x[..., self.state_dim:]], -1))
        return f

    def routing(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The L-1 mixing matrices P_l, each (T, B, n, n); rows sum to one."""
        return self._routing(self._encode(x))

    def _routing(self, f: torch.Tensor) -> list[torch.Tensor]:
        task = self.task_mlp(torch.relu(self.task_table))  # (T, 50), once per task
        r = self.routing_projection(f * task[:, None, :])  # (T, B, G)
        logits = self.route_down[0](torch.relu(r))
        probs = [logits]
        for up, down in zip(self.route_up, self.route_down[1:]):
            logits = down(torch.relu(up(logits) * r))  # conditioned on the previous logits, as mtrl
            probs.append(logits)
        n = self.num_modules
        return [torch.softmax(q.unflatten(-1, (n, n)), dim=-1) for q in probs]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs of the last module layer, (T, B, n, module_hidden)."""
        f = self._encode(x)
        probs = self._routing(f)
        h = f.unsqueeze(-2).expand(*f.shape[:2], self.num_modules, -1)  # every module sees x
        for p, weight, bias in zip(probs, self.module_weight[:-1], self.module_bias[:-1]):
            h = torch.relu(torch.einsum("tbki,kio->tbko", h, weight) + bias)
            h = torch.einsum("tbjk,tbko->tbjo", p, h.expand(p.shape[0], -1, -1, -1))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        out = torch.einsum("tbki,kio->tbko", h, self.module_weight[-1]) + self.module_bias[-1]
        return out.mean(dim=-2)

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

P_l[j, k] is the weight of module k's output in module j's input (rows sum to one). F and the task
encoder are :class:`MTRLSMShared`; in mtrl's arrangement (``learning/q_functions/sm_twin_q.py``) the
critic owns them and the actor reads them detached (``shared`` with ``detach_shared``). Initialisation as
mtrl's ``weight_init`` (``mtrl/agent/utils.py`` lines 67-106): Xavier-uniform weights (per module for
the module layers), zero biases; the task table keeps ``nn.Embedding``'s N(0, 1).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from learning.networks.layers import init_weight_, plain_linear, relu_mlp


class MTRLSMShared(nn.Module):
    """mtrl's parts that actor and critic share in its SM run: the state encoder F (50/2/50; tied
    between actor and critic, ``encoder.py`` lines 294-297) and the task encoder (one for the agent,
    ``sac.py`` lines 116-126)."""

    def __init__(self, num_tasks: int, state_dim: int, init: str = "xavier_uniform",
                 encoder_sizes: tuple[int, ...] = (50, 50, 50), task_sizes: tuple[int, ...] = (50, 50, 50, 50)):
        super().__init__()
        if task_sizes[-1] != encoder_sizes[-1]:
            raise ValueError(f"task encoding width {task_sizes[-1]} != state encoding width {encoder_sizes[-1]}")
        self.num_tasks, self.state_dim, self.feature_dim = num_tasks, state_dim, encoder_sizes[-1]
        self.encoder = relu_mlp((state_dim, *encoder_sizes), init)
        self.task_table = nn.Parameter(torch.randn(num_tasks, task_sizes[0]))  # nn.Embedding's N(0, 1)
        self.task_mlp = relu_mlp(task_sizes, init)

    def task_encoding(self) -> torch.Tensor:
        """e_t for every task, (T, 50), once per task."""
        return self.task_mlp(torch.relu(self.task_table))


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
                 state_dim: int | None = None, shared: MTRLSMShared | None = None, detach_shared: bool = False,
                 **shared_options):
        super().__init__()
        state_dim = in_dim if state_dim is None else state_dim
        if num_layers < 2 or not 0 < state_dim <= in_dim:
            raise ValueError(f"mtrl Soft Modularization needs num_layers >= 2 (got {num_layers}) and "
                             f"0 < state_dim <= in_dim (got {state_dim}, {in_dim})")
        width = hidden_sizes[-1]
        hidden, gate = module_hidden or width, gating_hidden or width
        self.num_tasks, self.in_dim, self.out_dim, self.state_dim = num_tasks, in_dim, out_dim, state_dim
        self.num_modules, self.num_layers = num_modules, num_layers
        if shared is None:
            shared = MTRLSMShared(num_tasks, state_dim, init, **shared_options)
        elif (shared.num_tasks, shared.state_dim) != (num_tasks, state_dim):
            raise ValueError(f"shared SM parts for (T={shared.num_tasks}, state={shared.state_dim}), "
                             f"network has (T={num_tasks}, state={state_dim})")
        self.detach_shared = detach_shared
        if detach_shared:
            self._borrowed = (shared,)  # mtrl's actor: the critic's parts, read without gradient
        else:
            self.shared = shared
        feature = shared.feature_dim
        if state_dim < in_dim:
            self.action_projection = plain_linear(feature + in_dim - state_dim, feature, init)
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

    @property
    def parts(self) -> MTRLSMShared:
        return self._borrowed[0] if self.detach_shared else self.shared

    def _shared_grad(self):
        return torch.no_grad() if self.detach_shared else contextlib.nullcontext()

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """x of the module layers, (T or 1, B, 50)."""
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        with self._shared_grad():
            f = self.parts.encoder(x[..., : self.state_dim])
        if self.state_dim < self.in_dim:
            f = self.action_projection(torch.cat([f, x[..., self.state_dim:]], -1))
        return f

    def routing(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The L-1 mixing matrices P_l, each (T, B, n, n); rows sum to one."""
        return self._routing(self._encode(x))

    def _routing(self, f: torch.Tensor) -> list[torch.Tensor]:
        with self._shared_grad():
            task = self.parts.task_encoding()  # (T, 50), once per task
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

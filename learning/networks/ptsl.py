"""``ptsl``: shared backbone plus low-rank task-specific projected layers (PTSL, anchors §2).

Every layer l (hidden layers ReLU, output layer identity) of the network computes, for task t,

    o_l = W_l h + b_l  +  U_l (T_{l,t}^T u_l + c_{l,t}),     d_l = D_l h,    u_0 = d_0,

with a shared backbone layer (W_l, b_l), a bias-free down-projection D_l (width -> pal_dim), a
bias-free up-projection U_l (pal_dim -> width) and task t's own (pal_dim x pal_dim) layer
(T_{l,t}, c_{l,t}), stacked over tasks and selected by the task axis (anchors §2.1). For l >= 1
the task path's input u_l follows ``residual_mode`` (anchors §2.3; one alpha / one P shared by
all layers, as in PTSL):

    none:    u_l = d_l
    sum:     u_l = d_l + d_{l-1} + y_{l-1}               (y_{l-1} = T_{l-1,t}^T u_{l-1} + c_{l-1,t})
    linear:  u_l = a_0 d_l + a_1 d_{l-1} + a_2 y_{l-1}   (a learned, initialised to 1/3 each)
    project: u_l = [d_l, d_{l-1}, y_{l-1}] P             (P: bias-free (3 p) -> p)
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.layers import StackedLinear, init_weight_, plain_linear

RESIDUAL_MODES = ("none", "sum", "linear", "project")
BRANCH_INITS = ("ptsl", "lora")


def projection_pays(num_tasks: int, width: int, pal_in: int, pal_out: int) -> bool:
    """PTSL's rule (anchors §2.1): project iff width*p + N*(pal_in+1)*pal_out <= N*(pal_in+1)*width.

    Down-projection of an input of size a: ``projection_pays(N, a, p, p)``; up-projection to an
    output of size b after a task layer with input size a': ``projection_pays(N, b, a', p)``.
    """
    with_projection = width * pal_out + num_tasks * (pal_in + 1) * pal_out
    return with_projection <= num_tasks * (pal_in + 1) * width


class PTSLMLP(nn.Module):
    """PTSL network: ``len(hidden_sizes) + 1`` PAL layers; the last one is the task-specific output.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim); a leading 1 runs the same states through
    every task's network. Init ``branch_init="ptsl"`` (anchors §2.4): D, U and P zero, T ~ N(0, 1),
    c = 0, so the task branch outputs exactly zero and the backbone trains first; the branch
    escapes the all-zero point through layers whose D or U was skipped by ``skip_projection``
    (with independent projections the hidden branches of the original never leave zero).
    ``branch_init="lora"``: D, P and T Xavier, U zero (T zero instead where a layer has no U).

    Options: ``pal_dim`` p (PTSL: 50 on MT10, 32 on MT50 1M); ``shared_projection`` one D
    (hidden -> p) and one U (p -> hidden) reused by every layer, the first layer keeping its own
    D and the output layer its own U (anchors §2.2), else one pair per layer; D and U never carry
    a task axis. ``skip_projection``: PTSL's rule drops D or U (identity, T then spans the full
    width) where that costs fewer parameters; residual modes always project (they need p-sized
    d and y). ``residual_mode``: see the module docstring.
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        pal_dim: int = 32,
        shared_projection: bool = True,
        residual_mode: str = "none",
        skip_projection: bool = True,
        branch_init: str = "ptsl",
    ):
        super().__init__()
        if residual_mode not in RESIDUAL_MODES or branch_init not in BRANCH_INITS:
            raise ValueError(f"residual_mode in {RESIDUAL_MODES}, branch_init in {BRANCH_INITS}")
        if shared_projection and len(set(hidden_sizes)) > 1:
            raise ValueError("shared_projection needs equal hidden sizes (one D and one U per network)")
        self.num_tasks, self.in_dim, self.out_dim, self.pal_dim = num_tasks, in_dim, out_dim, pal_dim
        self.residual_mode, self.branch_init, self.init = residual_mode, branch_init, init
        sizes = (in_dim, *hidden_sizes, out_dim)
        self.num_layers = len(sizes) - 1
        self.shared = nn.ModuleList(plain_linear(a, b, init) for a, b in zip(sizes[:-1], sizes[1:]))
        self.proj = nn.ParameterDict()
        self.down_keys: list[str | None] = []
        self.up_keys: list[str | None] = []
        self.task = nn.ModuleList()
        residual = residual_mode != "none"  # residuals need p-sized d_l and y_l in every layer
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            first, last = i == 0, i == self.num_layers - 1
            down = "down" if shared_projection and not first else f"down{i}"
            force_down = residual or not skip_projection
            if down != "down" and not (force_down or projection_pays(num_tasks, a, pal_dim, pal_dim)):
                down = None
            pal_in = pal_dim if down else a
            up = "up" if shared_projection and not last else f"up{i}"
            force_up = (residual and not last) or not skip_projection
            if up != "up" and not (force_up or projection_pays(num_tasks, b, pal_in, pal_dim)):
                up = None
            self._add_projection(down, a, pal_dim, is_down=True)
            self._add_projection(up, pal_dim, b, is_down=False)
            self.down_keys.append(down)
            self.up_keys.append(up)
            task = StackedLinear(num_tasks, pal_in, pal_dim if up else b, init)
            if up is None and (branch_init == "lora" or down is None):
                nn.init.zeros_(task.weight)  # no zero U after T: a zero T keeps the branch at 0
            elif branch_init == "ptsl":
                nn.init.normal_(task.weight)  # torch.randn in PTSL (anchors §2.4)
            self.task.append(task)
        if residual_mode == "linear":
            self.alpha = nn.Parameter(torch.full((3,), 1.0 / 3.0))
        if residual_mode == "project":
            self.res_proj = nn.Parameter(torch.zeros(3 * pal_dim, pal_dim))
            if branch_init == "lora":
                init_weight_(self.res_proj.data, init)

    def _add_projection(self, key: str | None, n_in: int, n_out: int, is_down: bool) -> None:
        if key is None or key in self.proj:
            return
        weight = torch.zeros(n_in, n_out)  # PTSL zero-inits every bias-free linear (anchors §2.4)
        if is_down and self.branch_init == "lora":
            init_weight_(weight, self.init)
        self.proj[key] = nn.Parameter(weight)

    def _task_input(self, d: torch.Tensor, d_prev: torch.Tensor, y_prev: torch.Tensor) -> torch.Tensor:
        """u_l from d_l, d_{l-1}, y_{l-1} by ``residual_mode`` (anchors §2.3); (T or 1, B, p)."""
        if self.residual_mode == "sum":
            return d + d_prev + y_prev
        if self.residual_mode == "linear":
            return self.alpha[0] * d + self.alpha[1] * d_prev + self.alpha[2] * y_prev
        if self.residual_mode == "project":
            return torch.cat(torch.broadcast_tensors(d, d_prev, y_prev), dim=-1) @ self.res_proj
        return d

    def _layer(self, i: int, h: torch.Tensor, d_prev: torch.Tensor | None, y_prev: torch.Tensor | None):
        """One PAL layer: (T or 1, B, a) -> pre-activation (T, B, b), and its d_l, y_l."""
        down, up = self.down_keys[i], self.up_keys[i]
        d = h @ self.proj[down] if down else h
        u = d if i == 0 else self._task_input(d, d_prev, y_prev)
        y = self.task[i](u)  # "tbi,tio->tbo": task t's own (T_{l,t}, c_{l,t})
        branch = y @ self.proj[up] if up else y
        return self.shared[i](h) + branch, d, y

    def _hidden(self, x: torch.Tensor):
        d = y = None
        for i in range(self.num_layers - 1):
            pre, d, y = self._layer(i, x, d, y)
            x = torch.relu(pre)
        return x, d, y

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations, (T, B, hidden_sizes[-1]) (the input itself without hidden layers)."""
        return self._hidden(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, d, y = self._hidden(x)
        return self._layer(self.num_layers - 1, h, d, y)[0]

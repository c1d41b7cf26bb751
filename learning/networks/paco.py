"""``paco``: parameter compositions (Sun et al., NeurIPS 2022).

Every layer keeps K full parameter sets Phi_k = (W_k (in, out), b_k (out,)), shared by all
tasks; task t's layer is the composition theta_t = sum_k w_tk Phi_k with its own vector
w_t (K,) (PaCo §3; CTPG ``paco_net.CompositionalFC``; metaworld-algorithms ``PaCoNetwork``).
Both originals mix the K layer *outputs* with w_t, which is the same function, since
x (sum_k w_k W_k) + sum_k w_k b_k = sum_k w_k (x W_k + b_k); composing the weights once per
task costs T*K*in*out instead of T*K*B*in*out.

The w_t are unconstrained (no softmax), Xavier-initialised like CTPG's task-embedding table
(T, K); Phi_k are Xavier per set with zero biases. Sizes in CTPG (anchors §1.12): K=5, 3x400
on Meta-World; K=3, 2x400 on HalfCheetah.

Stabilisation (PaCo §3.3; CTPG ``mask_extreme_task`` and ``reset_weight_by_task_mask``, run
after 100k steps with threshold 3000 on the per-task mean critic loss): a task whose loss is
extreme is masked out of the actor and critic losses, and after the update its w_t is reset;
the shared Phi is never touched. See :func:`extreme_loss_tasks`, :func:`mask_task_loss` and
:meth:`PaCoMLP.reset_tasks`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from learning.networks.layers import init_weight_

RESET_MODES = ("interpolate", "initial")


def extreme_loss_tasks(per_task_loss: torch.Tensor, threshold: float = 3000.0) -> torch.Tensor:
    """Tasks whose loss explodes: ``not |L_t| <= threshold``, (T,) -> (T,) bool; NaN is extreme."""
    return ~(per_task_loss.abs() <= threshold)


def mask_task_loss(per_task_loss: torch.Tensor, extreme: torch.Tensor) -> torch.Tensor:
    """Zero the extreme tasks' losses, (T, ...) -> (T, ...) (CTPG ``mask_extreme_task``).

    ``torch.where`` rather than CTPG's multiplication by the float mask, so an infinite loss
    becomes 0 instead of NaN; a NaN produced *inside* the masked task's forward pass can
    still reach shared gradients (0 * NaN), so a caller may also skip such a step.
    """
    keep = (~extreme).reshape(-1, *([1] * (per_task_loss.ndim - 1)))
    return torch.where(keep, per_task_loss, torch.zeros_like(per_task_loss))


class PaCoMLP(nn.Module):
    """ReLU MLP whose task-t weights are the w_t-composition of K shared parameter sets.

    Shapes: (T or 1, B, in_dim) -> (T, B, out_dim).
    """

    def __init__(
        self,
        num_tasks: int,
        in_dim: int,
        hidden_sizes: tuple[int, ...],
        out_dim: int,
        init: str = "xavier_uniform",
        num_param_sets: int = 5,
        reset_mode: str = "interpolate",
    ):
        super().__init__()
        if reset_mode not in RESET_MODES:
            raise ValueError(f"unknown reset_mode {reset_mode!r}; allowed: {', '.join(RESET_MODES)}")
        self.num_tasks, self.in_dim, self.out_dim = num_tasks, in_dim, out_dim
        self.reset_mode = reset_mode
        sizes = (in_dim, *hidden_sizes, out_dim)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            weight = torch.empty(num_param_sets, a, b)
            init_weight_(weight, init)  # per set: fan-in/out are the last two axes
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(num_param_sets, 1, b)))
        composition = torch.empty(num_tasks, num_param_sets)
        init_weight_(composition, init)
        self.composition = nn.Parameter(composition)  # w, (T, K)
        self.register_buffer("initial_composition", composition.clone())

    def task_parameters(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer i's composed weights theta_t = sum_k w_tk W_k, (T, in, out), and biases (T, 1, out)."""
        weight = torch.einsum("tk,kio->tio", self.composition, self.weights[i])
        bias = torch.einsum("tk,kso->tso", self.composition, self.biases[i])
        return weight, bias

    def _layer(self, i: int, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.task_parameters(i)
        if x.shape[0] == 1 and self.num_tasks > 1:
            x = x.expand(self.num_tasks, -1, -1).contiguous()  # baddbmm is slow on stride 0
        return torch.baddbmm(bias, x, weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden activations, (T, B, hidden_sizes[-1])."""
        if x.ndim != 3 or x.shape[0] not in (1, self.num_tasks):
            raise ValueError(f"expected (T={self.num_tasks} or 1, B, in), got {tuple(x.shape)}")
        for i in range(len(self.weights) - 1):
            x = torch.relu(self._layer(i, x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._layer(len(self.weights) - 1, self.features(x))

    @torch.no_grad()
    def reset_tasks(self, mask: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Reset w_t of the tasks where ``mask`` (T,) bool is True; the other rows and Phi stay.

        ``reset_mode="interpolate"`` (CTPG / PaCo w-reset): w_t <- sum_j beta_tj w_j over the
        healthy tasks j, beta_t ~ U(0, 1) normalised to sum 1; when no task is healthy the
        initial values are restored (CTPG draws fresh Xavier values there).
        ``reset_mode="initial"``: w_t <- its value at construction.
        Optimizer moments of w_t are not touched (neither does CTPG).
        """
        mask = mask.to(device=self.composition.device, dtype=torch.bool)
        if not bool(mask.any()):
            return
        healthy = self.composition[~mask]
        if self.reset_mode == "initial" or healthy.shape[0] == 0:
            self.composition[mask] = self.initial_composition[mask]
            return
        beta = torch.rand(int(mask.sum()), healthy.shape[0], generator=generator)
        beta = F.normalize(beta.to(healthy), p=1, dim=-1)
        self.composition[mask] = beta @ healthy

"""Tanh-squashed diagonal Gaussian policy on a task-batched MLP (reference §2.2, §3.1)."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from learning.networks import build_network
from learning.policies.inference import inference_forward

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # garage's clamp, reference §2.2
_LOG_2PI = math.log(2.0 * math.pi)


class PolicyOutput(NamedTuple):
    """Everything one forward pass gives; all (T, B, act_dim) except ``log_prob`` (T, B)."""

    action: torch.Tensor  # tanh(u), u ~ N(mean, std) (reparameterised)
    log_prob: torch.Tensor  # log pi(action | obs), (T, B)
    mean: torch.Tensor  # pre-tanh Gaussian mean
    log_std: torch.Tensor  # clamped pre-tanh log standard deviation


def tanh_gaussian_log_prob(
    u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """log-density of ``a = tanh(u)``, ``u ~ N(mean, exp(log_std)^2)``, summed over the last axis.

    ``log p(a) = sum_d [log N(u_d; mean_d, std_d) - log(1 - tanh(u_d)^2)]`` with the Jacobian
    term written as ``2 (log 2 - u - softplus(-2u))``, which is exact and finite for large
    |u| (the original adds 1e-6 inside the log instead; docs/deviations.md).

    Shapes: (..., act_dim) -> (...).
    """
    gauss = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * _LOG_2PI
    log_det = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return (gauss - log_det).sum(-1)


class TanhGaussianPolicy(nn.Module):
    """pi_t(a | s) = tanh-squashed N(mean_t(s), std_t(s)) for every task t.

    The network outputs ``2 * act_dim`` values per state: the mean and the log-std (clamped
    to [-20, 2]). The original uses two linear heads on one trunk, which is the same function.

    Args:
        architecture: ``separate`` | ``multihead`` | ``shared``.
        num_tasks: T.
        obs_dim: network input size.
        act_dim: action size.
        hidden_sizes: MLP widths.
        options: the architecture's own keyword arguments (see ``learning.networks``).
    """

    def __init__(
        self,
        architecture: str,
        num_tasks: int,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: tuple[int, ...],
        options: dict | None = None,
    ):
        super().__init__()
        self.architecture, self.num_tasks, self.act_dim = architecture, num_tasks, act_dim
        self.net = build_network(
            architecture, num_tasks, obs_dim, hidden_sizes, 2 * act_dim, init="xavier_uniform",
            options=options)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std), each (T, B, act_dim), for obs (T or 1, B, obs_dim)."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: torch.Tensor) -> PolicyOutput:
        """Reparameterised sample with its log-probability (reference §3.1)."""
        mean, log_std = self.distribution_params(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return PolicyOutput(torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std), mean, log_std)

    def _acting_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`distribution_params` through :func:`inference_forward` (no_grad callers only)."""
        mean, log_std = inference_forward(self.net, obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    @torch.no_grad()
    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, pre-tanh mean), each (T, B, act_dim), for acting: the same draw as
        :meth:`forward` (same random numbers, same values) without the log-probability."""
        mean, log_std = self._acting_params(obs)
        u = mean + log_std.exp() * torch.randn_like(mean)
        return torch.tanh(u), mean

    @torch.no_grad()
    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """tanh(mean), the action used by evaluation (reference §3.13); (T, B, act_dim)."""
        return torch.tanh(inference_forward(self.net, obs).chunk(2, dim=-1)[0])

"""Twin Q functions Q1, Q2 on task-batched MLPs (reference §2.2, §3.1)."""

from __future__ import annotations

import torch
from torch import nn

from learning.networks import build_network


class TwinQFunction(nn.Module):
    """Two independent critics ``Q_k,t(s, a)`` for k in {1, 2} and every task t.

    Garage initialisation for Q functions: Xavier-normal weights, zero biases.

    Args:
        architecture: a name of ``learning.networks.ARCHITECTURES`` (mtrl's CARE arrangement:
            ``learning/q_functions/care_twin_q.py``).
        num_tasks: T.
        obs_dim: network observation size.
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
        if architecture == "soft_modular" and (options or {}).get("variant") == "mtrl":
            # mtrl's SM critic encodes the state alone and projects [F(s), a] (critic.py lines 74-78)
            options = dict(options, state_dim=obs_dim)
        self.q1 = build_network(architecture, num_tasks, obs_dim + act_dim, hidden_sizes, 1,
                                init="xavier_normal", options=options)
        self.q2 = build_network(architecture, num_tasks, obs_dim + act_dim, hidden_sizes, 1,
                                init="xavier_normal", options=options)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2), each (T, B), for obs (T, B, obs_dim) and action (T, B, act_dim)."""
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def q1_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone, (T, B); the original Q-switch scores with it (reference §3.5)."""
        return self.q1(torch.cat([obs, action], dim=-1)).squeeze(-1)


def taus_by_prefix(module: nn.Module, tau: float, rates: dict[str, float]) -> list[float]:
    """Polyak coefficient of every parameter of ``module``, in ``parameters()`` order: the rate of the
    first prefix of ``rates`` (in insertion order) that the parameter's name starts with, else ``tau``.

    Used by critics whose parts follow different target rates (mtrl's CARE and SM arrangements:
    task encoder 1, state encoder ``encoder_tau``, Q trunks ``tau``; ``SAC`` reads it through
    ``polyak_taus``)."""
    def rate(name: str) -> float:
        return next((value for prefix, value in rates.items() if name.startswith(prefix)), tau)
    return [rate(name) for name, _ in module.named_parameters()]

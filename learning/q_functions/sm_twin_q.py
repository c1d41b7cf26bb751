"""mtrl's Soft Modularization critic (``--sm_variant mtrl`` on both networks): Q1 and Q2 read one state
encoder and the task encoder, owned here and read detached by the actor.

As mtrl's SM run (JosselinSomervilleRoberts/PTSL README lines 173-189): the feed-forward state encoder
is the critic's (``critic.encoder``), tied to the actor's and detached in the actor loss (``encoder.py``
lines 294-297, ``sac.py`` lines 398-405); the task encoder is the agent's, trained by the critic loss
only (``metaworld_multitask.yaml`` line 26, ``sac.py`` lines 470-495). Each Q head projects [F(s), a]
and runs its own soft-modularised MLP (``critic.py`` lines 74-78, 275-285). Target: the Q heads at the
critic tau, the state encoder at ``encoder_tau`` (0.05, ``sac.py`` lines 631-640), the task encoder
the online one (tau 1, as ``care_twin_q.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks import build_network
from learning.networks.soft_modular_mtrl import MTRLSMShared
from learning.q_functions.twin_q import taus_by_prefix


class SMTwinQFunction(nn.Module):
    """Twin critic of mtrl's SM arrangement; the same interface as ``TwinQFunction``.

    Args:
        architecture: ``soft_modular``.
        num_tasks, obs_dim, act_dim, hidden_sizes: as ``TwinQFunction``.
        options: ``shared`` (:class:`MTRLSMShared`, owned here), ``encoder_tau`` and the SM options.

    Raises:
        ValueError: another architecture or variant.
    """

    def __init__(self, architecture: str, num_tasks: int, obs_dim: int, act_dim: int,
                 hidden_sizes: tuple[int, ...], options: dict):
        super().__init__()
        options = dict(options)
        if architecture != "soft_modular" or options.get("variant") != "mtrl":
            raise ValueError("SMTwinQFunction is mtrl's Soft Modularization critic (soft_modular, variant mtrl)")
        self.shared, self.encoder_tau = options.pop("shared"), options.pop("encoder_tau", 0.05)
        options.pop("detach_shared", None)
        heads = dict(options, state_dim=obs_dim, shared=self.shared)
        self.q1, self.q2 = (build_network("soft_modular", num_tasks, obs_dim + act_dim, hidden_sizes, 1,
                                          init="xavier_uniform", options=heads) for _ in range(2))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2), each (T, B), for obs (T, B, obs_dim) and action (T, B, act_dim)."""
        x = torch.cat([obs, action], dim=-1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def q1_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone, (T, B)."""
        return self.q1(torch.cat([obs, action], dim=-1)).squeeze(-1)

    def pcgrad_groups(self) -> list[list[nn.Parameter]]:
        """One PCGrad group: the shared encoders feed both Q heads."""
        return [list(self.parameters())]

    def polyak_taus(self, tau: float) -> list[float]:
        """Per parameter (``parameters()`` order): 1 for the task encoder, ``encoder_tau`` for the state
        encoder, ``tau`` for the Q heads."""
        return taus_by_prefix(self, tau, {"shared.task_": 1.0, "shared.encoder.": self.encoder_tau})


def share_sm_parts(num_tasks: int, obs_dim: int, policy_options: dict, q_options: dict, encoder_tau: float,
                   device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Options of mtrl-arranged SM actor and critic: one :class:`MTRLSMShared` owned by the critic and
    read detached by the actor."""
    shared = MTRLSMShared(num_tasks, obs_dim).to(device)
    return (dict(policy_options, shared=shared, detach_shared=True),
            dict(q_options, shared=shared, encoder_tau=encoder_tau))

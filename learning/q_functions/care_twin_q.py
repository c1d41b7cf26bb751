"""mtrl's CARE critic (``--care_arrangement mtrl``): one CARE encoder on the state feeds two Q trunks.

As mtrl's ``Critic`` (JosselinSomervilleRoberts/PTSL ``mtrl/agent/components/critic.py`` lines
496-530; mtrl's layout): the encoder (the shared task encoder g and experts of
:class:`~learning.networks.care.CAREShared`, plus the critic's own attention f) runs on the state
only; the action is concatenated after encoding, and Q1 and Q2 are two trunks on [z, c, a]:

    [z_tb, c_t] = CAREEncoder(s_tb)               (T, B, Z + C), computed once for Q1 and Q2
    Q_k,t(s, a) = trunk_k([z_tb, c_t, a_tb])      care: a ReLU MLP; care_ptsl: a PTSL network

The critic owns the shared parts, so the critic's loss trains them (mtrl trains the task encoder
with the critic loss only, ``losses_to_train``, ``config/agent/components/metaworld_multitask.yaml``
line 26). Target network (mtrl ``sac.py`` lines 631-640): Q1/Q2 trunks soft-updated with the critic
tau, the encoder (experts and attention) with ``encoder_tau`` (0.05 in mtrl, ``state_sac.yaml``
line 24); the task encoder g has no target copy in mtrl (the target critic reads the online task
encoding, ``sac.py`` lines 307-309), which a copy updated with tau 1 reproduces exactly.
"""

from __future__ import annotations

import torch
from torch import nn

from learning.networks.care import CAREEncoder, CAREShared
from learning.networks.ptsl import PTSLMLP
from learning.networks.shared import SharedMLP
from learning.q_functions.twin_q import TwinQFunction, taus_by_prefix

CARE_TRUNKS = ("care", "care_ptsl")
PTSL_OPTIONS = ("pal_dim", "shared_projection", "residual_mode")


class CARETwinQFunction(nn.Module):
    """Twin critic of mtrl's CARE arrangement; the same interface as ``TwinQFunction``.

    Args:
        architecture: ``care`` (ReLU MLP trunks) or ``care_ptsl`` (PTSL trunks).
        num_tasks: T.
        obs_dim: state size (the experts' input).
        act_dim: action size (appended after encoding).
        hidden_sizes: trunk widths.
        options: ``shared`` (the CARE parts shared with the actor, owned here), ``encoder_tau``
            (Polyak coefficient of the target encoder, ``--encoder_tau``; 0.05), CARE's attention
            options and PTSL's options.

    Raises:
        ValueError: unknown ``architecture``.
    """

    def __init__(self, architecture: str, num_tasks: int, obs_dim: int, act_dim: int,
                 hidden_sizes: tuple[int, ...], options: dict):
        super().__init__()
        if architecture not in CARE_TRUNKS:
            raise ValueError(f"architecture {architecture!r}; allowed: {', '.join(CARE_TRUNKS)}")
        options = dict(options)
        shared, self.encoder_tau = options.pop("shared"), options.pop("encoder_tau", 0.05)
        ptsl = {k: options.pop(k) for k in PTSL_OPTIONS if k in options}
        init = "xavier_uniform"  # mtrl's weight_init for every layer (mtrl/agent/utils.py lines 67-106)
        self.encoder = CAREEncoder(num_tasks, obs_dim, init, shared=shared, **options)
        width = self.encoder.out_dim + act_dim
        if architecture == "care":
            self.q1, self.q2 = (SharedMLP(num_tasks, width, hidden_sizes, 1, init) for _ in range(2))
        else:
            self.q1, self.q2 = (PTSLMLP(num_tasks, width, hidden_sizes, 1, init, **ptsl) for _ in range(2))

    def _input(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        enc = self.encoder(obs)
        return torch.cat([enc, action.expand(*enc.shape[:2], action.shape[-1])], dim=-1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2), each (T, B), for obs (T or 1, B, obs_dim) and action (T or 1, B, act_dim)."""
        x = self._input(obs, action)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)

    def q1_value(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q1 alone, (T, B)."""
        return self.q1(self._input(obs, action)).squeeze(-1)

    def pcgrad_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups for PCGrad: the whole critic (the encoder feeds both Q heads)."""
        return [list(self.parameters())]

    def polyak_taus(self, tau: float) -> list[float]:
        """Polyak coefficient of every parameter, in ``parameters()`` order: 1 for the task encoder
        (the target reads the online task encoding), ``encoder_tau`` for the experts and the
        attention, ``tau`` for the Q trunks."""
        return taus_by_prefix(self, tau, {"encoder.shared.context.": 1.0, "encoder.": self.encoder_tau})


def share_care_parts(num_tasks: int, obs_dim: int, policy_options: dict, q_options: dict,
                     encoder_tau: float, device: torch.device | str = "cpu") -> tuple[dict, dict]:
    """Options of an mtrl-arranged CARE actor and critic: one :class:`CAREShared` (task encoder and
    experts on the state) owned by the critic and read detached by the actor; the critic's target
    encoder follows ``encoder_tau``."""
    shared = CAREShared(num_tasks, obs_dim, "xavier_uniform",
                        num_experts=q_options.get("num_experts", 4)).to(device)
    return (dict(policy_options, shared=shared, detach_shared=True),
            dict(q_options, shared=shared, encoder_tau=encoder_tau))


def make_twin_q(architecture: str, num_tasks: int, obs_dim: int, act_dim: int,
                hidden_sizes: tuple[int, ...], options: dict | None = None) -> nn.Module:
    """The twin critic for ``options``: mtrl's CARE (SM) critic when they carry shared CARE (SM) parts
    (:func:`share_care_parts`, ``sm_twin_q.share_sm_parts``), else a ``TwinQFunction`` (every network
    owning its parts)."""
    from learning.q_functions.sm_twin_q import SMTwinQFunction
    if options and "shared" in options:
        kind = SMTwinQFunction if architecture == "soft_modular" else CARETwinQFunction
        return kind(architecture, num_tasks, obs_dim, act_dim, hidden_sizes, options)
    return TwinQFunction(architecture, num_tasks, obs_dim, act_dim, hidden_sizes, options)

"""Fixed-probability mixtures of policies: the QMP-Uniform and QMP-Domain ablations
(paper section 5.3.2, reference §3.9).

Every ``sampling_freq`` steps of an episode, task i draws the acting policy
j ~ Categorical(mixture_probs[i]) and then acts with pi_j.
"""

from __future__ import annotations

import torch

from learning.policies.behaviour import SwitchState, all_policy_candidates, gather_choice
from learning.policies.tanh_gaussian import TanhGaussianPolicy


class MixtureOfPolicies:
    """Behaviour policy choosing the acting policy from a fixed (T, T) row-stochastic matrix.

    Args:
        policy: T-task policy.
        mixture_probs: (T, T) tensor; row i is task i's distribution over policies.
        sampling_freq: re-sample the acting policy every this many steps of an episode.

    Raises:
        ValueError: if ``mixture_probs`` is not (T, T), non-negative with rows summing to 1.
    """

    def __init__(self, policy: TanhGaussianPolicy, mixture_probs: torch.Tensor,
                 sampling_freq: int = 1):
        t = policy.num_tasks
        probs = torch.as_tensor(mixture_probs, dtype=torch.float32)
        if probs.shape != (t, t) or (probs < 0).any() or not torch.allclose(
            probs.sum(1), torch.ones(t), atol=1e-4
        ):
            raise ValueError(
                f"mixture probabilities must be a ({t}, {t}) non-negative matrix whose rows "
                f"sum to 1; got shape {tuple(probs.shape)}"
            )
        self.policy, self.mixture_probs, self.sampling_freq = policy, probs, sampling_freq
        self._rows: tuple | None = None  # (probs, E, device, (T * E, T) rows), see _row_probs

    def _row_probs(self, e: int, device: torch.device) -> torch.Tensor:
        """Row i of ``mixture_probs`` repeated for each of task i's E envs: (T * E, T), cached."""
        cached = self._rows
        if cached is None or cached[0] is not self.mixture_probs or cached[1:3] != (e, device):
            t = self.mixture_probs.shape[0]
            rows = self.mixture_probs.to(device)[:, None, :].expand(t, e, t).reshape(t * e, t)
            cached = self._rows = (self.mixture_probs, e, device, rows)
        return cached[3]

    @torch.no_grad()
    def act(self, obs: torch.Tensor, state: SwitchState, deterministic: bool = False):
        """Returns (actions (T, E, A), chosen policy (T, E)); updates ``state`` in place."""
        t, e, _ = obs.shape
        samples, means = all_policy_candidates(self.policy, obs)
        due = state.since_reset % self.sampling_freq == 0
        if due.any():
            new = torch.multinomial(self._row_probs(e, obs.device), 1).reshape(t, e)
            state.choice = torch.where(due, new, state.choice)
        state.since_reset += 1
        return gather_choice(means if deterministic else samples, state.choice), state.choice.clone()

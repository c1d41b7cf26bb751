"""Behaviour policies: what acts in the envs while task t's learner collects data.

Every behaviour policy maps observations of all tasks, (T, E, obs_dim), to actions
(T, E, act_dim) and the index of the policy that produced each action, (T, E). Switching
state (current choice, steps since the last re-evaluation) lives in a :class:`SwitchState`
owned by the caller, so the training sampler and the evaluator never share counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from learning.policies.tanh_gaussian import TanhGaussianPolicy


@dataclass
class SwitchState:
    """Per-env switching state.

    Attributes:
        choice: (T, E) int64, index of the policy currently acting for each env.
        since_reset: (T, E) int64, steps taken since the episode started.
    """

    choice: torch.Tensor
    since_reset: torch.Tensor

    @classmethod
    def initial(cls, num_tasks: int, envs_per_task: int, device: torch.device) -> "SwitchState":
        own = torch.arange(num_tasks, device=device)[:, None].expand(num_tasks, envs_per_task)
        return cls(own.clone(), torch.zeros(num_tasks, envs_per_task, dtype=torch.long,
                                            device=device))

    def episode_started(self, mask: torch.Tensor) -> None:
        """Reset the step counters of envs (T, E) whose episode just restarted."""
        self.since_reset[mask] = 0


def all_policy_candidates(
    policy: TanhGaussianPolicy, obs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every task policy j acting on every task i's states in one batched call (DESIGN §4).

    Args:
        policy: T-task policy.
        obs: (T_task, E, obs_dim).

    Returns:
        (samples, means): tanh-Gaussian samples and squashed means tanh(mu), each
        (T_policy, T_task, E, act_dim).
    """
    t, e, _ = obs.shape
    action, mean = policy_sample(policy, obs.reshape(1, t * e, -1))
    shape = (policy.num_tasks, t, e, policy.act_dim)
    return action.reshape(shape), torch.tanh(mean).reshape(shape)


def policy_sample(policy: TanhGaussianPolicy, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sampled action, pre-tanh mean) of ``policy`` on obs; skips the log-probability, which
    acting never reads (same random draw and values as ``policy(obs)``)."""
    sample = getattr(policy, "sample", None)
    if sample is not None:
        return sample(obs)
    out = policy(obs)
    return out.action, out.mean


_ARANGE: dict[tuple[int, torch.device], torch.Tensor] = {}


def _arange(n: int, device: torch.device) -> torch.Tensor:
    """A cached ``torch.arange(n)`` (read-only; acting builds it once per size and device)."""
    key = (n, device)
    out = _ARANGE.get(key)
    if out is None:
        out = _ARANGE[key] = torch.arange(n, device=device)
    return out


def gather_choice(candidates: torch.Tensor, choice: torch.Tensor) -> torch.Tensor:
    """Pick candidates[choice[i, e], i, e]: (T_policy, T_task, E, A), (T_task, E) -> (T_task, E, A)."""
    t_pol, t_task, e, a = candidates.shape
    flat = candidates.reshape(t_pol, t_task * e, a)
    picked = flat[choice.reshape(-1), _arange(t_task * e, candidates.device)]
    return picked.reshape(t_task, e, a)


class OwnPolicy:
    """Each task acts with its own policy (Separated, MTSAC, and QMP's evaluation mode "p")."""

    def __init__(self, policy: TanhGaussianPolicy):
        self.policy = policy

    @torch.no_grad()
    def act(self, obs: torch.Tensor, state: SwitchState, deterministic: bool = False):
        """Returns (actions (T, E, A), chosen policy (T, E)) for obs (T, E, obs_dim)."""
        if deterministic:
            action = self.policy.deterministic_action(obs)
        else:
            action = policy_sample(self.policy, obs)[0]
        state.since_reset += 1
        return action, state.choice.clone()

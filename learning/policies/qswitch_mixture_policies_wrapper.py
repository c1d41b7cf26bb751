"""The Q-switch mixture of policies, QMP's behaviour policy (paper section 4, reference §3.5).

For task i and state s, every task policy j proposes an action; task i's critic scores the
T candidates and the best-scored policy's *sampled* action is executed. The choice is
re-evaluated every ``sampling_freq`` steps of an episode (``--policy_sampling_freq``); in
between, the chosen policy samples fresh actions. The whole switch is two batched calls
for all tasks: one policy call on (1, T*E, obs) giving (T_policy, T_task, E, A) candidates
and one critic call on (T_task, T_policy*E, obs+A).
"""

from __future__ import annotations

import torch

from learning.policies.behaviour import SwitchState, all_policy_candidates, gather_choice
from learning.policies.inference import inference_forward
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction

QSWITCH_SCORES = ("q1-mean", "min-q-sample")


def qswitch_scores(
    qf: TwinQFunction, obs: torch.Tensor, candidates: torch.Tensor, score: str
) -> torch.Tensor:
    """Score every candidate of every task with that task's critic.

    Args:
        qf: T-task twin critic.
        obs: (T_task, E, obs_dim).
        candidates: (T_policy, T_task, E, A) actions to score.
        score: ``q1-mean``: Q1_i (the original; candidates should be the squashed means);
            ``min-q-sample``: min(Q1_i, Q2_i) (the paper's text; candidates are samples).

    Returns:
        (T_task, T_policy, E) scores.
    """
    t_pol, t_task, e, a = candidates.shape
    if type(qf) is TwinQFunction and score in QSWITCH_SCORES:
        # The critic input (T_task, T_policy * E, obs + A) in one copy from views (no permute,
        # expand and cat chain), then the same critic layers on the same values.
        x = torch.cat((obs[:, None].expand(t_task, t_pol, e, obs.shape[-1]),
                       candidates.transpose(0, 1)), dim=-1).view(t_task, t_pol * e, -1)
        q1 = inference_forward(qf.q1, x)
        if score == "q1-mean":
            return q1.view(t_task, t_pol, e)
        return torch.minimum(q1, inference_forward(qf.q2, x)).view(t_task, t_pol, e)
    acts = candidates.permute(1, 0, 2, 3).reshape(t_task, t_pol * e, a)
    states = obs[:, None].expand(t_task, t_pol, e, obs.shape[-1]).reshape(t_task, t_pol * e, -1)
    if score == "q1-mean":
        q = qf.q1_value(states, acts)
    elif score == "min-q-sample":
        q = torch.minimum(*qf(states, acts))
    else:
        raise ValueError(f"--qswitch_score={score!r}; allowed: {', '.join(QSWITCH_SCORES)}")
    return q.reshape(t_task, t_pol, e)


class QSwitchMixturePolicy:
    """Behaviour policy of QMP: act with argmax_j score_i(s, a_j) (reference §3.5).

    Args:
        policy: T-task policy (separate or multihead; one policy per task).
        qf: the live (not target) T-task twin critic.
        sampling_freq: re-evaluate the switch every this many env steps of an episode.
        score: see :func:`qswitch_scores`. Ties go to the lowest policy index.
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy,
        qf: TwinQFunction,
        sampling_freq: int = 1,
        score: str = "q1-mean",
    ):
        if score not in QSWITCH_SCORES:
            raise ValueError(f"--qswitch_score={score!r}; allowed: {', '.join(QSWITCH_SCORES)}")
        self.policy, self.qf, self.sampling_freq, self.score = policy, qf, sampling_freq, score

    @torch.no_grad()
    def choose(self, obs: torch.Tensor, samples: torch.Tensor, means: torch.Tensor,
               deterministic: bool) -> torch.Tensor:
        """argmax over policies of the configured score: (T_task, E) int64."""
        use_means = deterministic or self.score == "q1-mean"
        scores = qswitch_scores(self.qf, obs, means if use_means else samples, self.score)
        return scores.argmax(dim=1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, state: SwitchState, deterministic: bool = False):
        """Returns (actions (T, E, A), chosen policy (T, E)); updates ``state`` in place.

        Deterministic mode (evaluation) executes tanh(mean) of the chosen policy, as the
        original's deterministic evaluation does (reference §3.5 step 5).
        """
        samples, means = all_policy_candidates(self.policy, obs)
        if self.sampling_freq == 1:  # every step is due: no mask, no host sync
            state.choice = self.choose(obs, samples, means, deterministic)
        else:
            due = state.since_reset % self.sampling_freq == 0
            if due.any():
                new = self.choose(obs, samples, means, deterministic)
                state.choice = torch.where(due, new, state.choice)
        state.since_reset += 1
        action = gather_choice(means if deterministic else samples, state.choice)
        return action, state.choice.clone()

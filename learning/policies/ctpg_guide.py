"""CTPG's behaviour policy: a learned guide picks which task's control policy acts for the next
K steps (He et al., NeurIPS 2024; anchors §1.5-§1.7).

Every ``guide_step`` (K) steps of an episode, for every task not blocked by the guide-block
gate, the guide samples j ~ pi^g_i(.|s) restricted by the policy-filter gate; pi_j then acts
with fresh sampled actions until the next decision. A blocked task, or one whose candidates are
all filtered out, acts with its own policy. All tasks and envs are decided in a few batched
calls (guide, comparable critic, M control samples, all T policies' candidates).

:func:`build_guide` builds the guide learner with the release's input: the observation with the
task one-hot appended (:class:`TaskOneHotInput`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from learning.algorithms.ctpg import (
    CTPGGuide,
    GuideCritic,
    block_mask,
    control_value,
    filter_mask,
    success_block_mask,
)
from learning.networks import build_network
from learning.policies.behaviour import SwitchState, all_policy_candidates, gather_choice
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction

BLOCK_MODES = ("alpha", "success")


class TaskOneHotInput(nn.Module):
    """Feeds ``[s, one_hot(i)]`` to a task-batched network: row i of the task axis gets task i's
    one-hot appended to its observation (the release's guide input, ``should_use_task_onehot:
    True`` in DarkDawn233/CTPG ``config/agent/components/guide_multitask.yaml`` line 6).

    Shapes: obs (T, B, obs_dim) -> ``net`` applied to (T, B, obs_dim + T); whatever ``net`` returns
    (logits (T, B, T), or the critic's pair).

    Raises:
        ValueError: the task axis of ``obs`` is not T.
    """

    def __init__(self, net: nn.Module, num_tasks: int):
        super().__init__()
        self.net, self.num_tasks = net, num_tasks
        self.register_buffer("eye", torch.eye(num_tasks), persistent=False)

    def forward(self, obs: torch.Tensor):
        t, b = obs.shape[0], obs.shape[1]
        if t != self.num_tasks:
            raise ValueError(f"guide input has {t} tasks on its first axis, expected {self.num_tasks}")
        one_hot = self.eye.to(obs.dtype)[:, None, :].expand(t, b, t)
        return self.net(torch.cat([obs, one_hot], dim=-1))


def build_guide(architecture: str, num_tasks: int, obs_dim: int, hidden_sizes: tuple[int, ...],
                task_onehot: bool = True, **kwargs) -> CTPGGuide:
    """The guide learner (:class:`CTPGGuide`): actor, twin guide critic and comparable critic, each
    a ``architecture`` network (the release: multi-head) over T candidates.

    Args:
        architecture: network of the guide parts (``multihead`` in the release).
        num_tasks: T (also the number of candidates).
        obs_dim: network observation size.
        hidden_sizes: hidden widths (the release: the benchmark's network, 400 x 2 / 400 x 5).
        task_onehot: wrap every part in :class:`TaskOneHotInput` (the release; anchors §1.3);
            False: the trunk sees the observation alone.
        **kwargs: the :class:`CTPGGuide` options (lr, discount, tau, reward_scale, ...).
    """
    in_dim = obs_dim + num_tasks if task_onehot else obs_dim

    def wrap(net: nn.Module) -> nn.Module:
        return TaskOneHotInput(net, num_tasks) if task_onehot else net

    actor = wrap(build_network(architecture, num_tasks, in_dim, hidden_sizes, num_tasks))
    critic = wrap(GuideCritic(architecture, num_tasks, in_dim, hidden_sizes))
    comparable = wrap(GuideCritic(architecture, num_tasks, in_dim, hidden_sizes))
    return CTPGGuide(actor, critic, comparable, num_tasks, **kwargs)


def masked_guide_choice(logits: torch.Tensor, allowed: torch.Tensor, deterministic: bool,
                        mask_logits: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose a candidate per (task, env) under the filter mask (anchors §1.6).

    ``mask_logits=True`` (the paper): masked candidates get logit -inf before the softmax, so
    they are never chosen. ``mask_logits=False`` (the released code): the choice uses the
    unmasked logits; only the all-masked fallback acts. Either way a row with no allowed
    candidate falls back to the task's own policy i. Sampling is Gumbel-max (training) or the
    argmax (deterministic).

    Shapes: logits, allowed (T, E, T) -> (choice (T, E) int64, any_allowed (T, E) bool).
    """
    t = logits.shape[0]
    any_allowed = allowed.any(-1)
    if mask_logits:
        logits = logits.masked_fill(~allowed, float("-inf"))
        logits = torch.where(any_allowed[..., None], logits, torch.zeros_like(logits))
    if not deterministic:
        u = torch.rand_like(logits).clamp(min=torch.finfo(logits.dtype).tiny)
        logits = logits - torch.log(-torch.log(u))
    own = torch.arange(t, device=logits.device)[:, None].expand_as(any_allowed)
    return torch.where(any_allowed, logits.argmax(-1), own), any_allowed


@dataclass
class GuideEnvState:
    """Per-env guide state kept beside the caller's :class:`SwitchState` (attribute ``guide``).

    Attributes:
        blocked: (T, E) bool, the block flag latched at the env's episode start (anchors §1.7).
        guided: (T, E) bool, the acting policy came from a guide decision (not a fallback).
    """

    blocked: torch.Tensor
    guided: torch.Tensor


class CTPGBehaviour:
    """The CTPG behaviour policy; implements ``act(obs, state, deterministic)``.

    Args:
        policy: T-task control policy (separate or multihead).
        qf: live T-task control twin critic (the filter gate's V_i).
        guide: the :class:`CTPGGuide` (actor logits, comparable scores).
        control_log_alpha: (T,) or (1,) live control log temperatures (e.g. the SAC's parameter).
        guide_step: K, steps between guide decisions (anchors §1.5; 10).
        filter_gate: use the policy-filter gate (anchors §1.6).
        block_gate: use the guide-block gate (anchors §1.7).
        block_mode: ``alpha`` (log alpha_i > mean) or ``success`` (eval success > 0.8).
        mask_logits: filter before the softmax (paper) or only fall back when all are masked
            (released code); see :func:`masked_guide_choice`.
        value_samples: M actions for V_i(s) (5).
        filter_start: the filter is active once :meth:`set_step` reported at least this many
            steps (``no_compare_step = 10000`` in the original).

    Raises:
        ValueError: ``guide_step < 1`` or an unknown ``block_mode``.
    """

    def __init__(self, policy: TanhGaussianPolicy, qf: TwinQFunction, guide: CTPGGuide,
                 control_log_alpha: torch.Tensor, guide_step: int = 10, filter_gate: bool = True,
                 block_gate: bool = True, block_mode: str = "alpha", mask_logits: bool = True,
                 value_samples: int = 5, filter_start: int = 10000):
        if guide_step < 1:
            raise ValueError(f"--guide_step={guide_step}; must be >= 1")
        if block_mode not in BLOCK_MODES:
            raise ValueError(f"--guide_block_mode={block_mode!r}; allowed: {', '.join(BLOCK_MODES)}")
        self.policy, self.qf, self.guide, self.control_log_alpha = policy, qf, guide, control_log_alpha
        self.guide_step, self.filter_gate, self.block_gate = guide_step, filter_gate, block_gate
        self.block_mode, self.mask_logits, self.value_samples = block_mode, mask_logits, value_samples
        self.filter_start, self.step = filter_start, 0
        t = policy.num_tasks
        device = next(policy.parameters()).device
        self.pending_block = torch.zeros(t, dtype=torch.bool, device=device)
        self.last_decision: torch.Tensor | None = None  # (T, E) bool, segment starts this step
        self.last_guide_action: torch.Tensor | None = None  # (T, E) int64, policy chosen there
        self.reset_stats()

    # ---------------------------------------------------------------- gates set by the trainer
    def set_blocked(self, mask: torch.Tensor) -> None:
        """Tasks (T,) bool to block; each env latches it at its next episode start."""
        self.pending_block = mask.to(self.pending_block.device, torch.bool).clone()

    def refresh_block(self, log_alpha: torch.Tensor | None = None,
                      success: torch.Tensor | None = None) -> torch.Tensor:
        """Recompute the block flags by ``block_mode`` (call at every evaluation); returns (T,).

        Raises:
            ValueError: the input the mode needs is missing.
        """
        source = log_alpha if self.block_mode == "alpha" else success
        if source is None:
            raise ValueError(f"block_mode={self.block_mode!r} needs "
                             f"{'log_alpha' if self.block_mode == 'alpha' else 'success'}")
        mask = block_mask(source.detach().expand(self.pending_block.shape[0])) \
            if self.block_mode == "alpha" else success_block_mask(source)
        self.set_blocked(mask)
        return mask

    def set_step(self, step: int) -> None:
        """Training progress (env steps per task) that switches the filter gate on."""
        self.step = int(step)

    @property
    def filter_active(self) -> bool:
        return self.filter_gate and self.step >= self.filter_start

    # ---------------------------------------------------------------- acting
    @torch.no_grad()
    def decide(self, obs: torch.Tensor, deterministic: bool) -> tuple[torch.Tensor, ...]:
        """Guide choice for every (task, env), ignoring blocking.

        Returns:
            (choice (T, E) int64, guided (T, E) bool = some candidate was allowed,
            masked fraction of candidates (T, E)).
        """
        logits = self.guide.logits(obs)
        allowed = torch.ones_like(logits, dtype=torch.bool)
        if self.filter_active:
            value = control_value(self.policy, self.qf, obs, self.control_log_alpha,
                                  self.value_samples)
            allowed = filter_mask(self.guide.comparable_scores(obs), value)
        choice, guided = masked_guide_choice(logits, allowed, deterministic, self.mask_logits)
        return choice, guided, 1.0 - allowed.float().mean(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, state: SwitchState, deterministic: bool = False):
        """Returns (actions (T, E, A), chosen policy (T, E)); updates ``state`` in place.

        Also sets :attr:`last_decision` and :attr:`last_guide_action` for the segment recorder
        and, when not deterministic, the selection counters.
        """
        t, e = obs.shape[:2]
        genv = self._env_state(state, t, e)
        start = state.since_reset == 0
        genv.blocked = torch.where(start, self.pending_block[:, None].expand(t, e), genv.blocked)
        due = state.since_reset % self.guide_step == 0
        if due.any():
            choice, guided, masked = self.decide(obs, deterministic)
            if self.block_gate:
                guided = guided & ~genv.blocked
            own = torch.arange(t, device=obs.device)[:, None].expand(t, e)
            state.choice = torch.where(due, torch.where(guided, choice, own), state.choice)
            genv.guided = torch.where(due, guided, genv.guided)
            if not deterministic:
                self._count(due, state.choice, masked, genv.blocked & self.block_gate)
        state.since_reset += 1
        samples, means = all_policy_candidates(self.policy, obs)
        action = gather_choice(means if deterministic else samples, state.choice)
        self.last_decision, self.last_guide_action = due, state.choice.clone()
        if not deterministic:
            self._steps += e
            self._guided_steps += genv.guided.sum(1).cpu()
        return action, state.choice.clone()

    def _env_state(self, state: SwitchState, t: int, e: int) -> GuideEnvState:
        genv = getattr(state, "guide", None)
        if genv is None or genv.blocked.shape != (t, e):
            dev = state.since_reset.device
            genv = GuideEnvState(torch.zeros(t, e, dtype=torch.bool, device=dev),
                                 torch.zeros(t, e, dtype=torch.bool, device=dev))
            state.guide = genv
        return genv

    # ---------------------------------------------------------------- statistics
    def reset_stats(self) -> None:
        t = self.policy.num_tasks
        self._counts = torch.zeros(t, t, dtype=torch.long)
        self._masked_sum, self._blocked_decisions = torch.zeros(t), torch.zeros(t)
        self._unblocked_decisions = torch.zeros(t)
        self._steps, self._guided_steps = 0, torch.zeros(t)

    def _count(self, due, choice, masked, blocked) -> None:
        t = choice.shape[0]
        self._counts += (torch.nn.functional.one_hot(choice, t) * due[..., None]).sum(1).cpu()
        self._masked_sum += (masked * (due & ~blocked)).sum(1).cpu()
        self._blocked_decisions += (blocked & due).sum(1).cpu().float()
        self._unblocked_decisions += (~blocked & due).sum(1).cpu().float()

    def selection_stats(self, reset: bool = True) -> dict[str, float]:
        """Logging keys per task i: ``Train/LocalPolicy{i}/Guide{j}Prob`` (share of decisions
        that chose j, fallbacks counted as i), ``GuidedFraction`` (share of steps acted by a
        guide-chosen policy), ``FilterMaskedFraction`` (mean share of candidates masked per
        unblocked decision; 0 while the filter is off), ``BlockedDecisions`` (share of decisions blocked)."""
        decisions = self._counts.sum(1).clamp(min=1).float()
        out = {}
        for i in range(self._counts.shape[0]):  # logging only, off the hot path
            key = f"Train/LocalPolicy{i}"
            for j in range(self._counts.shape[1]):
                out[f"{key}/Guide{j}Prob"] = float(self._counts[i, j] / decisions[i])
            out[f"{key}/GuidedFraction"] = float(self._guided_steps[i] / max(self._steps, 1))
            out[f"{key}/FilterMaskedFraction"] = float(
                self._masked_sum[i] / self._unblocked_decisions[i].clamp(min=1))
            out[f"{key}/BlockedDecisions"] = float(self._blocked_decisions[i] / decisions[i])
        if reset:
            self.reset_stats()
        return out

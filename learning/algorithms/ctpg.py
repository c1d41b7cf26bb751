"""CTPG's guide learner: discrete SAC over the T task policies, with K-step targets, hindsight
relabelling and the two gates (He et al., NeurIPS 2024; anchors §1.2-§1.8).

For task i the guide pi^g_i(j|s) is a categorical over the T control policies; the chosen pi_j
acts for K env steps. Every network maps (T, B, obs_dim) -> (T, B, T): the task axis selects
task i's guide / critic, the last axis indexes the candidate policy j. Losses return a per-task
vector (T,) and (T,) statistics; :class:`CTPGGuide` reduces them over tasks and steps the
optimisers. The gates (:func:`filter_mask`, :func:`block_mask`) are used on the collection side
(learning/policies/ctpg_guide.py).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from learning.algorithms.optim import adam
from learning.algorithms.sac import batch_mean
from learning.networks import build_network
from learning.policies.tanh_gaussian import TanhGaussianPolicy, tanh_gaussian_log_prob
from learning.q_functions.twin_q import TwinQFunction
from learning.segment_buffer import SegmentBatch

Stats = dict[str, torch.Tensor]  # name -> (T,) detached statistic
ATANH_CLAMP = 1.0 - 1e-6  # stored actions are clamped into (-1, 1) before atanh (anchors §1.8)


class GuideCritic(nn.Module):
    """Twin guide critic Q^g_{k,i}(s, j), k in {1, 2}: (T, B, obs_dim) -> two (T, B, C) (anchors §1.3).

    C = ``num_candidates`` (default T, every task's policy).
    """

    def __init__(self, architecture: str, num_tasks: int, obs_dim: int, hidden_sizes: tuple[int, ...],
                 num_candidates: int | None = None):
        super().__init__()
        out = num_tasks if num_candidates is None else num_candidates
        self.q1 = build_network(architecture, num_tasks, obs_dim, hidden_sizes, out, init="xavier_normal")
        self.q2 = build_network(architecture, num_tasks, obs_dim, hidden_sizes, out, init="xavier_normal")

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q1(obs), self.q2(obs)


# ----------------------------------------------------------------------------- K-step targets
def discounted_segment_sum(values: torch.Tensor, valid: torch.Tensor, discount: float) -> torch.Tensor:
    """``sum_{k<K} valid_k gamma^k values_k`` over the last axis: (T, B, K) -> (T, B) (anchors §1.4)."""
    powers = discount ** torch.arange(values.shape[-1], device=values.device, dtype=values.dtype)
    return (values * valid * powers).sum(-1)


def guide_soft_value(logits: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor,
                     alpha: torch.Tensor | None) -> torch.Tensor:
    """``V(s) = sum_j pi^g(j|s) (min(Q1, Q2)(s, j) - alpha_i log pi^g(j|s))`` (anchors §1.4;
    discrete SAC, Christodoulou 2019, eq. 9). ``alpha=None`` drops the entropy term (the
    comparable critic's bootstrap, anchors §1.6).

    Shapes: logits, q1, q2 (T, B, T); alpha (T,) -> (T, B).
    """
    log_p = F.log_softmax(logits, dim=-1)
    inner = torch.minimum(q1, q2)
    if alpha is not None:
        inner = inner - alpha[:, None, None] * log_p
    return (log_p.exp() * inner).sum(-1)


def _twin_mse(critic, obs, j, y, weight) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-task weighted MSE of Q1(s, j) and Q2(s, j) to y; returns (loss1, loss2, q1(s, j))."""
    q1, q2 = critic(obs)
    q1_j, q2_j = (q.gather(-1, j[..., None]).squeeze(-1) for q in (q1, q2))
    return batch_mean((q1_j - y) ** 2, weight), batch_mean((q2_j - y) ** 2, weight), q1_j


def guide_critic_loss(batch: SegmentBatch, guide_action: torch.Tensor, critic: nn.Module,
                      target_critic: nn.Module, end_logits: torch.Tensor, alpha: torch.Tensor,
                      discount: float, reward_scale: float = 1.0) -> tuple[torch.Tensor, Stats]:
    """K-step soft Bellman error of the twin guide critic (anchors §1.4).

    ``y = scale * sum_{k<n} gamma^k r_{t+k} + gamma^n (1 - terminal) V(s_{t+n})`` with V from
    :func:`guide_soft_value` on the target critic and the current guide actor's logits at the
    end state (no gradient); n = valid steps (n = K unless the episode ended inside the segment;
    a truncated segment bootstraps from its final observation, a terminated one does not).
    ``loss_i = mean_B (Q1(s_t, j_t) - y)^2 + mean_B (Q2(s_t, j_t) - y)^2``, weighted means.
    Released code: DarkDawn233/CTPG ``mtrl/agent/guide_sac.py`` ``_get_guide_target_V`` and
    ``update_guide_critic`` (lines 490-627).

    Args:
        batch: (T, B, ...) segments.
        guide_action: (T, B) int64 j_t (stored or hindsight-relabelled).
        critic, target_critic: obs -> (Q1, Q2), each (T, B, T).
        end_logits: (T, B, T) guide actor logits at ``batch.end_obs`` (computed once per update
            and shared with :func:`comparable_critic_loss`; detached inside).
        alpha: (T,) guide temperatures (detached inside).

    Returns:
        (loss (T,), stats GuideQf1Loss, GuideQf2Loss, GuideQTarget, GuideQf1).
    """
    with torch.no_grad():
        ret = reward_scale * discounted_segment_sum(batch.rewards, batch.valid, discount)
        v = guide_soft_value(end_logits.detach(), *target_critic(batch.end_obs), alpha.detach())
        y = ret + discount ** batch.num_valid * (1.0 - batch.terminal) * v
    l1, l2, q1_j = _twin_mse(critic, batch.obs, guide_action, y, batch.weight)
    stats = {"GuideQf1Loss": l1, "GuideQf2Loss": l2, "GuideQTarget": batch_mean(y, batch.weight),
             "GuideQf1": batch_mean(q1_j, batch.weight)}
    return l1 + l2, {k: x.detach() for k, x in stats.items()}


def comparable_critic_loss(batch: SegmentBatch, guide_action: torch.Tensor, critic: nn.Module,
                           target_critic: nn.Module, end_logits: torch.Tensor,
                           control_log_prob: torch.Tensor, control_alpha: torch.Tensor,
                           discount: float, reward_scale: float = 1.0) -> tuple[torch.Tensor, Stats]:
    """K-step error of the comparable critic Q^c, on the control side's soft scale (anchors §1.6).

    ``y^c = sum_{k<n} gamma^k (scale r_{t+k} - alpha_i log pi_i(a~_k|s_{t+k}))
    + gamma^n (1 - terminal) sum_j pi^g(j|s_{t+n}) min(Qc1', Qc2')(s_{t+n}, j)``,
    a~_k ~ pi_i(.|s_{t+k}) fresh samples of task i's own control policy (see
    :func:`fresh_log_prob`); no guide-entropy term in the bootstrap. Loss as in
    :func:`guide_critic_loss`. Released code: ``mtrl/agent/guide_sac.py``
    ``_get_guide_comp_target_V`` and ``update_guide_critic_comp`` (lines 511-726); its index
    slip in the recursion (anchors §1.16.2) is not reproduced.

    Args:
        batch, guide_action, critic, target_critic, end_logits: as in :func:`guide_critic_loss`
            (critic and target are the comparable pair).
        control_log_prob: (T, B, K) log pi_i(a~_k | s_{t+k}) of the fresh samples (any value on
            invalid steps; masked).
        control_alpha: (T,) control temperatures (detached inside).

    Returns:
        (loss (T,), stats CompQf1Loss, CompQf2Loss, CompQTarget and CompQEntropyBonus, the part of
        the target from the control entropy bonus ``sum_k gamma^k (-alpha_i log pi_i(a~_k|s_{t+k}))``:
        it makes the target large while returns are near 0, as in the control critic's soft values).
    """
    with torch.no_grad():
        bonus = -control_alpha.detach()[:, None, None] * control_log_prob
        v = guide_soft_value(end_logits.detach(), *target_critic(batch.end_obs), None)
        y = (discounted_segment_sum(reward_scale * batch.rewards + bonus, batch.valid, discount)
             + discount ** batch.num_valid * (1.0 - batch.terminal) * v)
    l1, l2, _ = _twin_mse(critic, batch.obs, guide_action, y, batch.weight)
    stats = {"CompQf1Loss": l1, "CompQf2Loss": l2, "CompQTarget": batch_mean(y, batch.weight),
             "CompQEntropyBonus": batch_mean(discounted_segment_sum(bonus, batch.valid, discount),
                                             batch.weight)}
    return l1 + l2, {key: x.detach() for key, x in stats.items()}


def guide_actor_loss(obs: torch.Tensor, actor: nn.Module, critic: nn.Module, alpha: torch.Tensor,
                     weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, Stats]:
    """``loss_i = mean_B sum_j pi^g(j|s) (alpha_i log pi^g(j|s) - min(Q1, Q2)(s, j))``, the exact
    expectation over the categorical, critic detached (anchors §1.4; discrete SAC eq. 12).

    Args:
        obs: (T, B, obs_dim) segment start states; alpha: (T,) (detached inside).

    Returns:
        (loss (T,), entropy H(pi^g(.|s)) (T, B) for the temperature loss, stats with
        GuidePolicyLoss and GuideEntropy).
    """
    log_p = F.log_softmax(actor(obs), dim=-1)
    with torch.no_grad():
        q = torch.minimum(*critic(obs))
    p = log_p.exp()
    loss = batch_mean((p * (alpha.detach()[:, None, None] * log_p - q)).sum(-1), weight)
    entropy = -(p * log_p).sum(-1)
    stats = {"GuidePolicyLoss": loss.detach(), "GuideEntropy": batch_mean(entropy.detach(), weight)}
    return loss, entropy, stats


def guide_temperature_loss(log_alpha: torch.Tensor, entropy: torch.Tensor, target_entropy: float,
                           weight: torch.Tensor | None = None, form: str = "alpha") -> torch.Tensor:
    """Discrete-SAC temperature loss per task (anchors §1.4; Christodoulou 2019, eq. 11).

    ``form="alpha"`` (the released code, on mtrl): ``loss_i = alpha_i mean_B (H_i - H-bar)``;
    ``form="log_alpha"`` (p-christ's SAC_Discrete): ``loss_i = log alpha_i mean_B (H_i - H-bar)``.
    Both lower alpha while the entropy exceeds the target.

    Shapes: log_alpha (T,), entropy (T, B) (detached inside) -> (T,).

    Raises:
        ValueError: unknown ``form``.
    """
    if form not in ("alpha", "log_alpha"):
        raise ValueError(f"guide temperature form {form!r}; allowed: alpha, log_alpha")
    coef = log_alpha.exp() if form == "alpha" else log_alpha
    return coef * batch_mean(entropy.detach() - target_entropy, weight)


# ----------------------------------------------------------------------------- hindsight
HINDSIGHT_ROWS = 1 << 13  # (policy, state) rows per hindsight chunk: activations of a few MiB stay in
# cache and their buffers are reused (about 20 % faster per guide step than one 20k-row pass on one
# core, docs/benchmarks.md "CTPG: what the guide costs"), and memory stays bounded on MT50


def _network_params(policy: TanhGaussianPolicy, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log_std) of ``policy`` for acting-style calls without autograd (in-place ReLUs where
    the network allows, learning/policies/inference.py; the same values)."""
    acting = getattr(policy, "_acting_params", None)
    return acting(obs) if acting is not None else policy.distribution_params(obs)


@torch.no_grad()
def every_policy_params(states: torch.Tensor, policy: TanhGaussianPolicy,
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Every policy j's (mean, log_std) on the same N states: (N, obs_dim) -> two (T_policy, N, A).

    One batched call per chunk of ``HINDSIGHT_ROWS // T`` states (the release instead loops over
    the K steps of a segment, repeating the states N times; DarkDawn233/CTPG
    ``mtrl/agent/guide_sac.py`` lines 885-924).
    """
    rows = max(1, HINDSIGHT_ROWS // policy.num_tasks)
    parts = [_network_params(policy, states[None, n:n + rows]) for n in range(0, states.shape[0], rows)]
    if len(parts) == 1:
        return parts[0]
    return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)


def segment_log_likelihoods_from_params(batch: SegmentBatch, mean: torch.Tensor,
                                        log_std: torch.Tensor) -> torch.Tensor:
    """``L[j, i, b] = sum_{k valid} log pi_j(a_{t+k} | s_{t+k})`` from every policy's parameters
    (T_policy, T*B*K, A) on the flattened (T, B, K) states (anchors §1.8); stored actions are
    clamped to +-(1 - 1e-6) and mapped back by atanh. Returns (T_policy, T_task, B)."""
    t, b, k, _ = batch.states.shape
    u = torch.atanh(batch.actions.clamp(-ATANH_CLAMP, ATANH_CLAMP)).reshape(1, t * b * k, -1)
    log_p = tanh_gaussian_log_prob(u, mean, log_std).reshape(-1, t, b, k)
    return (log_p * batch.valid).sum(-1)


@torch.no_grad()
def segment_log_likelihoods(batch: SegmentBatch, policy: TanhGaussianPolicy) -> torch.Tensor:
    """``L[j, i, b] = sum_{k valid} log pi_j(a_{t+k} | s_{t+k})`` for every policy j (anchors §1.8):
    :func:`every_policy_params` on the (T*B*K) states, then
    :func:`segment_log_likelihoods_from_params`.

    Returns:
        (T_policy, T_task, B) log-likelihoods of each task's segments.
    """
    t, b, k, d = batch.states.shape
    mean, log_std = every_policy_params(batch.states.reshape(t * b * k, d), policy)
    return segment_log_likelihoods_from_params(batch, mean, log_std)


def _check_hindsight_policy(policy: TanhGaussianPolicy) -> None:
    if getattr(policy, "architecture", None) == "shared":
        raise ValueError("hindsight relabelling needs per-task policies (separate or multihead)")


def hindsight_relabel(batch: SegmentBatch, policy: TanhGaussianPolicy) -> torch.Tensor:
    """``j_t := argmax_j sum_k log pi_j(a_{t+k}|s_{t+k})``, (T, B) int64 (anchors §1.8).

    Raises:
        ValueError: for a ``shared`` policy, which gives every j the same likelihood (CTPG on a
            shared control network needs the task id swapped in the observation instead).
    """
    _check_hindsight_policy(policy)
    return segment_log_likelihoods(batch, policy).argmax(0)


def fresh_log_prob(mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log pi(a~|s) of one fresh reparameterised sample per row, as
    :meth:`TanhGaussianPolicy.forward` draws it (the same random numbers for the same shapes).

    Shapes: (T, N, A) -> (T, N).
    """
    u = mean + log_std.exp() * torch.randn_like(mean)
    return tanh_gaussian_log_prob(u, mean, log_std)


@torch.no_grad()
def control_side(batch: SegmentBatch, policy: TanhGaussianPolicy, hindsight: bool,
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """What the guide update needs from the control policy, in one pass over the segment states:
    the guide actions to train on (T, B) (hindsight-relabelled, or the stored ones) and
    log pi_i(a~_k | s_{t+k}) (T, B, K) of fresh samples of each task's own policy for the
    comparable target (anchors §1.6, §1.8).

    With hindsight, every policy is evaluated on every state once, and task i's own (mean,
    log_std) are read off that evaluation (its diagonal) instead of a second forward pass.

    Raises:
        ValueError: hindsight with a ``shared`` policy.
    """
    t, b, k, d = batch.states.shape
    if hindsight:
        _check_hindsight_policy(policy)
        mean, log_std = every_policy_params(batch.states.reshape(t * b * k, d), policy)
        j = segment_log_likelihoods_from_params(batch, mean, log_std).argmax(0)
        own = torch.arange(t, device=mean.device)
        mean, log_std = (x.reshape(-1, t, b * k, x.shape[-1])[own, own] for x in (mean, log_std))
    else:
        j = batch.guide_action
        mean, log_std = _network_params(policy, batch.states.reshape(t, b * k, d))
    return j, fresh_log_prob(mean, log_std).reshape(t, b, k)


# ----------------------------------------------------------------------------- gates
@torch.no_grad()
def control_value(policy: TanhGaussianPolicy, qf: TwinQFunction, obs: torch.Tensor,
                  log_alpha: torch.Tensor, num_samples: int = 5) -> torch.Tensor:
    """``V_i(s) = mean_m [mean(Q1, Q2)_i(s, a_m) - alpha_i log pi_i(a_m|s)]``, a_m ~ pi_i(.|s)
    (anchors §1.6, ``v_sample_time = 5``); one policy and one critic call on (T, M*E) states.

    Shapes: obs (T, E, obs_dim), log_alpha (T,) or (1,) -> (T, E).
    """
    t, e, d = obs.shape
    states = obs[:, None].expand(t, num_samples, e, d).reshape(t, num_samples * e, d)
    pi = policy(states)
    q1, q2 = qf(states, pi.action)
    alpha = log_alpha.exp().expand(t)
    soft_q = 0.5 * (q1 + q2) - alpha[:, None] * pi.log_prob
    return soft_q.reshape(t, num_samples, e).mean(1)


def filter_mask(qc: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Policy-filter gate: candidate j allowed for task i iff ``Q^c_i(s, j) >= V_i(s)`` (anchors §1.6).

    Shapes: qc (T, E, T) comparable scores mean(Qc1, Qc2), value (T, E) -> (T, E, T) bool.
    """
    return qc >= value[..., None]


def block_mask(log_alpha: torch.Tensor) -> torch.Tensor:
    """Guide-block gate, ``alpha`` mode: task i blocked iff ``log alpha_i > mean_k log alpha_k``
    (control temperatures; anchors §1.7). Shapes: (T,) -> (T,) bool."""
    return log_alpha > log_alpha.mean()


def success_block_mask(success: torch.Tensor, threshold: float = 0.8) -> torch.Tensor:
    """Guide-block gate, ``success`` mode: task i blocked iff its evaluation success rate
    exceeds ``threshold`` (anchors §1.7). Shapes: (T,) in [0, 1] -> (T,) bool."""
    return success > threshold


# ----------------------------------------------------------------------------- learner
class CTPGGuide(nn.Module):
    """The guide learner: guide actor, twin guide critic, comparable critic, their target
    copies, one guide temperature per task and the Adam optimisers (anchors §1.2-§1.4).

    One :meth:`update` is one guide gradient step (the original runs it every
    ``guide_update_step = 10`` env steps). Per-task losses are reduced over tasks (``sum``
    gives each task exactly its own gradient on per-task parameters; ``mean`` equals the
    original's mean over a batch of all tasks up to the grad-norm clip); grad norms are
    clipped per network (``grad_clip``, 0.1 in the original).

    Args:
        actor: obs (T, B, obs_dim) -> logits (T, B, T).
        critic, comparable_critic: obs -> (Q1, Q2), each (T, B, T); target copies are made here.
        num_tasks: T.
        lr: Adam learning rate of all guide parts (1e-4).
        discount: gamma per env step (0.99).
        tau: Polyak coefficient of both target critics (0.01).
        reward_scale: multiplies stored rewards (the control SAC's ``--reward_scale``).
        grad_clip: max grad norm per network per step (0.1); None disables clipping.
        init_alpha, max_alpha: initial guide temperature and its cap (1.0, 1.0).
        target_entropy: H-bar; default 0.98 ln T (anchors §1.3).
        temperature_form: see :func:`guide_temperature_loss`.
        task_reduction: ``sum`` or ``mean`` of per-task losses.

    Raises:
        ValueError: bad ``task_reduction`` / ``temperature_form`` or ``init_alpha > max_alpha``.
    """

    def __init__(self, actor: nn.Module, critic: nn.Module, comparable_critic: nn.Module,
                 num_tasks: int, *, lr: float = 1e-4, discount: float = 0.99, tau: float = 0.01,
                 reward_scale: float = 1.0, grad_clip: float | None = 0.1, init_alpha: float = 1.0,
                 max_alpha: float = 1.0, target_entropy: float | None = None,
                 temperature_form: str = "alpha", task_reduction: str = "sum"):
        super().__init__()
        if task_reduction not in ("sum", "mean"):
            raise ValueError(f"task_reduction={task_reduction!r}; allowed: sum, mean")
        if temperature_form not in ("alpha", "log_alpha"):
            raise ValueError(f"temperature_form={temperature_form!r}; allowed: alpha, log_alpha")
        if not 0.0 < init_alpha <= max_alpha:
            raise ValueError(f"need 0 < init_alpha ({init_alpha}) <= max_alpha ({max_alpha})")
        self.actor, self.critic, self.comparable_critic = actor, critic, comparable_critic
        self.target_critic = copy.deepcopy(critic).requires_grad_(False)
        self.target_comparable_critic = copy.deepcopy(comparable_critic).requires_grad_(False)
        self.num_tasks, self.discount, self.tau, self.reward_scale = num_tasks, discount, tau, reward_scale
        self.grad_clip, self.max_log_alpha = grad_clip, math.log(max_alpha)
        self.target_entropy = 0.98 * math.log(num_tasks) if target_entropy is None else target_entropy
        self.temperature_form, self.task_reduction = temperature_form, task_reduction
        device = next(actor.parameters()).device
        self.log_alpha = nn.Parameter(torch.full((num_tasks,), math.log(init_alpha), device=device))
        self.actor_optimizer = adam(actor.parameters(), lr=lr)
        self.critic_optimizer = adam(critic.parameters(), lr=lr)
        self.comparable_optimizer = adam(comparable_critic.parameters(), lr=lr)
        self.alpha_optimizer = adam([self.log_alpha], lr=lr)

    @classmethod
    def build(cls, architecture: str, num_tasks: int, obs_dim: int, hidden_sizes: tuple[int, ...],
              **kwargs) -> "CTPGGuide":
        """Networks of one architecture (the original: ``multihead``, anchors §1.3) plus the learner."""
        actor = build_network(architecture, num_tasks, obs_dim, hidden_sizes, num_tasks)
        return cls(actor, GuideCritic(architecture, num_tasks, obs_dim, hidden_sizes),
                   GuideCritic(architecture, num_tasks, obs_dim, hidden_sizes), num_tasks, **kwargs)

    def alpha(self) -> torch.Tensor:
        """(T,) guide temperatures exp(log alpha^g)."""
        return self.log_alpha.exp()

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Guide logits (T, E, T) for obs (T, E, obs_dim)."""
        return self.actor(obs)

    def comparable_scores(self, obs: torch.Tensor) -> torch.Tensor:
        """mean(Qc1, Qc2)(s, j), (T, E, T): the filter gate's candidate scores (anchors §1.6)."""
        qc1, qc2 = self.comparable_critic(obs)
        return 0.5 * (qc1 + qc2)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Name -> optimiser, for snapshots (``guide_actor``, ``guide_critic``, ...)."""
        return {"guide_actor": self.actor_optimizer, "guide_critic": self.critic_optimizer,
                "guide_comparable_critic": self.comparable_optimizer,
                "guide_alpha": self.alpha_optimizer}

    def _reduce(self, per_task: torch.Tensor) -> torch.Tensor:
        return per_task.sum() if self.task_reduction == "sum" else per_task.mean()

    def _step(self, optimizer: torch.optim.Optimizer, per_task: torch.Tensor, module: nn.Module) -> None:
        params = list(module.parameters())
        optimizer.zero_grad(set_to_none=True)
        self._reduce(per_task).backward(inputs=params)
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, self.grad_clip)
        optimizer.step()

    def update(self, batch: SegmentBatch, control_policy: TanhGaussianPolicy,
               control_log_alpha: torch.Tensor, hindsight: bool = True) -> Stats:
        """One guide step on (T, B) segments: critic, comparable critic, actor (seeing the new
        critic), temperature (capped at ``max_alpha``), Polyak; returns (T,) statistics. The
        order is the release's (``mtrl/agent/guide_sac.py`` ``update_guide``, lines 926-1020).

        The control policy is evaluated once (:func:`control_side`) and the guide actor once at
        the end states (shared by both critics' targets).

        Args:
            batch: segments from :meth:`SegmentBuffer.sample`.
            control_policy: the T-task control policy (hindsight and the comparable target).
            control_log_alpha: (T,) or (1,) control log temperatures.
            hindsight: relabel j_t by :func:`hindsight_relabel` (anchors §1.8).
        """
        j, control_log_prob = control_side(batch, control_policy, hindsight)
        alpha = self.alpha().detach()
        control_alpha = control_log_alpha.detach().exp().expand(self.num_tasks)
        with torch.no_grad():
            end_logits = self.actor(batch.end_obs)
        q_loss, stats = guide_critic_loss(batch, j, self.critic, self.target_critic, end_logits,
                                          alpha, self.discount, self.reward_scale)
        self._step(self.critic_optimizer, q_loss, self.critic)
        c_loss, c_stats = comparable_critic_loss(
            batch, j, self.comparable_critic, self.target_comparable_critic, end_logits,
            control_log_prob, control_alpha, self.discount, self.reward_scale)
        self._step(self.comparable_optimizer, c_loss, self.comparable_critic)
        pi_loss, entropy, pi_stats = guide_actor_loss(batch.obs, self.actor, self.critic, alpha,
                                                      batch.weight)
        self._step(self.actor_optimizer, pi_loss, self.actor)
        a_loss = guide_temperature_loss(self.log_alpha, entropy, self.target_entropy, batch.weight,
                                        self.temperature_form)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        self._reduce(a_loss).backward(inputs=[self.log_alpha])
        self.alpha_optimizer.step()
        with torch.no_grad():
            self.log_alpha.clamp_(max=self.max_log_alpha)
        self.polyak_update()
        relabelled = batch_mean((j != batch.guide_action).float(), batch.weight)
        return {**stats, **c_stats, **pi_stats, "GuideAlphaLoss": a_loss.detach(),
                "GuideAlpha": self.alpha().detach(), "HindsightRelabelled": relabelled}

    @torch.no_grad()
    def polyak_update(self) -> None:
        """target <- (1 - tau) target + tau online, for the guide and comparable critics."""
        for target, online in ((self.target_critic, self.critic),
                               (self.target_comparable_critic, self.comparable_critic)):
            torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), self.tau)

"""Multi-task soft actor-critic on task-batched networks (reference §3.1).

Each loss is a small function returning a per-task loss vector (T,) and statistics; the
update reduces the vector over tasks (``sum`` for separately parameterised learners, which
gives each task exactly its own gradient; ``mean`` for shared parameters, which equals the
original's mean over a batch holding every task's samples) and steps the optimisers in the
original's order: critics, then actor (seeing the updated critics), then temperature, then
Polyak averaging of the target critics.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from learning.algorithms import pcgrad
from learning.algorithms.optim import adam, clip_grad_norm
from learning.networks.paco import extreme_loss_tasks, mask_task_loss
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TransitionBatch

Stats = dict[str, torch.Tensor]  # name -> (T,) detached statistic


def batch_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Per-task mean over the batch axis, weighted when ``weight`` is given.

    ``mean_t = sum_b w_tb x_tb / sum_b w_tb`` (a row whose weights are all 0 gives 0).
    With 0/1 weights this equals the plain mean over the kept transitions.

    Shapes: x (T, B), weight (T, B) or None -> (T,).
    """
    if weight is None:
        return x.mean(1)
    return (weight * x).sum(1) / weight.sum(1).clamp(min=1e-12)


def critic_loss(
    batch: TransitionBatch,
    policy: TanhGaussianPolicy,
    qf: TwinQFunction,
    target_qf: TwinQFunction,
    alpha: torch.Tensor,
    discount: float,
    reward_scale: float,
) -> tuple[torch.Tensor, Stats]:
    """Soft Bellman error of both critics (reference §3.1 step 1; SAC, Haarnoja et al. 2018, eq. 5-7).

    ``y = reward_scale * r + discount * (1 - d) * (min_k Qbar_k(s', a') - alpha * log pi(a'|s'))``
    with ``a' ~ pi(.|s')``, computed without gradient;
    ``loss_t = mean_B (Q1(s, a) - y)^2 + mean_B (Q2(s, a) - y)^2``, the means weighted by
    ``batch.weight`` when it is given (see :func:`batch_mean`).

    Args:
        batch: fields of shape (T, B, ...).
        alpha: (T,) temperatures (detached inside).

    Returns:
        (loss (T,), stats) with Qf1Loss, Qf2Loss, QTarget, Qf1, Qf2 per task.
    """
    with torch.no_grad():
        next_pi = policy(batch.next_obs)
        target_q = torch.minimum(*target_qf(batch.next_obs, next_pi.action))
        soft_value = target_q - alpha.detach()[:, None] * next_pi.log_prob
        y = reward_scale * batch.reward + discount * (1.0 - batch.terminal) * soft_value
    q1, q2 = qf(batch.obs, batch.action)
    w = batch.weight
    q1_loss = batch_mean((q1 - y) ** 2, w)
    q2_loss = batch_mean((q2 - y) ** 2, w)
    stats = {"Qf1Loss": q1_loss, "Qf2Loss": q2_loss, "QTarget": batch_mean(y, w),
             "Qf1": batch_mean(q1, w), "Qf2": batch_mean(q2, w)}
    return q1_loss + q2_loss, {k: v.detach() for k, v in stats.items()}


def actor_loss(
    obs: torch.Tensor,
    policy: TanhGaussianPolicy,
    qf: TwinQFunction,
    alpha: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, Stats]:
    """``loss_t = mean_B (alpha_t * log pi(a~|s) - min_k Q_k(s, a~))``, a~ ~ pi(.|s) reparameterised
    (reference §3.1 step 2; SAC eq. 12).

    Args:
        obs: (T, B, obs_dim).
        alpha: (T,) temperatures (detached inside).
        weight: optional (T, B) transition weights (weighted means, :func:`batch_mean`).

    Returns:
        (loss (T,), log_prob (T, B) for the temperature loss, stats with PolicyLoss, LogPi
        and Entropy, the entropy of the pre-tanh Gaussian as the original logs it).
    """
    pi = policy(obs)
    q = torch.minimum(*qf(obs, pi.action))
    loss = batch_mean(alpha.detach()[:, None] * pi.log_prob - q, weight)
    entropy = batch_mean((pi.log_std + 0.5 * (1.0 + math.log(2.0 * math.pi))).sum(-1), weight)
    stats = {"PolicyLoss": loss.detach(), "LogPi": batch_mean(pi.log_prob.detach(), weight),
             "Entropy": entropy.detach()}
    return loss, pi.log_prob, stats


TEMPERATURE_FORMS = ("log_alpha", "alpha")


def temperature_loss(
    log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float,
    weight: torch.Tensor | None = None, form: str = "log_alpha",
) -> torch.Tensor:
    """Temperature loss of each task (reference §3.1 step 3; SAC, Haarnoja et al. 2018b, eq. 18).

    ``form="log_alpha"`` (the original's DnC family, ``DnCSAC``/``MoPDnC``/``OnlineCDS``):
    ``loss_t = -mean_B log(alpha_t) * (log pi(a|s) + target_entropy)``, gradient
    ``-mean_B (log pi + H)`` on log alpha.
    ``form="alpha"`` (the original's ``SAC``/``MoPSAC``: ``sac``, ``mtsac``, ``qmp_sac``):
    ``loss_t = -mean_B alpha_t * (log pi(a|s) + target_entropy)``, gradient
    ``-alpha_t * mean_B (log pi + H)`` on log alpha (steps shrink as alpha decays).

    Args:
        log_alpha: (T,) or (1,) learnable log temperatures.
        log_prob: (T, B) log-probabilities of fresh actions (detached inside).
        weight: optional (T, B) transition weights (weighted means, :func:`batch_mean`).
        form: ``log_alpha`` or ``alpha``.

    Returns:
        (T,) loss; with a single temperature each task's row uses it.

    Raises:
        ValueError: unknown ``form``.
    """
    if form == "log_alpha":
        coef = log_alpha
    elif form == "alpha":
        coef = log_alpha.exp()
    else:
        raise ValueError(f"temperature form {form!r}; allowed: {', '.join(TEMPERATURE_FORMS)}")
    return -batch_mean(coef[:, None] * (log_prob.detach() + target_entropy), weight)


class MultiTaskSAC(nn.Module):
    """T SAC learners (or one shared learner) updated in one batched step.

    Args:
        policy: T-task tanh-Gaussian policy.
        qf: T-task twin critic; the target critic is a frozen deep copy.
        num_tasks: T.
        per_task_alpha: one temperature per task (MTSAC, DnC) or one for all (``sac``).
        lr: Adam learning rate of policy, critics and temperature (``--lr``).
        discount: gamma (``--discount``).
        tau: Polyak coefficient (``--target_update_tau``): target <- (1 - tau) target + tau online.
        reward_scale: multiplies rewards in the target (``--reward_scale``).
        target_entropy: H-bar, default -|A| (``--target_entropy``).
        task_reduction: ``sum`` or ``mean`` of the per-task losses.
        use_pc_grad: combine the per-task gradients of policy and critics with PCGrad
            (``--use_pc_grad``, reference §3.10) instead of reducing the losses.
        pc_grad_alpha: also use PCGrad for the temperature (``--skip_alpha_pc_grad False``).
        temperature_form: ``log_alpha`` (the original's DnC family) or ``alpha`` (its SAC
            family); see :func:`temperature_loss`.
        task_loss_weights: weight task t's critic and actor losses by
            ``T * softmax(-log alpha)_t`` (detached), Soft Modularization's (Yang et al. 2020, §4.3)
            and CTPG's ``alpha_weight`` reduction (anchors §1.11).
        extreme_loss: ``(threshold, after)``: from update ``after`` on, a task whose critic loss
            is not within ``threshold`` is left out of the critic and actor losses of that step
            (``torch.where``, so an infinite loss cannot turn the sum into NaN) and, in networks
            that have ``reset_tasks`` (PaCo), its task parameters are reset (PaCo §3.3; CTPG's
            ``mask_extreme_task`` for every method, DarkDawn233/CTPG ``mtrl/utils/utils.py``
            line 128, ``mtrl/agent/sac.py`` lines 338-343); None: off.
        grad_clip: bound on the gradient norm of the critics, the actor and the temperature,
            each clipped after its backward pass (``--grad_clip``; CTPG's 0.1, anchors §1.11);
            per task for ``task_reduction="sum"`` (T separate learners), over all parameters
            otherwise (:func:`~learning.algorithms.optim.clip_grad_norm`); None: off.
        max_alpha: cap on every temperature, log alpha <= log(max_alpha) after each step
            (``--max_alpha``; CTPG's ``max_alpha = 1.0``, ``mtrl/agent/sac.py`` lines 486-488);
            None: no cap.

    Raises:
        ValueError: bad ``task_reduction``, ``temperature_form``, ``grad_clip`` or ``max_alpha``.
    """

    def __init__(self, policy: TanhGaussianPolicy, qf: TwinQFunction, num_tasks: int, *,
                 per_task_alpha: bool, lr: float, discount: float, tau: float,
                 reward_scale: float, target_entropy: float, task_reduction: str,
                 use_pc_grad: bool = False, pc_grad_alpha: bool = False,
                 temperature_form: str = "log_alpha", task_loss_weights: bool = False,
                 extreme_loss: tuple[float, int] | None = None, grad_clip: float | None = None,
                 max_alpha: float | None = None):
        super().__init__()
        if grad_clip is not None and not grad_clip > 0:
            raise ValueError(f"--grad_clip must be > 0 (or unset), got {grad_clip}")
        if max_alpha is not None and not max_alpha > 0:
            raise ValueError(f"--max_alpha must be > 0 (or unset), got {max_alpha}")
        self.grad_clip = grad_clip
        self.max_log_alpha = None if max_alpha is None else math.log(max_alpha)
        if task_reduction not in ("sum", "mean"):
            raise ValueError(f"task_reduction={task_reduction!r}; allowed: sum, mean")
        if temperature_form not in TEMPERATURE_FORMS:
            raise ValueError(f"temperature_form={temperature_form!r}; "
                             f"allowed: {', '.join(TEMPERATURE_FORMS)}")
        self.temperature_form = temperature_form
        self.task_loss_weights, self.extreme_loss, self.num_updates = task_loss_weights, extreme_loss, 0
        self.policy, self.qf = policy, qf
        self.target_qf = copy.deepcopy(qf).requires_grad_(False)
        self.num_tasks = num_tasks
        device = next(policy.parameters()).device
        self.log_alpha = nn.Parameter(torch.zeros(num_tasks if per_task_alpha else 1, device=device))
        self.discount, self.tau, self.reward_scale = discount, tau, reward_scale
        self.target_entropy, self.task_reduction = target_entropy, task_reduction
        self.policy_optimizer = adam(policy.parameters(), lr=lr)
        self.qf_optimizer = adam(qf.parameters(), lr=lr)
        self.alpha_optimizer = adam([self.log_alpha], lr=lr)
        self.use_pc_grad, self.pc_grad_alpha = use_pc_grad, use_pc_grad and pc_grad_alpha
        self._policy_groups = self._qf_groups = self._alpha_groups = None
        if use_pc_grad:
            self._policy_groups = [list(policy.parameters())]
            # a critic whose Q heads share an encoder (mtrl's CARE) gives its own groups
            self._qf_groups = (qf.pcgrad_groups() if hasattr(qf, "pcgrad_groups")
                               else [list(qf.q1.parameters()), list(qf.q2.parameters())])
            self._alpha_groups = [[self.log_alpha]]

    def alpha(self) -> torch.Tensor:
        """(T,) current temperatures exp(log_alpha), broadcast if shared."""
        return self.log_alpha.exp().expand(self.num_tasks)

    def reduce(self, per_task: torch.Tensor) -> torch.Tensor:
        return per_task.sum() if self.task_reduction == "sum" else per_task.mean()

    def actor_objective(self, batch: TransitionBatch, alpha: torch.Tensor):
        """Hook for regularised actors (DnC); returns (per-task loss, log_prob, stats)."""
        return actor_loss(batch.obs, self.policy, self.qf, alpha, batch.weight)

    def sample_batch(self, buffer, batch_size: int) -> TransitionBatch:
        """Hook for the minibatch of one gradient step: ``batch_size`` own transitions per task
        (data sharing overrides it)."""
        return buffer.sample(batch_size)

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        """Hook run after the epoch's evaluation (DnC distillation); returns pooled stats."""
        return {}

    def _backward(self, per_task: torch.Tensor, module_params: list, groups, pc: bool) -> None:
        """Set ``.grad`` of ``module_params`` from the (T,) loss: reduced over tasks, or PCGrad;
        then clip it to ``grad_clip`` (per task for separate learners)."""
        if pc:
            for i, group in enumerate(groups):
                pcgrad.pcgrad_backward(per_task, group, retain_graph=i + 1 < len(groups))
        else:
            self.reduce(per_task).backward(inputs=module_params)
        per_task_clip = self.task_reduction == "sum" and module_params[0].shape[0] == self.num_tasks
        clip_grad_norm(module_params, self.grad_clip, self.num_tasks if per_task_clip else None)

    def update(self, batch: TransitionBatch) -> Stats:
        """One gradient step of every learner on a (T, B) minibatch; returns per-task stats."""
        alpha = self.alpha().detach()
        q_loss, stats = critic_loss(batch, self.policy, self.qf, self.target_qf, alpha,
                                    self.discount, self.reward_scale)
        weights, extreme = self._task_weights(q_loss.detach())
        q_loss = self._weigh(q_loss, weights, extreme)
        self.qf_optimizer.zero_grad(set_to_none=True)
        self._backward(q_loss, list(self.qf.parameters()), self._qf_groups,
                       self.use_pc_grad)
        self.qf_optimizer.step()

        pi_loss, log_prob, pi_stats = self.actor_objective(batch, alpha)
        pi_loss = self._weigh(pi_loss, weights, extreme)
        self.policy_optimizer.zero_grad(set_to_none=True)
        self._backward(pi_loss, list(self.policy.parameters()),
                       self._policy_groups, self.use_pc_grad)
        self.policy_optimizer.step()

        a_loss = temperature_loss(self.log_alpha, log_prob, self.target_entropy, batch.weight,
                                  self.temperature_form)
        self.alpha_optimizer.zero_grad(set_to_none=True)
        self._backward(a_loss, [self.log_alpha], self._alpha_groups,
                       self.pc_grad_alpha)
        self.alpha_optimizer.step()
        if self.max_log_alpha is not None:
            with torch.no_grad():
                self.log_alpha.clamp_(max=self.max_log_alpha)

        self.polyak_update()
        if extreme is not None:
            self._reset_tasks(extreme)
            stats["ExtremeLoss"] = extreme.float()
        self.num_updates += 1
        stats.update(pi_stats)
        stats["AlphaLoss"] = a_loss.detach()
        stats["AlphaTemperature"] = self.alpha().detach()
        return stats

    def _task_weights(self, q_loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(T,) multipliers of the critic and actor losses (``task_loss_weights``: T softmax(-log
        alpha), CTPG's ``alpha_weight``, ``mtrl/agent/sac.py`` lines 608-610) and the (T,)
        extreme mask (None while ``extreme_loss`` is off; NaN counts as extreme)."""
        t = self.num_tasks
        weights = torch.ones(t, device=q_loss.device)
        if self.task_loss_weights:
            weights = t * torch.softmax(-self.log_alpha.detach().expand(t), dim=0)
        extreme = None
        if self.extreme_loss is not None and self.num_updates >= self.extreme_loss[1]:
            extreme = extreme_loss_tasks(q_loss, self.extreme_loss[0])
        return weights, extreme

    @staticmethod
    def _weigh(per_task: torch.Tensor, weights: torch.Tensor,
               extreme: torch.Tensor | None) -> torch.Tensor:
        """``weights * loss`` with the extreme tasks' rows set to 0 by ``torch.where`` (PaCo's
        :func:`~learning.networks.paco.mask_task_loss`): the reduced loss stays finite when a
        task's loss is inf or NaN (a gradient can still be NaN when the infinity arises inside
        that task's forward pass, e.g. an infinite target)."""
        weighted = per_task * weights
        return weighted if extreme is None else mask_task_loss(weighted, extreme)

    @torch.no_grad()
    def _reset_tasks(self, extreme: torch.Tensor) -> None:
        """Reset the extreme tasks' parameters in networks that support it (PaCo); the target
        critics take the online critics' reset task parameters."""
        if not bool(extreme.any()):
            return
        for module in (*self.policy.modules(), *self.qf.modules()):
            if hasattr(module, "reset_tasks"):
                module.reset_tasks(extreme)
        for target, online in zip(self.target_qf.modules(), self.qf.modules()):
            if hasattr(online, "composition"):
                target.composition[extreme] = online.composition[extreme]

    @torch.no_grad()
    def polyak_update(self) -> None:
        """target <- (1 - tau) * target + tau * online, for both target critics; a critic with
        ``polyak_taus`` (mtrl's CARE: encoder 0.05) gives each parameter its own tau."""
        targets, onlines = list(self.target_qf.parameters()), list(self.qf.parameters())
        if not hasattr(self.qf, "polyak_taus"):
            torch._foreach_lerp_(targets, onlines, self.tau)
            return
        taus = self.qf.polyak_taus(self.tau)
        for tau in sorted(set(taus)):
            pick = [i for i, t in enumerate(taus) if t == tau]
            torch._foreach_lerp_([targets[i] for i in pick], [onlines[i] for i in pick], tau)

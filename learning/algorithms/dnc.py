"""Divide-and-Conquer SAC: separate task learners, a pairwise policy regulariser and periodic
distillation into a centroid policy (Ghosh et al. 2018; reference §3.3).

The regulariser of all ordered pairs (i, j) is computed in one batched evaluation: every task
policy is run on every task's regulariser observations, giving a (T_policy, T_obs, N, ...)
cross table from which each pair's term is read by indexing; no loop over tasks or pairs.
"""

from __future__ import annotations

import copy
import math

import torch

from learning.algorithms.optim import adam
from learning.algorithms.sac import MultiTaskSAC, Stats, actor_loss
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch

_LOG_2PI = math.log(2.0 * math.pi)
ACTION_CLIP = 1.0 - 1e-6  # stored actions are clipped to +-this before atanh
SAMPLING_TYPE_CHOICES = ("all", "i", "j", "i+j")  # --sampling_type


def kl_coefficients(kl_coeff: tuple[float, ...] | list[float], num_tasks: int) -> torch.Tensor:
    """The (T, T) matrix beta from ``--kl_coeff`` (reference §1.3).

    One value: the same beta for every ordered pair. T*T values: row-major, row i holding the
    coefficients of policy i's loss against each j. The diagonal is set to 0 (no i-i term).

    Raises:
        ValueError: any other length (naming --kl_coeff and the allowed lengths), or a
            negative value (the original takes its logarithm).
    """
    values = torch.as_tensor(list(kl_coeff), dtype=torch.float32)
    t = num_tasks
    if values.numel() == 1:
        beta = values.expand(t, t).clone()
    elif values.numel() == t * t:
        beta = values.reshape(t, t).clone()
    else:
        raise ValueError(f"--kl_coeff has {values.numel()} values; allowed: 1 (every pair) or "
                         f"{t * t} (T*T, row-major, row i = policy i's loss) for {t} tasks")
    if (beta < 0).any():
        raise ValueError("--kl_coeff values must be >= 0")
    beta.fill_diagonal_(0.0)
    return beta


def gaussian_kl(mean_p: torch.Tensor, log_std_p: torch.Tensor, mean_q: torch.Tensor,
                log_std_q: torch.Tensor) -> torch.Tensor:
    """Element-wise closed-form ``KL(N(mean_p, std_p^2) || N(mean_q, std_q^2))``:

    ``log(std_q / std_p) + (std_p^2 + (mean_p - mean_q)^2) / (2 std_q^2) - 1/2``.

    Shapes: all broadcastable; returns their broadcast shape.
    """
    var_ratio = torch.exp(2.0 * (log_std_p - log_std_q))
    return (log_std_q - log_std_p + 0.5 * var_ratio
            + 0.5 * (mean_p - mean_q) ** 2 * torch.exp(-2.0 * log_std_q) - 0.5)


def _pair_views(x: torch.Tensor, set_of_i: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Views (x_i, x_j) of the cross table ``x`` (T, M, N, D), broadcastable to (T_i, T_j, N, D):
    policy i's and policy j's outputs on the observation set of pair (i, j) -- the single set
    when M = 1, else set i (``set_of_i``) or set j."""
    if x.shape[1] == 1:
        return x[:, None, 0], x[None, :, 0]
    own = x.diagonal(0, 0, 1).movedim(-1, 0)  # [k] = policy k on set k: (T, N, D)
    if set_of_i:
        return own[:, None], x.transpose(0, 1)  # [i, j] = pi_j on set i
    return x, own[None]  # [i, j] = pi_i on set j


def pairwise_kl(mean: torch.Tensor, log_std: torch.Tensor, sampling_type: str) -> torch.Tensor:
    """``D[i, j] = mean_batch mean_dims KL(pi_j || pi_i)`` between pre-tanh Gaussians on the
    observations of pair (i, j) (reference §3.3), gradient only into pi_i (pi_j detached).

    ``mean``/``log_std`` form the cross table: entry [k, m] is policy k on observation set m.
    Observation set of pair (i, j): ``all`` -> the single set 0; ``i`` -> set i; ``j`` -> set
    j; ``i+j`` -> sets i and j, equal sizes, so the mean over their union is the average of
    the two means.

    Args:
        mean, log_std: (T, M, N, act_dim), M = 1 for ``all`` else T.
        sampling_type: all | i | j | i+j.

    Returns:
        (T, T) per-pair penalty (the diagonal is 0).
    """
    def on_set(set_of_i: bool) -> torch.Tensor:
        (m_i, m_j), (s_i, s_j) = _pair_views(mean, set_of_i), _pair_views(log_std, set_of_i)
        kl = gaussian_kl(m_j.detach(), s_j.detach(), m_i, s_i)
        return kl.mean((-2, -1)).expand(mean.shape[0], mean.shape[0])

    return _combine(on_set, sampling_type)


def pairwise_feature_mse(features: torch.Tensor, sampling_type: str) -> torch.Tensor:
    """``D[i, j] = mean_batch mean_units (h_i - h_j)^2`` between the last hidden activations
    (``--regularize_representation``, reference §3.3), gradient only into policy i.

    Args:
        features: (T, M, N, H) cross table as in :func:`pairwise_kl`.
        sampling_type: all | i | j | i+j.

    Returns:
        (T, T) per-pair penalty (the diagonal is 0).
    """
    def on_set(set_of_i: bool) -> torch.Tensor:
        h_i, h_j = _pair_views(features, set_of_i)
        t = features.shape[0]
        return ((h_i - h_j.detach()) ** 2).mean((-2, -1)).expand(t, t)

    return _combine(on_set, sampling_type)


def _combine(on_set, sampling_type: str) -> torch.Tensor:
    if sampling_type in ("all", "i"):
        d = on_set(True)
    elif sampling_type == "j":
        d = on_set(False)
    elif sampling_type == "i+j":
        d = 0.5 * (on_set(True) + on_set(False))
    else:
        raise ValueError(f"--sampling_type={sampling_type!r}; allowed: {', '.join(SAMPLING_TYPE_CHOICES)}")
    return d * (1.0 - torch.eye(d.shape[0], device=d.device, dtype=d.dtype))


def all_transitions_source(num_tasks: int, batch_size: int, sampling_type: str,
                           device: torch.device | str = "cpu") -> torch.Tensor:
    """Which buffer each draw of the original's ``sample_all_transitions(B)`` comes from
    (reference §2.3): per buffer B//T draws for ``all`` and ``i``, B for ``j``, B//2 for ``i+j``
    (each at least 1).

    Returns:
        (T, n) int64 task ids, row k = buffer k.

    Raises:
        ValueError: unknown ``sampling_type``.
    """
    t, b = num_tasks, batch_size
    sizes = {"all": b // t, "i": b // t, "j": b, "i+j": b // 2}
    if sampling_type not in sizes:
        raise ValueError(f"--sampling_type={sampling_type!r}; allowed: {', '.join(SAMPLING_TYPE_CHOICES)}")
    return torch.arange(t, device=device)[:, None].expand(t, max(sizes[sampling_type], 1))


def regulariser_observations(buffer: TaskReplayBuffer, batch_size: int,
                             sampling_type: str) -> torch.Tensor:
    """Observations of the DnC regulariser (reference §2.3 ``sample_all_transitions``, §3.3),
    drawn as :func:`all_transitions_source` says.

    ``all``: the draws of every buffer concatenated, one set shared by all pairs -> (1, T*(B//T), obs).
    ``i``: set i used by policy i -> (T, B//T, obs).
    ``j``: set j used for pair (i, j) -> (T, B, obs).
    ``i+j``: sets i and j used for pair (i, j) -> (T, B//2, obs).
    """
    source = all_transitions_source(buffer.num_tasks, batch_size, sampling_type, buffer.device)
    if sampling_type == "all":
        source = source.reshape(1, -1)
    return buffer.sample_from(source).obs


def regularisation_loss(obs: torch.Tensor, policy: TanhGaussianPolicy, beta: torch.Tensor,
                        sampling_type: str, representation: bool) -> tuple[torch.Tensor, Stats]:
    """DnC penalty of every policy (reference §3.3):

    ``penalty_i = sum_{j != i} beta_ij D[i, j]`` with D from :func:`pairwise_kl` (KL(pi_j || pi_i)
    of the pre-tanh Gaussians, mean over action dims and batch) or, with ``representation``,
    :func:`pairwise_feature_mse`. Every policy is evaluated on every observation set in one call.

    Args:
        obs: (M, N, obs_dim) from :func:`regulariser_observations`.
        policy: the T separate task policies.
        beta: (T, T) coefficients, zero diagonal.

    Returns:
        (penalty (T,), stats PolicyKLPenalty (T,), PolicyKL (T,) = mean_{j != i} D[i, j]).
    """
    t = policy.num_tasks
    m, n, _ = obs.shape
    flat = obs.reshape(1, m * n, -1)
    if representation:
        feats = policy.net.features(flat)
        d = pairwise_feature_mse(feats.reshape(t, m, n, -1), sampling_type)
    else:
        mean, log_std = policy.distribution_params(flat)
        d = pairwise_kl(mean.reshape(t, m, n, -1), log_std.reshape(t, m, n, -1), sampling_type)
    penalty = (beta * d).sum(1)
    stats = {"PolicyKLPenalty": penalty.detach(),
             "PolicyKL": d.detach().sum(1) / max(t - 1, 1)}
    return penalty, stats


def centroid_policy(policy: TanhGaussianPolicy, task: int = 0) -> TanhGaussianPolicy:
    """A one-task copy of task ``task``'s slice of a separate (stacked) policy."""
    centroid = copy.deepcopy(policy)
    centroid.num_tasks = 1
    for module in centroid.modules():
        if hasattr(module, "num_tasks"):
            module.num_tasks = 1
    with torch.no_grad():
        for p in centroid.parameters():
            p.data = p.data[task: task + 1].clone()
    return centroid


def distillation_loss(centroid: TanhGaussianPolicy, obs: torch.Tensor,
                      action: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of stored actions under the centroid (reference §3.3):

    ``-mean_b log N(atanh(clip(a_b)); mean(s_b), std(s_b)^2)`` summed over action dims; the
    tanh Jacobian does not depend on the parameters and is left out.

    Shapes: obs (1, N, obs_dim), action (1, N, act_dim) -> scalar.
    """
    u = torch.atanh(action.clamp(-ACTION_CLIP, ACTION_CLIP))
    mean, log_std = centroid.distribution_params(obs)
    log_lik = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * _LOG_2PI).sum(-1)
    return -log_lik.mean()


def distill(policy: TanhGaussianPolicy, centroid: TanhGaussianPolicy,
            optimizer: torch.optim.Optimizer, buffer: TaskReplayBuffer, n_steps: int,
            batch_size: int, sampling_type: str) -> tuple[float, float]:
    """Distil every task policy into the centroid and copy it back (reference §3.3).

    The centroid (one task, see :func:`centroid_policy`) and its optimiser persist across
    distillations, as the original's. It takes ``n_steps`` steps on
    :func:`distillation_loss`, each on the stored transitions of every buffer drawn as the
    original's ``sample_all_transitions`` (:func:`all_transitions_source`, pooled); then every
    task's slice of ``policy`` is overwritten with it. The task policies' optimiser states are
    left untouched.

    Returns:
        (loss of the first step, loss after the last step).
    """
    source = all_transitions_source(buffer.num_tasks, batch_size, sampling_type,
                                    buffer.device).reshape(1, -1)
    first = float("nan")
    for step in range(n_steps):
        batch = buffer.sample_from(source)
        loss = distillation_loss(centroid, batch.obs, batch.action)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 0:
            first = float(loss.detach())
    with torch.no_grad():
        batch = buffer.sample_from(source)
        last = float(distillation_loss(centroid, batch.obs, batch.action))
        for p, c in zip(policy.parameters(), centroid.parameters()):
            p.copy_(c.expand_as(p))
    return first, last


class DnCSAC(MultiTaskSAC):
    """Separate SAC learners with the DnC regulariser and optional distillation
    (``dnc_sac``, ``qmp_dnc``; reference §3.3-§3.4).

    Args:
        *args, **kwargs: as :class:`MultiTaskSAC`.
        buffer: the replay buffer, source of regulariser and distillation data.
        kl_coeff: ``--kl_coeff`` (1 or T*T values); the regulariser is active iff any is != 0.
        sampling_type: ``--sampling_type`` all | i | j | i+j.
        regularize_representation: ``--regularize_representation``.
        batch_size: per-task minibatch B (``--buffer_batch_size``).
        distillation_period: distil when ``epoch > 0 and epoch % period == 0``; None/0 = off.
            When on, the centroid is a copy of policy 0 made here, with its own Adam
            (learning rate ``lr``), both kept across distillations (reference §3.3).
        distillation_n_epochs: centroid steps per distillation.
    """

    def __init__(self, *args, buffer: TaskReplayBuffer, kl_coeff=(0.0,), sampling_type: str = "all",
                 regularize_representation: bool = False, batch_size: int = 32,
                 distillation_period: int | None = None, distillation_n_epochs: int = 100,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.buffer = buffer
        self.register_buffer("beta", kl_coefficients(kl_coeff, self.num_tasks)
                             .to(self.log_alpha.device))
        self.regularise = bool((torch.as_tensor(list(kl_coeff)) != 0).any())
        if sampling_type not in SAMPLING_TYPE_CHOICES:
            raise ValueError(f"--sampling_type={sampling_type!r}; "
                             f"allowed: {', '.join(SAMPLING_TYPE_CHOICES)}")
        self.sampling_type, self.representation = sampling_type, regularize_representation
        self.batch_size = batch_size
        self.distillation_period, self.distillation_n_epochs = distillation_period, distillation_n_epochs
        if distillation_period:
            self.centroid = centroid_policy(self.policy, 0)
            self.centroid_optimizer = adam(
                self.centroid.parameters(), lr=self.policy_optimizer.param_groups[0]["lr"])

    def actor_objective(self, batch: TransitionBatch, alpha: torch.Tensor):
        """SAC actor loss plus ``sum_j beta_ij D[i, j]`` (reference §3.3)."""
        loss, log_prob, stats = actor_loss(batch.obs, self.policy, self.qf, alpha, batch.weight)
        stats["BetaKL"] = self.beta.sum(1) / max(self.num_tasks - 1, 1)
        if self.regularise:
            obs = regulariser_observations(self.buffer, self.batch_size, self.sampling_type)
            penalty, reg_stats = regularisation_loss(obs, self.policy, self.beta,
                                                     self.sampling_type, self.representation)
            loss = loss + penalty
            stats.update(reg_stats)
        return loss, log_prob, stats

    def end_of_epoch(self, epoch: int) -> dict[str, float]:
        """Distil when ``epoch > 0 and epoch % distillation_period == 0`` (reference §3.2)."""
        period = self.distillation_period
        if not period:
            return {}
        if epoch > 0 and epoch % period == 0:
            first, last = distill(self.policy, self.centroid, self.centroid_optimizer, self.buffer,
                                  self.distillation_n_epochs, self.batch_size, self.sampling_type)
        else:
            first = last = float("nan")
        return {"Distillation/InitialLoss": first, "Distillation/FinalLoss": last}

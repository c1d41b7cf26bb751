"""DnC regulariser and distillation (reference §3.3) against torch.distributions and by hand."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from learning.algorithms.dnc import (DnCSAC, centroid_policy, distill, distillation_loss,
                                     gaussian_kl, kl_coefficients, pairwise_feature_mse,
                                     pairwise_kl, regularisation_loss, regulariser_observations)
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch


def reference_kl(mean, log_std, i, j, obs_sets):
    """mean over obs sets, batch and dims of KL(pi_j || pi_i) with torch.distributions."""
    values = [kl_divergence(Normal(mean[j, m], log_std[j, m].exp()),
                            Normal(mean[i, m], log_std[i, m].exp())).mean() for m in obs_sets]
    return torch.stack(values).mean()


def test_gaussian_kl_matches_torch():
    torch.manual_seed(0)
    mp, mq, sp, sq = torch.randn(4, 5, 3).unbind(0)
    expected = kl_divergence(Normal(mp, sp.exp()), Normal(mq, sq.exp()))
    torch.testing.assert_close(gaussian_kl(mp, sp, mq, sq), expected)


@pytest.mark.parametrize("sampling_type", ["all", "i", "j", "i+j"])
def test_pairwise_kl_is_batched_over_pairs(sampling_type):
    torch.manual_seed(1)
    t, n, a = 3, 4, 2
    m = 1 if sampling_type == "all" else t
    mean, log_std = torch.randn(t, m, n, a), 0.3 * torch.randn(t, m, n, a)
    d = pairwise_kl(mean, log_std, sampling_type)
    for i in range(t):
        for j in range(t):
            sets = {"all": [0], "i": [i], "j": [j], "i+j": [i, j]}[sampling_type]
            expected = 0.0 if i == j else reference_kl(mean, log_std, i, j, sets)
            torch.testing.assert_close(d[i, j], torch.as_tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize("sampling_type", ["all", "i", "j", "i+j"])
def test_kl_gradient_reaches_only_pi_i(sampling_type):
    torch.manual_seed(2)
    t, n, a = 3, 4, 2
    m = 1 if sampling_type == "all" else t
    mean = torch.randn(t, m, n, a, requires_grad=True)
    log_std = (0.3 * torch.randn(t, m, n, a)).requires_grad_()
    pairwise_kl(mean, log_std, sampling_type)[0, 2].backward()
    # only policy 0's outputs (first axis) get a gradient; pi_2 is detached
    assert mean.grad[0].abs().sum() > 0 and log_std.grad[0].abs().sum() > 0
    assert mean.grad[1:].abs().sum() == 0 and log_std.grad[1:].abs().sum() == 0


def test_kl_gradient_reaches_only_pi_i_through_separate_policy():
    torch.manual_seed(3)
    policy = TanhGaussianPolicy("separate", 3, 4, 2, (8,))
    beta = torch.zeros(3, 3)
    beta[0, 1] = 0.5
    penalty, _ = regularisation_loss(torch.randn(1, 6, 4), policy, beta, "all", False)
    penalty.sum().backward()
    for p in policy.parameters():
        assert p.grad[0].abs().sum() > 0
        assert p.grad[1:].abs().sum() == 0


def test_kl_coeff_row_major_layout_and_penalty():
    beta = kl_coefficients([float(v) for v in range(1, 10)], 3)
    expected = torch.tensor([[0.0, 2.0, 3.0], [4.0, 0.0, 6.0], [7.0, 8.0, 0.0]])
    torch.testing.assert_close(beta, expected)
    torch.testing.assert_close(kl_coefficients([0.1], 3), 0.1 * (1 - torch.eye(3)))
    torch.manual_seed(4)
    policy = TanhGaussianPolicy("separate", 3, 4, 2, (8,))
    obs = torch.randn(1, 5, 4)
    with torch.no_grad():
        penalty, stats = regularisation_loss(obs, policy, beta, "all", False)
        mean, log_std = policy.distribution_params(obs)
    for i in range(3):
        d = [0.0 if i == j else kl_divergence(Normal(mean[j], log_std[j].exp()),
                                              Normal(mean[i], log_std[i].exp())).mean()
             for j in range(3)]
        # row i of kl_coeff weighs policy i's loss against each j
        assert float(penalty[i]) == pytest.approx(sum(float(beta[i, j]) * float(d[j]) for j in range(3)),
                                                  rel=1e-5)
        assert float(stats["PolicyKL"][i]) == pytest.approx(sum(float(x) for x in d) / 2, rel=1e-5)


@pytest.mark.parametrize("values", [[0.1, 0.2], [0.0] * 4, [0.1] * 10])
def test_kl_coeff_bad_length(values):
    with pytest.raises(ValueError, match=r"--kl_coeff has .* allowed: 1 .* or 9"):
        kl_coefficients(values, 3)


def test_representation_mse():
    torch.manual_seed(5)
    feats = torch.randn(3, 3, 4, 5, requires_grad=True)
    d = pairwise_feature_mse(feats, "j")
    # pair (i, j) on set j: policy i's features vs policy j's features on j's observations
    torch.testing.assert_close(d[0, 2], ((feats[0, 2] - feats[2, 2]) ** 2).mean())
    d[0, 2].backward()
    assert feats.grad[1:].abs().sum() == 0


def filled_buffer(t=3, n=200, obs_dim=4, act_dim=2):
    torch.manual_seed(6)
    buffer = TaskReplayBuffer(t, 1000, obs_dim, act_dim)
    obs = torch.randn(t, n, obs_dim)
    action = torch.tanh(0.5 + 0.2 * torch.randn(t, n, act_dim))  # pre-tanh ~ N(0.5, 0.2^2)
    buffer.add(TransitionBatch(obs, action, torch.zeros(t, n), obs, torch.zeros(t, n)))
    return buffer


def test_regulariser_observation_sizes():
    buffer = filled_buffer()
    assert regulariser_observations(buffer, 16, "all").shape == (1, 15, 4)
    assert regulariser_observations(buffer, 16, "i").shape == (3, 5, 4)
    assert regulariser_observations(buffer, 16, "j").shape == (3, 16, 4)
    assert regulariser_observations(buffer, 16, "i+j").shape == (3, 8, 4)


def test_distillation_lowers_loss_and_overwrites_every_policy():
    buffer = filled_buffer()
    policy = TanhGaussianPolicy("separate", 3, 4, 2, (16,))
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    probe = buffer.sample_from(torch.arange(3).repeat_interleave(50)[None])
    with torch.no_grad():
        initial = float(distillation_loss(centroid_policy(policy, 0), probe.obs, probe.action))
    centroid = centroid_policy(policy, 0)
    optimizer = torch.optim.Adam(centroid.parameters(), lr=1e-2)
    first, last = distill(policy, centroid, optimizer, buffer, n_steps=60, batch_size=30,
                          sampling_type="all")
    assert last < first
    obs = torch.randn(1, 7, 4)
    mean, log_std = policy.distribution_params(obs)
    for k in range(1, 3):
        torch.testing.assert_close(mean[k], mean[0])
        torch.testing.assert_close(log_std[k], log_std[0])
    centroid = centroid_policy(policy, 2)
    with torch.no_grad():
        after = float(distillation_loss(centroid, probe.obs, probe.action))
    assert after < initial
    assert any(not torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_dnc_update_logs_kl_stats_and_distils_on_period():
    buffer = filled_buffer()
    policy = TanhGaussianPolicy("separate", 3, 4, 2, (8,))
    qf = TwinQFunction("separate", 3, 4, 2, (8,))
    algo = DnCSAC(policy, qf, 3, per_task_alpha=True, lr=1e-3, discount=0.99, tau=0.005,
                  reward_scale=1.0, target_entropy=-2.0, task_reduction="sum", buffer=buffer,
                  kl_coeff=[0.2], sampling_type="i+j", batch_size=8, distillation_period=2,
                  distillation_n_epochs=3)
    stats = algo.update(buffer.sample(8))
    torch.testing.assert_close(stats["BetaKL"], torch.full((3,), 0.2))
    torch.testing.assert_close(stats["PolicyKLPenalty"], 0.2 * 2 * stats["PolicyKL"])
    assert (stats["PolicyKL"] > 0).all()
    for epoch in (0, 1, 3):  # no distillation: NaN placeholders, policies untouched
        assert all(math.isnan(v) for v in algo.end_of_epoch(epoch).values())
    m, _ = policy.distribution_params(torch.randn(1, 3, 4))
    assert not torch.allclose(m[1], m[0])
    out = algo.end_of_epoch(2)
    assert not math.isnan(out["Distillation/FinalLoss"])
    m, _ = policy.distribution_params(torch.randn(1, 3, 4))
    torch.testing.assert_close(m[1], m[0])


def dnc_with_distillation(buffer, sampling_type="all", lr=1e-3):
    torch.manual_seed(7)
    policy = TanhGaussianPolicy("separate", 3, 4, 2, (8,))
    qf = TwinQFunction("separate", 3, 4, 2, (8,))
    return DnCSAC(policy, qf, 3, per_task_alpha=True, lr=lr, discount=0.99, tau=0.005,
                  reward_scale=1.0, target_entropy=-2.0, task_reduction="sum", buffer=buffer,
                  sampling_type=sampling_type, batch_size=8, distillation_period=1,
                  distillation_n_epochs=1)


def test_centroid_is_policy_0_at_construction_and_persists_with_its_optimizer():
    """The original copies policy 0 once, at construction, and keeps the centroid and its Adam
    state across distillations (reference §3.3)."""
    buffer = filled_buffer()
    algo = dnc_with_distillation(buffer, lr=1e-4)
    initial = [p[0].clone() for p in algo.policy.parameters()]  # policy 0 at construction
    with torch.no_grad():  # training moves the task policies far from their initial values
        for p in algo.policy.parameters():
            p.add_(5.0)
    algo.end_of_epoch(1)
    # one Adam step of lr 1e-4 from the construction-time copy, not from the moved policy 0
    for p, p0 in zip(algo.policy.parameters(), initial):
        for k in range(3):
            torch.testing.assert_close(p[k], p0, atol=2e-4, rtol=0)
    with torch.no_grad():
        for p in algo.policy.parameters():
            p.add_(5.0)
    algo.end_of_epoch(2)
    for p, p0 in zip(algo.policy.parameters(), initial):
        torch.testing.assert_close(p[0], p0, atol=3e-4, rtol=0)
    steps = {int(state["step"]) for state in algo.centroid_optimizer.state.values()}
    assert steps == {2}


@pytest.mark.parametrize("sampling_type,per_buffer", [("all", 8 // 3), ("i", 8 // 3), ("j", 8),
                                                      ("i+j", 4)])
def test_distillation_draws_as_sample_all_transitions(sampling_type, per_buffer, monkeypatch):
    """Per step, B//T from every buffer for all/i, B for j, B//2 for i+j (reference §2.3)."""
    buffer = filled_buffer()
    algo = dnc_with_distillation(buffer, sampling_type)
    sources = []
    original = buffer.sample_from
    monkeypatch.setattr(buffer, "sample_from", lambda source: sources.append(source) or original(source))
    algo.end_of_epoch(1)
    expected = torch.arange(3).repeat_interleave(per_buffer)
    assert sources and all(torch.equal(src.reshape(-1).sort().values, expected) for src in sources)

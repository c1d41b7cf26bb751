"""Unsupervised data sharing (reference §3.7) and weighted SAC losses."""

import torch

from learning.algorithms.sac import MultiTaskSAC, actor_loss, critic_loss, temperature_loss
from learning.algorithms.uds import (UDSSAC, other_task_sources, quantile_threshold,
                                     share_data)
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch


class FirstObsCritic:
    """A stand-in critic with Q1(s, a) = s[0]."""

    def q1_value(self, obs, action):
        return obs[..., 0]


def make_batch(obs0, reward):
    obs0 = torch.as_tensor(obs0, dtype=torch.float32)
    t, b = obs0.shape
    obs = torch.stack([obs0, torch.zeros(t, b)], -1)
    return TransitionBatch(obs, torch.zeros(t, b, 1), torch.as_tensor(reward, dtype=torch.float32),
                           obs + 1, torch.zeros(t, b))


def test_other_task_sources():
    expected = torch.tensor([[1, 1, 2, 2], [0, 0, 2, 2], [0, 0, 1, 1]])
    assert torch.equal(other_task_sources(3, 2), expected)


def test_quantile_threshold_indexes_minus_inf_then_sorted():
    q = torch.tensor([[3.0, 1.0, 2.0, 4.0], [10.0, 40.0, 30.0, 20.0]])
    assert torch.equal(quantile_threshold(q, 0.5), torch.tensor([2.0, 20.0]))  # index floor(4*.5)=2
    assert torch.equal(quantile_threshold(q, 0.2), torch.full((2,), -torch.inf))  # index 0
    assert torch.equal(quantile_threshold(q, 0.75), torch.tensor([3.0, 30.0]))


def test_share_data_keeps_exactly_the_transitions_above_threshold():
    own = make_batch([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 8.0]], [[5.0, 6.0, 7.0, 8.0]] * 2)
    others = make_batch([[2.0, 2.5, 5.0, 0.0], [0.5, -1.0, 9.0, 0.0]], [[9.0] * 4] * 2)
    batch, stats = share_data(own, others, FirstObsCritic(), min_reward=-1.0, quantile=0.5)
    # task 0: threshold = 2 (strictly above keeps 2.5 and 5); task 1: threshold = 0 keeps 0.5, 9
    expected_weight = torch.tensor([[1, 1, 1, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 0, 1, 0]], dtype=torch.float32)
    assert torch.equal(batch.weight, expected_weight)
    torch.testing.assert_close(stats["SharedData"], torch.tensor([0.5, 0.5]))
    assert torch.equal(batch.reward[:, :4], own.reward)  # own rewards untouched
    assert (batch.reward[:, 4:] == -1.0).all()  # shared rewards relabelled to min_reward
    assert torch.equal(batch.obs[:, 4:], others.obs) and torch.equal(batch.next_obs[:, 4:], others.next_obs)


def test_quantile_zero_keeps_everything():
    own = make_batch([[1.0, 2.0]], [[0.0, 0.0]])
    others = make_batch([[-5.0, -7.0, 0.0]], [[3.0, 3.0, 3.0]])
    batch, stats = share_data(own, others, FirstObsCritic(), min_reward=-20.0, quantile=0.0)
    assert (batch.weight == 1).all() and batch.weight.shape == (1, 5)
    torch.testing.assert_close(stats["SharedData"], torch.ones(1))
    assert (batch.reward[:, 2:] == -20.0).all()


def uds_algorithm(t=3, quantile=0.0):
    torch.manual_seed(0)
    buffer = TaskReplayBuffer(t, 100, 2, 1)
    n = 20
    obs = torch.arange(t, dtype=torch.float32)[:, None, None].expand(t, n, 2)  # obs = task id
    buffer.add(TransitionBatch(obs, torch.zeros(t, n, 1), torch.full((t, n), 5.0), obs,
                               torch.zeros(t, n)))
    policy = TanhGaussianPolicy("separate", t, 2, 1, (8,))
    qf = TwinQFunction("separate", t, 2, 1, (8,))
    algo = UDSSAC(policy, qf, t, per_task_alpha=True, lr=1e-3, discount=0.99, tau=0.005,
                  reward_scale=1.0, target_entropy=-1.0, task_reduction="sum", buffer=buffer,
                  batch_size=8, min_reward=-3.0, sharing_quantile=quantile)
    return algo, buffer


def test_uds_sample_batch_draws_from_every_other_buffer_and_relabels():
    algo, buffer = uds_algorithm()
    batch = algo.sample_batch(buffer, 8)
    assert batch.obs.shape == (3, 8 + 2 * 4, 2) and batch.weight.shape == (3, 16)
    for i in range(3):
        assert (batch.obs[i, :8] == i).all() and (batch.reward[i, :8] == 5.0).all()
        sources = batch.obs[i, 8:, 0]
        assert sorted(set(sources.tolist())) == sorted(set(range(3)) - {i})
        assert (sources == torch.tensor([j for j in range(3) if j != i]).repeat_interleave(4)).all()
        assert (batch.reward[i, 8:] == -3.0).all()
    stats = algo.update(batch)
    torch.testing.assert_close(stats["SharedData"], torch.ones(3))


def test_uds_quantile_uses_task_critic():
    algo, buffer = uds_algorithm(quantile=0.5)
    batch = algo.sample_batch(buffer, 8)
    with torch.no_grad():
        q = algo.qf.q1_value(batch.obs, batch.action)
    thr = quantile_threshold(q[:, :8], 0.5)
    torch.testing.assert_close(batch.weight[:, 8:], (q[:, 8:] > thr[:, None]).float())
    shared = algo.update(batch)["SharedData"]
    torch.testing.assert_close(shared, batch.weight[:, 8:].mean(1))


def weighted_and_subset():
    torch.manual_seed(3)
    t, b, keep = 2, 6, 4
    full = TransitionBatch(torch.randn(t, b, 3), torch.rand(t, b, 2) * 2 - 1, torch.randn(t, b),
                           torch.randn(t, b, 3), (torch.rand(t, b) < 0.3).float())
    weight = torch.zeros(t, b)
    kept = torch.tensor([[0, 2, 3, 5], [1, 2, 4, 5]])
    weight.scatter_(1, kept, 1.0)
    def pick(x):
        return x.gather(1, kept if x.dim() == 2 else kept[..., None].expand(-1, -1, x.shape[-1]))

    subset = TransitionBatch(*(pick(x) for x in full[:5]))
    return full._replace(weight=weight), subset, keep


def test_weighted_losses_equal_unweighted_losses_on_kept_subset(monkeypatch):
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)  # deterministic sampling
    weighted, subset, _ = weighted_and_subset()
    torch.manual_seed(4)
    policy = TanhGaussianPolicy("separate", 2, 3, 2, (8,))
    qf = TwinQFunction("separate", 2, 3, 2, (8,))
    target = TwinQFunction("separate", 2, 3, 2, (8,))
    alpha = torch.tensor([0.3, 1.5])
    lw, sw = critic_loss(weighted, policy, qf, target, alpha, 0.9, 2.0)
    ls, ss = critic_loss(subset, policy, qf, target, alpha, 0.9, 2.0)
    torch.testing.assert_close(lw, ls)
    for k in sw:
        torch.testing.assert_close(sw[k], ss[k])
    aw, logp_w, statw = actor_loss(weighted.obs, policy, qf, alpha, weighted.weight)
    a_s, logp_s, stats = actor_loss(subset.obs, policy, qf, alpha)
    torch.testing.assert_close(aw, a_s)
    for k in statw:
        torch.testing.assert_close(statw[k], stats[k])
    log_alpha = torch.tensor([0.1, -0.2])
    torch.testing.assert_close(temperature_loss(log_alpha, logp_w, -2.0, weighted.weight),
                               temperature_loss(log_alpha, logp_s, -2.0))


def test_weighted_update_equals_update_on_kept_subset(monkeypatch):
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    weighted, subset, _ = weighted_and_subset()
    results = []
    for batch in (weighted, subset):
        torch.manual_seed(5)
        algo = MultiTaskSAC(TanhGaussianPolicy("separate", 2, 3, 2, (8,)),
                            TwinQFunction("separate", 2, 3, 2, (8,)), 2, per_task_alpha=True,
                            lr=1e-2, discount=0.9, tau=0.1, reward_scale=1.0, target_entropy=-2.0,
                            task_reduction="sum")
        algo.update(batch)
        results.append(algo.state_dict())
    for k in results[0]:
        torch.testing.assert_close(results[0][k], results[1][k])


def test_unweighted_batch_default_is_none():
    batch = TransitionBatch(*(torch.zeros(1, 1) for _ in range(5)))
    assert batch.weight is None

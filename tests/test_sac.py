"""SAC losses against hand-computed values on tiny fixed networks (reference §3.1)."""

import math

import torch

from learning.algorithms.sac import MultiTaskSAC, actor_loss, critic_loss, temperature_loss
from learning.policies.tanh_gaussian import TanhGaussianPolicy, tanh_gaussian_log_prob
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TransitionBatch


def constant_policy(t, obs_dim, act_dim, mean, log_std):
    """A policy whose output ignores the state: mean and log-std come from the output bias."""
    policy = TanhGaussianPolicy("separate", t, obs_dim, act_dim, (4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.net.output.bias[:, 0, :act_dim] = torch.as_tensor(mean)
        policy.net.output.bias[:, 0, act_dim:] = torch.as_tensor(log_std)
    return policy


def linear_q(t, obs_dim, act_dim, w_obs, w_act, bias, q2_scale=2.0):
    """Q1(s, a) = w_obs . s + w_act . a + bias, Q2 = q2_scale (w_obs . s + w_act . a) + bias
    (ReLU hidden layer made an identity on positives)."""
    qf = TwinQFunction("separate", t, obs_dim, act_dim, (obs_dim + act_dim,))
    with torch.no_grad():
        for net, scale in ((qf.q1, 1.0), (qf.q2, q2_scale)):
            n = obs_dim + act_dim
            net.hidden[0].weight.copy_(torch.eye(n).expand(t, n, n))
            net.hidden[0].bias.fill_(10.0)  # keep pre-activations positive
            w = torch.cat([torch.as_tensor(w_obs), torch.as_tensor(w_act)]) * scale
            net.output.weight.copy_(w[None, :, None].expand(t, n, 1))
            net.output.bias.fill_(bias - 10.0 * float(w.sum()))
    return qf


def batch(t=2, b=3):
    torch.manual_seed(1)
    return TransitionBatch(
        obs=torch.rand(t, b, 2), action=torch.rand(t, b, 1) * 2 - 1,
        reward=torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])[:t, :b],
        next_obs=torch.rand(t, b, 2), terminal=torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])[:t, :b])


def test_critic_target_and_loss_match_hand_computation():
    t = 2
    data = batch(t)
    # Deterministic next action: log_std = -20 makes the sample equal the mean up to 2e-9.
    policy = constant_policy(t, 2, 1, [0.3], [-20.0])
    qf = linear_q(t, 2, 1, [0.5, -1.0], [2.0], 0.1)
    target = linear_q(t, 2, 1, [1.0, 1.0], [1.0], -0.2)
    alpha = torch.tensor([0.5, 2.0])
    gamma, scale = 0.9, 3.0
    loss, stats = critic_loss(data, policy, qf, target, alpha, gamma, scale)

    a_next = math.tanh(0.3)
    log_pi = tanh_gaussian_log_prob(torch.full((1,), 0.3), torch.full((1,), 0.3), torch.full((1,), -20.0)).sum()
    targets, manual = torch.zeros(t, 3), torch.zeros(t, 2)
    for k in range(t):
        for i in range(3):
            s, s2 = data.obs[k, i], data.next_obs[k, i]
            q1_next = float(s2.sum()) + a_next - 0.2
            q2_next = 2 * float(s2.sum()) + 2 * a_next - 0.2
            y = scale * float(data.reward[k, i]) + gamma * (1 - float(data.terminal[k, i])) * (
                min(q1_next, q2_next) - float(alpha[k]) * float(log_pi))
            targets[k, i] = y
            q1 = 0.5 * float(s[0]) - float(s[1]) + 2 * float(data.action[k, i]) + 0.1
            q2 = 2 * (0.5 * float(s[0]) - float(s[1]) + 2 * float(data.action[k, i])) + 0.1
            manual[k, 0] += (q1 - y) ** 2 / 3
            manual[k, 1] += (q2 - y) ** 2 / 3
    torch.testing.assert_close(stats["QTarget"], targets.mean(1), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(stats["Qf1Loss"], manual[:, 0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(stats["Qf2Loss"], manual[:, 1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loss, manual.sum(1), rtol=1e-4, atol=1e-4)


def test_terminal_stops_bootstrapping():
    data = batch(1)
    policy = constant_policy(1, 2, 1, [0.0], [-20.0])
    qf = linear_q(1, 2, 1, [0.0, 0.0], [0.0], 0.0)
    target = linear_q(1, 2, 1, [0.0, 0.0], [0.0], 100.0)
    _, stats = critic_loss(data, policy, qf, target, torch.zeros(1), 0.5, 1.0)
    # rewards 1, -2 (terminal), 0.5 -> y = 1 + 50, -2, 0.5 + 50
    torch.testing.assert_close(stats["QTarget"], torch.tensor([(51 - 2 + 50.5) / 3]))


def test_actor_loss_matches_hand_computation():
    policy = constant_policy(2, 2, 1, [0.2], [-20.0])
    qf = linear_q(2, 2, 1, [1.0, 0.0], [-1.0], 0.0)
    obs = torch.tensor([[[0.5, 0.0]], [[1.5, 0.0]]])
    alpha = torch.tensor([0.1, 1.0])
    loss, log_prob, stats = actor_loss(obs, policy, qf, alpha)
    a = math.tanh(0.2)
    lp = float(log_prob[0, 0].detach())
    expected = torch.tensor([0.1 * lp - (0.5 - a), 1.0 * lp - (1.5 - a)])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)


def test_temperature_loss_and_gradient():
    log_alpha = torch.tensor([0.0, math.log(2.0)], requires_grad=True)
    log_prob = torch.tensor([[-1.0, -3.0], [0.0, 2.0]])
    loss = temperature_loss(log_alpha, log_prob, target_entropy=-2.0)
    # task 0: log alpha 0 -> 0; task 1: -ln2 * mean([-1-2, ... ]) = -ln2 * mean([-2, 0]) = ln2
    torch.testing.assert_close(loss, torch.tensor([0.0, math.log(2.0)]))
    loss.sum().backward()
    # d/dlog_alpha = -mean(log_pi + H)
    torch.testing.assert_close(log_alpha.grad, torch.tensor([4.0, 1.0]))


def test_update_polyak_and_alpha_direction():
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", 2, 2, 1, (8,))
    qf = TwinQFunction("separate", 2, 2, 1, (8,))
    sac = MultiTaskSAC(policy, qf, 2, per_task_alpha=True, lr=1e-2, discount=0.9, tau=0.5,
                       reward_scale=1.0, target_entropy=-1.0, task_reduction="sum")
    before = [p.clone() for p in sac.target_qf.parameters()]
    online_before = [p.clone() for p in qf.parameters()]
    stats = sac.update(batch(2))
    for tb, ob, p, tp in zip(before, online_before, qf.parameters(), sac.target_qf.parameters()):
        torch.testing.assert_close(tp, 0.5 * tb + 0.5 * p)
        assert not torch.equal(p, ob)
    assert not any(p.requires_grad for p in sac.target_qf.parameters())
    assert stats["AlphaTemperature"].shape == (2,)


def test_critic_target_uses_min_of_the_two_target_critics():
    """Target Q2 = -(Q1 - bias) + bias: min(Q1, Q2) is Q1 on some transitions, Q2 on others."""
    t, b = 2, 6
    torch.manual_seed(3)
    data = TransitionBatch(obs=torch.randn(t, b, 2), action=torch.rand(t, b, 1) * 2 - 1,
                           reward=torch.randn(t, b), next_obs=torch.randn(t, b, 2),
                           terminal=torch.zeros(t, b))
    policy = constant_policy(t, 2, 1, [0.0], [-20.0])  # a' = tanh(0) = 0
    qf = linear_q(t, 2, 1, [0.0, 0.0], [0.0], 0.0)
    target = linear_q(t, 2, 1, [1.0, -1.0], [0.0], 0.5, q2_scale=-1.0)
    gamma = 0.5
    _, stats = critic_loss(data, policy, target_qf=target, qf=qf, alpha=torch.zeros(t),
                           discount=gamma, reward_scale=1.0)
    x = data.next_obs[..., 0] - data.next_obs[..., 1]
    q1_next, q2_next = x + 0.5, -x + 0.5
    assert (q1_next < q2_next).any() and (q2_next < q1_next).any()
    expected = data.reward + gamma * torch.minimum(q1_next, q2_next)
    torch.testing.assert_close(stats["QTarget"], expected.mean(1), rtol=1e-5, atol=1e-5)
    # the loss is the squared error of Q == 0 against y, per critic
    torch.testing.assert_close(stats["Qf1Loss"], (expected ** 2).mean(1), rtol=1e-5, atol=1e-5)


def test_actor_loss_uses_min_of_the_two_critics():
    """Q2 = -(w . x) + bias: the actor's min(Q1, Q2) is Q1 for task 0's state, Q2 for task 1's."""
    policy = constant_policy(2, 2, 1, [0.2], [-20.0])
    qf = linear_q(2, 2, 1, [1.0, 0.0], [0.0], 0.0, q2_scale=-1.0)
    obs = torch.tensor([[[-0.5, 0.0]], [[1.5, 0.0]]])
    alpha = torch.tensor([0.1, 1.0])
    loss, log_prob, _ = actor_loss(obs, policy, qf, alpha)
    lp = log_prob.detach()[:, 0]
    # task 0: Q1 = -0.5, Q2 = 0.5 -> -0.5; task 1: Q1 = 1.5, Q2 = -1.5 -> -1.5
    expected = alpha * lp - torch.tensor([-0.5, -1.5])
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)


def test_alpha_form_temperature_loss_and_gradient():
    """The original SAC family's loss -mean(alpha (log pi + H)): gradient -alpha mean(log pi + H)."""
    log_alpha = torch.tensor([0.0, math.log(2.0)], requires_grad=True)
    log_prob = torch.tensor([[-1.0, -3.0], [0.0, 2.0]])
    loss = temperature_loss(log_alpha, log_prob, target_entropy=-2.0, form="alpha")
    # task 0: -1 * mean(-3, -5) = 4; task 1: -2 * mean(-2, 0) = 2
    torch.testing.assert_close(loss, torch.tensor([4.0, 2.0]))
    loss.sum().backward()
    torch.testing.assert_close(log_alpha.grad, torch.tensor([4.0, 2.0]))


def test_temperature_falls_when_entropy_is_above_target_and_rises_below():
    """One SGD step on log alpha: log pi + H < 0 (entropy above target) lowers alpha, > 0
    raises it, in both forms."""
    for form in ("log_alpha", "alpha"):
        log_alpha = torch.nn.Parameter(torch.zeros(2))
        opt = torch.optim.SGD([log_alpha], lr=0.1)
        log_prob = torch.tensor([[-3.0, -3.0], [2.0, 2.0]])  # H = -1: task 0 too random, task 1 too sure
        temperature_loss(log_alpha, log_prob, -1.0, form=form).sum().backward()
        opt.step()
        assert log_alpha[0] < 0 < log_alpha[1], form


def test_sac_family_and_dnc_family_temperature_forms_differ_in_the_update():
    """With alpha != 1 the two forms give different log-alpha gradients (SGD makes it visible)."""
    grads = {}
    for form in ("log_alpha", "alpha"):
        log_alpha = torch.tensor([math.log(0.25)], requires_grad=True)
        temperature_loss(log_alpha, torch.tensor([[0.5]]), -1.5, form=form).sum().backward()
        grads[form] = float(log_alpha.grad)
    assert grads["log_alpha"] == 1.0 and abs(grads["alpha"] - 0.25) < 1e-6


def sac_for_weights(**kw):
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("multihead", 2, 2, 1, (8,))
    qf = TwinQFunction("multihead", 2, 2, 1, (8,))
    return MultiTaskSAC(policy, qf, 2, per_task_alpha=True, lr=1e-2, discount=0.9, tau=0.5,
                        reward_scale=1.0, target_entropy=-1.0, task_reduction="mean", **kw)


def test_task_loss_weights_scale_each_tasks_gradient_by_softmax_of_minus_log_alpha():
    """With --task_loss_weights, task t's critic gradient is T softmax(-log alpha)_t times the plain one."""
    grads = {}
    for weighted in (False, True):
        sac = sac_for_weights(task_loss_weights=weighted)
        with torch.no_grad():
            sac.log_alpha.copy_(torch.tensor([0.0, math.log(3.0)]))
        sac.qf_optimizer.step = lambda: None  # keep the gradient, skip the step
        sac.update(batch(2))
        grads[weighted] = sac.qf.q1.heads.weight.grad.clone()  # (T, H, 1), task t's head
    w = 2 * torch.softmax(-torch.tensor([0.0, math.log(3.0)]), 0)  # (1.5, 0.5)
    for t in range(2):
        torch.testing.assert_close(grads[True][t], w[t] * grads[False][t])


def test_extreme_loss_leaves_the_task_out_and_resets_paco_only_after_the_start():
    from learning.networks.paco import PaCoMLP
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("paco", 2, 2, 1, (8,))
    qf = TwinQFunction("paco", 2, 2, 1, (8,))
    sac = MultiTaskSAC(policy, qf, 2, per_task_alpha=True, lr=1e-2, discount=0.9, tau=0.5,
                       reward_scale=1.0, target_entropy=-1.0, task_reduction="mean",
                       extreme_loss=(50.0, 1))
    data = batch(2)
    data = data._replace(reward=torch.tensor([[1.0, -2.0, 0.5], [1e3, 1e3, 1e3]]))  # task 1 explodes
    stats = sac.update(data)  # update 0: before the start, nothing masked
    assert "ExtremeLoss" not in stats
    nets = [m for m in (*policy.modules(), *qf.modules()) if isinstance(m, PaCoMLP)]
    before = [n.composition.detach().clone() for n in nets]
    sac.qf_optimizer.step = lambda: None
    stats = sac.update(data)
    assert stats["ExtremeLoss"].tolist() == [0.0, 1.0]
    head_grad = qf.q1.composition.grad  # task 1's composition row got no gradient
    assert head_grad[1].abs().sum() == 0 and head_grad[0].abs().sum() > 0
    for net, old in zip(nets, before):
        assert not torch.equal(net.composition[1], old[1])  # reset
    target = [m for m in sac.target_qf.modules() if isinstance(m, PaCoMLP)]
    torch.testing.assert_close(target[0].composition[1], qf.q1.composition[1])

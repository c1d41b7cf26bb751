"""The batched Q-switch against a per-(task, policy) loop, on constructed critics (reference §3.5)."""

import math

import numpy as np
import pytest
import torch

from learning.policies.behaviour import OwnPolicy, SwitchState
from learning.policies.mixture_policies_wrapper import MixtureOfPolicies
from learning.policies.qswitch_mixture_policies_wrapper import QSwitchMixturePolicy
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction


class TargetCritic:
    """Q1_i(s, a) = -||a - target_i||^2, Q2 = Q1 + offset_i: task i prefers actions near target_i."""

    def __init__(self, targets, q2_offset=None):
        self.targets = targets
        self.q2_offset = torch.zeros(len(targets)) if q2_offset is None else q2_offset

    def q1_value(self, s, a):
        return -((a - self.targets[:, None, :]) ** 2).sum(-1)

    def __call__(self, s, a):
        q1 = self.q1_value(s, a)
        return q1, q1 + self.q2_offset[:, None]


def fixed_mean_policy(means, log_std=-20.0, architecture="separate"):
    """T policies whose pre-tanh mean is means[j] whatever the state."""
    t, a = means.shape
    policy = TanhGaussianPolicy(architecture, t, 3, a, (4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        head = policy.net.output if architecture == "separate" else policy.net.heads
        head.bias[:, 0, :a] = means
        head.bias[:, 0, a:] = log_std
    return policy


@pytest.mark.parametrize("architecture", ["separate", "multihead"])
def test_qswitch_picks_the_policy_the_critic_prefers(architecture):
    means = torch.tensor([[-1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, -0.5]])
    policy = fixed_mean_policy(means, architecture=architecture)
    preferred = torch.tensor([2, 2, 0, 1])  # task i's critic wants policy preferred[i]'s action
    critic = TargetCritic(torch.tanh(means[preferred]))
    switch = QSwitchMixturePolicy(policy, critic)
    state = SwitchState.initial(4, 3, torch.device("cpu"))
    actions, chosen = switch.act(torch.randn(4, 3, 3), state)
    assert torch.equal(chosen, preferred[:, None].expand(4, 3))
    torch.testing.assert_close(actions, torch.tanh(means[preferred])[:, None].expand(4, 3, 2))


def test_qswitch_matches_a_loop_over_tasks_and_policies_on_random_networks():
    torch.manual_seed(0)
    t, e, obs_dim, act_dim = 5, 4, 3, 2
    policy = TanhGaussianPolicy("separate", t, obs_dim, act_dim, (16,))
    qf = TwinQFunction("separate", t, obs_dim, act_dim, (16,))
    obs = torch.randn(t, e, obs_dim)
    chosen = QSwitchMixturePolicy(policy, qf).act(obs, SwitchState.initial(t, e, torch.device("cpu")))[1]
    expected = torch.zeros(t, e, dtype=torch.long)
    with torch.no_grad():
        for i in range(t):
            for k in range(e):
                scores = []
                for j in range(t):
                    x = torch.zeros(t, 1, obs_dim)
                    x[j, 0] = obs[i, k]
                    mean_j = torch.tanh(policy.distribution_params(x)[0][j, 0])
                    inp = torch.zeros(t, 1, obs_dim + act_dim)
                    inp[i, 0] = torch.cat([obs[i, k], mean_j])
                    scores.append(qf.q1(inp)[i, 0, 0])
                expected[i, k] = int(torch.stack(scores).argmax())
    assert torch.equal(chosen, expected)


class TwoTargetCritic(TargetCritic):
    """Q1 prefers actions near targets, Q2 prefers actions near targets2."""

    def __init__(self, targets, targets2):
        super().__init__(targets)
        self.targets2 = targets2

    def __call__(self, s, a):
        return self.q1_value(s, a), -((a - self.targets2[:, None, :]) ** 2).sum(-1)


def test_min_q_sample_score_uses_both_critics():
    means = torch.tensor([[0.0], [0.9]])  # candidates 0 and tanh(0.9) = 0.716 (log-std -20)
    policy = fixed_mean_policy(means)
    # Task 0: Q1 wants 0.716 (policy 1) but Q2 wants -1, and min(Q1, Q2) is highest for policy 0.
    critic = TwoTargetCritic(torch.tensor([[0.716], [0.0]]), torch.tensor([[-1.0], [0.0]]))
    picks = {}
    for score in ("q1-mean", "min-q-sample"):
        picks[score] = QSwitchMixturePolicy(policy, critic, score=score).act(
            torch.zeros(2, 1, 3), SwitchState.initial(2, 1, torch.device("cpu")))[1].flatten().tolist()
    assert picks == {"q1-mean": [1, 0], "min-q-sample": [0, 0]}


def test_switch_is_reevaluated_every_policy_sampling_freq_steps():
    means = torch.tensor([[-1.0], [1.0]])
    policy = fixed_mean_policy(means)
    critic = TargetCritic(torch.tanh(means[[0, 0]]))
    switch = QSwitchMixturePolicy(policy, critic, sampling_freq=3)
    state = SwitchState.initial(2, 1, torch.device("cpu"))
    history = []
    for step in range(7):
        critic.targets = torch.tanh(means[[step % 2, step % 2]])  # preference flips every step
        history.append(int(switch.act(torch.zeros(2, 1, 3), state)[1][0, 0]))
    # re-evaluated at steps 0, 3, 6 only: preferences there are 0, 1, 0
    assert history == [0, 0, 0, 1, 1, 1, 0]
    state.episode_started(torch.tensor([[True], [False]]))
    assert state.since_reset.flatten().tolist() == [0, 7]


def test_own_policy_always_chooses_itself():
    policy = fixed_mean_policy(torch.zeros(3, 2))
    _, chosen = OwnPolicy(policy).act(torch.zeros(3, 2, 3), SwitchState.initial(3, 2, torch.device("cpu")))
    assert chosen.tolist() == [[0, 0], [1, 1], [2, 2]]


def test_uniform_and_domain_mixtures_choose_with_configured_frequencies():
    torch.manual_seed(0)
    policy = fixed_mean_policy(torch.zeros(3, 1))
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
    mixture = MixtureOfPolicies(policy, probs)
    counts = torch.zeros(3, 3)
    state = SwitchState.initial(3, 200, torch.device("cpu"))
    for _ in range(20):
        chosen = mixture.act(torch.zeros(3, 200, 3), state)[1]
        counts += torch.nn.functional.one_hot(chosen, 3).sum(1)
    freq = counts / counts.sum(1, keepdim=True)
    torch.testing.assert_close(freq, probs, atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="rows"):
        MixtureOfPolicies(policy, torch.ones(3, 3))


def tanh_gaussian_moments(mean, std, nodes=201):
    """E[tanh(mean + std Z)] and its std, Z ~ N(0, 1), by Gauss-Hermite quadrature (numpy)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    values = np.tanh(mean + std * x)
    first = (w * values).sum()
    return first, np.sqrt((w * values**2).sum() - first**2)


def test_qswitch_trains_with_a_sample_and_evaluates_with_the_mean_of_the_chosen_policy():
    torch.manual_seed(0)
    means = torch.tensor([[-1.0], [0.0], [1.2]])
    policy = fixed_mean_policy(means, log_std=math.log(2.0))  # wide: std 2 before tanh
    preferred = torch.tensor([2, 0, 1])
    switch = QSwitchMixturePolicy(policy, TargetCritic(torch.tanh(means[preferred])))
    t, e = 3, 4000
    obs = torch.randn(t, e, 3)
    moments = [tanh_gaussian_moments(float(m), 2.0) for m in means[:, 0]]
    assert min(abs(a[0] - b[0]) for a, b in zip(moments, moments[1:])) > 0.2  # distinguishable

    actions, chosen = switch.act(obs, SwitchState.initial(t, e, torch.device("cpu")))
    again, _ = switch.act(obs, SwitchState.initial(t, e, torch.device("cpu")))
    assert torch.equal(chosen, preferred[:, None].expand(t, e))
    assert not torch.allclose(actions, again)  # fresh samples on every call
    for i, j in enumerate(preferred.tolist()):
        a = actions[i, :, 0].double()
        mode = math.tanh(means[j, 0].item())
        assert (a - mode).abs().lt(1e-3).double().mean() < 0.01  # not the squashed mean
        assert abs(a.mean().item() - moments[j][0]) < 0.05, (i, j)
        assert abs(a.std().item() - moments[j][1]) < 0.05, (i, j)

    det, det_chosen = switch.act(obs, SwitchState.initial(t, e, torch.device("cpu")), True)
    assert torch.equal(det_chosen, chosen)
    expected = torch.tanh(means[preferred])[:, None].expand(t, e, 1)
    torch.testing.assert_close(det, expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize("deterministic", [False, True])
def test_min_q_sample_follows_min_of_both_critics_and_q1_mean_follows_q1(deterministic):
    torch.manual_seed(0)
    means = torch.atanh(torch.tensor([[-0.6], [0.0], [0.6]]))
    policy = fixed_mean_policy(means, log_std=math.log(0.01))  # samples within ~0.03 of the mean
    # actions on offer: -0.6, 0, 0.6. Task 0: Q1 wants 0.6, min(Q1, Q2) wants 0 (Q2 wants -0.6).
    # Task 1: Q1 wants -0.6, min wants 0. Task 2: both want 0.6.
    critic = TwoTargetCritic(torch.tensor([[0.6], [-0.6], [0.6]]), torch.tensor([[-0.6], [0.1], [0.6]]))
    obs = torch.zeros(3, 50, 3)
    picks = {}
    for score in ("q1-mean", "min-q-sample"):
        switch = QSwitchMixturePolicy(policy, critic, score=score)
        picks[score] = switch.act(obs, SwitchState.initial(3, 50, torch.device("cpu")),
                                  deterministic)[1]
    assert torch.equal(picks["q1-mean"], torch.tensor([2, 0, 2])[:, None].expand(3, 50))
    assert torch.equal(picks["min-q-sample"], torch.tensor([1, 1, 2])[:, None].expand(3, 50))


class IncreasingCritic:
    """Q1_i(s, a) = Q2_i(s, a) = a: every task prefers the largest action."""

    def q1_value(self, s, a):
        return a[..., 0]

    def __call__(self, s, a):
        return a[..., 0], a[..., 0]


def test_min_q_sample_scores_the_samples_and_executes_the_scored_sample():
    torch.manual_seed(0)
    policy = fixed_mean_policy(torch.zeros(2, 1))
    with torch.no_grad():
        policy.net.output.bias[1, 0, 1] = math.log(2.0)  # policy 1: same mean, wide
    obs, t, e = torch.zeros(2, 2000, 3), 2, 2000
    q1_mean = QSwitchMixturePolicy(policy, IncreasingCritic(), score="q1-mean")
    # equal means: the tie goes to policy 0 every time
    assert torch.equal(q1_mean.act(obs, SwitchState.initial(t, e, torch.device("cpu")))[1],
                       torch.zeros(t, e, dtype=torch.long))
    switch = QSwitchMixturePolicy(policy, IncreasingCritic(), score="min-q-sample")
    actions, chosen = switch.act(obs, SwitchState.initial(t, e, torch.device("cpu")))
    # policy 0 offers ~0, policy 1 a wide sample: it wins exactly when its sample is positive,
    # and the action executed is that winning sample, not a fresh one
    frac = chosen.double().mean().item()
    assert 0.45 < frac < 0.55
    assert torch.all(actions[chosen == 1][:, 0] > 0)
    assert torch.all(actions[chosen == 0][:, 0].abs() < 1e-6)

"""CTPG guide: losses against hand computation, hindsight, gates, behaviour, segments (anchors §1)."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from learning.algorithms.ctpg import (
    CTPGGuide,
    block_mask,
    comparable_critic_loss,
    control_value,
    filter_mask,
    guide_actor_loss,
    guide_critic_loss,
    guide_temperature_loss,
    hindsight_relabel,
    segment_log_likelihoods,
    success_block_mask,
)
from learning.policies.behaviour import SwitchState
from learning.policies.ctpg_guide import CTPGBehaviour, masked_guide_choice
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.segment_buffer import SegmentBatch, SegmentBuffer, SegmentRecorder

# ----------------------------------------------------------------------------- fixed tables
# T = 2 tasks, S = 3 one-hot states, C = 2 candidates: table[i][s][j].
LOGITS = [[[0.0, 1.0], [0.5, -0.5], [2.0, 0.0]], [[1.0, 1.0], [0.0, -1.0], [-1.0, 0.5]]]
TQ1 = [[[1.0, 2.0], [0.5, 3.0], [4.0, -1.0]], [[2.0, 0.0], [1.0, 1.0], [3.0, 5.0]]]
TQ2 = [[[1.5, 1.0], [0.0, 3.5], [3.0, 0.0]], [[1.0, 0.5], [2.0, 0.5], [4.0, 2.0]]]
Q1 = [[[0.3, 0.1], [0.2, 0.4], [0.0, 0.0]], [[0.1, 0.2], [0.3, 0.0], [0.5, 0.5]]]
Q2 = [[[0.6, -0.2], [0.1, 0.1], [0.2, 0.3]], [[0.0, 0.4], [-0.3, 0.2], [0.1, 0.1]]]
CONTROL_LOGP = [[-1.0, 0.5, 2.0], [0.3, -0.7, 1.2]]  # log pi_i(a~|s) of the control policy
# Segments (task, row): states, valid, rewards, end state, terminal, stored j.
SEGMENTS = [
    [([0, 1, 2], [1, 1, 1], [1.0, 2.0, 3.0], 2, 0.0, 1),  # full K = 3 steps
     ([1, 2, 0], [1, 1, 0], [0.5, -1.0, 0.0], 0, 0.0, 0)],  # truncated after n = 2: gamma^2
    [([2, 0, 0], [1, 0, 0], [2.0, 0.0, 0.0], 1, 1.0, 1),  # terminated after 1 step
     ([0, 1, 1], [1, 1, 1], [1.0, 1.0, 1.0], 1, 0.0, 0)],
]
GAMMA, SCALE = 0.9, 0.5


class Table(nn.Module):
    """obs (T, B, S) one-hot -> table[t, s] (T, B, O)."""

    def __init__(self, table):
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs):
        return torch.einsum("tbs,tso->tbo", obs, self.table)


class TwinTable(nn.Module):
    def __init__(self, t1, t2):
        super().__init__()
        self.q1, self.q2 = Table(t1), Table(t2)

    def forward(self, obs):
        return self.q1(obs), self.q2(obs)


def one_hot(idx):
    return torch.nn.functional.one_hot(torch.tensor(idx), 3).float()


def table_batch():
    rows = [[seg for seg in task] for task in SEGMENTS]
    return SegmentBatch(
        states=one_hot([[r[0] for r in task] for task in rows]),
        actions=torch.zeros(2, 2, 3, 1),
        rewards=torch.tensor([[r[2] for r in task] for task in rows]),
        valid=torch.tensor([[r[1] for r in task] for task in rows], dtype=torch.float32),
        guide_action=torch.tensor([[r[5] for r in task] for task in rows]),
        end_obs=one_hot([[r[3] for r in task] for task in rows]),
        terminal=torch.tensor([[r[4] for r in task] for task in rows]))


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [x / sum(e) for x in e]


def hand_v(i, s, alpha):
    """Plain-Python V(s) = sum_j p_j (min(TQ1, TQ2) - alpha log p_j); alpha None: no entropy."""
    p = softmax(LOGITS[i][s])
    return sum(pj * (min(TQ1[i][s][j], TQ2[i][s][j]) - (alpha or 0.0) * math.log(pj))
               for j, pj in enumerate(p))


def hand_critic_losses(alpha, control_alpha=None):
    """Expected (T,) loss; with control_alpha: the comparable critic's target instead."""
    out = []
    for i, task in enumerate(SEGMENTS):
        total = 0.0
        for states, valid, rewards, end, term, j in task:
            n = sum(valid)
            ret = 0.0
            for k in range(n):
                r = SCALE * rewards[k]
                if control_alpha is not None:
                    r -= control_alpha[i] * CONTROL_LOGP[i][states[k]]
                ret += GAMMA ** k * r
            v = hand_v(i, end, None if control_alpha is not None else alpha[i])
            y = ret + GAMMA ** n * (1 - term) * v
            total += (Q1[i][states[0]][j] - y) ** 2 + (Q2[i][states[0]][j] - y) ** 2
        out.append(total / len(task))
    return torch.tensor(out)


def test_guide_critic_loss_matches_hand_computation():
    alpha = [0.5, 0.2]
    batch = table_batch()
    loss, stats = guide_critic_loss(batch, batch.guide_action, TwinTable(Q1, Q2), TwinTable(TQ1, TQ2),
                                    Table(LOGITS)(batch.end_obs), torch.tensor(alpha), GAMMA, SCALE)
    torch.testing.assert_close(loss, hand_critic_losses(alpha))
    torch.testing.assert_close(stats["GuideQf1Loss"] + stats["GuideQf2Loss"], loss)


def test_comparable_critic_loss_matches_hand_computation():
    control_alpha = [0.4, 0.1]
    batch = table_batch()
    control_log_prob = torch.einsum("tbks,ts->tbk", batch.states, torch.tensor(CONTROL_LOGP))
    loss, _ = comparable_critic_loss(batch, batch.guide_action, TwinTable(Q1, Q2), TwinTable(TQ1, TQ2),
                                     Table(LOGITS)(batch.end_obs), control_log_prob,
                                     torch.tensor(control_alpha), GAMMA, SCALE)
    torch.testing.assert_close(loss, hand_critic_losses(None, control_alpha))


def test_guide_actor_and_temperature_losses_match_hand_computation():
    alpha, log_alpha = [0.5, 0.2], torch.tensor([math.log(0.5), math.log(0.2)])
    batch = table_batch()
    loss, entropy, _ = guide_actor_loss(batch.obs, Table(LOGITS), TwinTable(Q1, Q2), torch.tensor(alpha))
    starts = [[seg[0][0] for seg in task] for task in SEGMENTS]
    exp_loss, exp_h = [], []
    for i in range(2):
        rows, hs = [], []
        for s in starts[i]:
            p = softmax(LOGITS[i][s])
            rows.append(sum(pj * (alpha[i] * math.log(pj) - min(Q1[i][s][j], Q2[i][s][j]))
                            for j, pj in enumerate(p)))
            hs.append(-sum(pj * math.log(pj) for pj in p))
        exp_loss.append(sum(rows) / 2)
        exp_h.append(hs)
    torch.testing.assert_close(loss, torch.tensor(exp_loss))
    torch.testing.assert_close(entropy, torch.tensor(exp_h))
    target = 0.98 * math.log(2)
    mean_gap = [sum(h) / 2 - target for h in exp_h]
    torch.testing.assert_close(guide_temperature_loss(log_alpha, entropy, target),
                               torch.tensor([alpha[i] * mean_gap[i] for i in range(2)]))
    torch.testing.assert_close(guide_temperature_loss(log_alpha, entropy, target, form="log_alpha"),
                               torch.tensor([math.log(alpha[i]) * mean_gap[i] for i in range(2)]))


# ----------------------------------------------------------------------------- hindsight
def fixed_mean_policy(means, log_std=-20.0, obs_dim=3):
    """T separate policies whose pre-tanh mean is means[j] whatever the state."""
    t, a = means.shape
    policy = TanhGaussianPolicy("separate", t, obs_dim, a, (4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.net.output.bias[:, 0, :a] = means
        policy.net.output.bias[:, 0, a:] = log_std
    return policy


def test_hindsight_relabels_to_the_policy_that_explains_the_actions():
    torch.manual_seed(0)
    means = torch.tensor([[-1.0, 0.5], [0.0, 0.0], [1.0, -0.5]])
    policy = fixed_mean_policy(means, log_std=-1.0)
    source = torch.tensor([[2, 0], [1, 2], [0, 1]])  # (T_task, B): who produced the actions
    valid = torch.tensor([1.0, 1.0, 0.0])
    actions = torch.tanh(means[source])[:, :, None].expand(3, 2, 3, 2).clone()
    # the invalid last step holds policy (source + 1)'s action: it must be ignored
    actions[:, :, 2] = torch.tanh(means[(source + 1) % 3])
    batch = SegmentBatch(torch.randn(3, 2, 3, 3), actions, torch.zeros(3, 2, 3),
                         valid.expand(3, 2, 3), torch.zeros(3, 2, dtype=torch.long),
                         torch.zeros(3, 2, 3), torch.zeros(3, 2))
    assert torch.equal(hindsight_relabel(batch, policy), source)
    # the log-likelihood of one entry against torch.distributions
    ll = segment_log_likelihoods(batch, policy)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(means[1], math.exp(-1.0)), [torch.distributions.TanhTransform()])
    a = actions[2, 1, :2].clamp(-1 + 1e-6, 1 - 1e-6)
    torch.testing.assert_close(ll[1, 2, 1], dist.log_prob(a).sum(), rtol=1e-4, atol=1e-4)
    shared = TanhGaussianPolicy("shared", 3, 3, 2, (4,))
    with pytest.raises(ValueError, match="per-task"):
        hindsight_relabel(batch, shared)


# ----------------------------------------------------------------------------- gates
def test_filter_mask_control_value_and_block_gates():
    qc = torch.tensor([[[1.0, 0.0, 2.0]], [[-1.0, -2.0, -3.0]]])
    assert torch.equal(filter_mask(qc, torch.tensor([[1.0], [0.0]])),
                       torch.tensor([[[True, False, True]], [[False, False, False]]]))

    class Pol:  # action = state, log_prob = sum of state
        def __call__(self, s):
            return SimpleNamespace(action=s, log_prob=s.sum(-1))

    def qf(s, a):
        return 2 * a[..., 0], 4 * a[..., 0]

    obs = torch.tensor([[[1.0, 0.5], [2.0, 0.0]], [[0.0, 1.0], [1.0, 1.0]]])
    v = control_value(Pol(), qf, obs, torch.log(torch.tensor([0.5, 2.0])), num_samples=5)
    # V = mean(Q1, Q2) - alpha * log pi = 3 s_0 - alpha (s_0 + s_1)
    torch.testing.assert_close(v, torch.tensor([[3 - 0.75, 6 - 1.0], [0 - 2.0, 3 - 4.0]]))

    log_alpha = torch.tensor([0.0, -1.0, -2.0, 0.5])  # mean -0.625
    assert block_mask(log_alpha).tolist() == [True, False, False, True]
    assert success_block_mask(torch.tensor([0.9, 0.8, 0.1])).tolist() == [True, False, False]


def test_masked_choice_never_picks_a_masked_candidate_and_falls_back():
    torch.manual_seed(0)
    e = 4000
    logits = torch.tensor([[0.0, 3.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[:, None].expand(3, e, 3)
    allowed = torch.tensor([[True, False, True], [False, False, False],
                            [True, True, True]])[:, None].expand(3, e, 3)
    choice, any_allowed = masked_guide_choice(logits, allowed, deterministic=False)
    freq = torch.nn.functional.one_hot(choice, 3).float().mean(1)
    assert freq[0, 1] == 0  # masked, although the most likely a priori
    torch.testing.assert_close(freq[0], torch.tensor([0.5, 0.0, 0.5]), atol=0.03, rtol=0)
    assert (choice[1] == 1).all() and not any_allowed[1].any()  # all masked -> own policy
    p2 = softmax([0.0, 0.0, 1.0])
    torch.testing.assert_close(freq[2], torch.tensor(p2), atol=0.03, rtol=0)
    # the released code's form: the mask only acts through the all-masked fallback
    choice, _ = masked_guide_choice(logits, allowed, deterministic=False, mask_logits=False)
    freq = torch.nn.functional.one_hot(choice, 3).float().mean(1)
    torch.testing.assert_close(freq[0, 1], torch.tensor(softmax([0.0, 3.0, 0.0])[1]), atol=0.03,
                               rtol=0)
    assert (choice[1] == 1).all()
    choice, _ = masked_guide_choice(logits, allowed, deterministic=True)
    assert choice[:, 0].tolist() in ([0, 1, 2], [2, 1, 2])  # argmax over allowed (0 and 2 tie)


# ----------------------------------------------------------------------------- behaviour
class StubGuide:
    def __init__(self, logits, qc):
        self.l, self.qc = torch.tensor(logits), torch.tensor(qc)

    def logits(self, obs):
        return self.l[:, None].expand(obs.shape[0], obs.shape[1], -1)

    def comparable_scores(self, obs):
        return self.qc[:, None].expand(obs.shape[0], obs.shape[1], -1)


MEANS = torch.tensor([[-1.0], [0.0], [1.0]])


def make_behaviour(e=2000, log_std=-20.0, **kw):
    policy = fixed_mean_policy(MEANS, log_std)
    values = torch.tensor([0.0, 0.0, 0.0])  # V_i(s) = Q_i = 0 (alpha ~ 0)

    def qf(s, a):
        q = values[:, None].expand(s.shape[0], s.shape[1])
        return q, q

    guide = StubGuide([[0.0, 3.0, 0.0], [5.0, 0.0, 0.0], [5.0, 0.0, 0.0]],
                      [[1.0, -1.0, 1.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    kw.setdefault("filter_start", 0)
    beh = CTPGBehaviour(policy, qf, guide, torch.full((3,), -60.0), **kw)
    return beh, SwitchState.initial(3, e, torch.device("cpu")), torch.randn(3, e, 3)


def test_behaviour_gates_and_their_ablation_switches():
    torch.manual_seed(0)
    beh, state, obs = make_behaviour()
    beh.set_blocked(torch.tensor([False, False, True]))
    actions, chosen = beh.act(obs, state)
    torch.testing.assert_close(actions, torch.tanh(MEANS[chosen]))
    assert not (chosen[0] == 1).any() and (chosen[0] != 0).any()  # filter
    assert (chosen[1] == 1).all()  # all masked -> own
    assert (chosen[2] == 2).all()  # blocked -> own, although the guide prefers 0
    assert beh.last_decision.all() and torch.equal(beh.last_guide_action, chosen)
    stats = beh.selection_stats()
    assert stats["Train/LocalPolicy0/Guide1Prob"] == 0.0
    assert abs(stats["Train/LocalPolicy0/Guide0Prob"] - 0.5) < 0.03
    assert stats["Train/LocalPolicy1/Guide1Prob"] == 1.0
    assert stats["Train/LocalPolicy1/GuidedFraction"] == 0.0
    assert stats["Train/LocalPolicy0/GuidedFraction"] == 1.0
    assert abs(stats["Train/LocalPolicy0/FilterMaskedFraction"] - 1 / 3) < 1e-6
    assert stats["Train/LocalPolicy2/BlockedDecisions"] == 1.0

    for kw, task, check in [
        ({"filter_gate": False}, 0, lambda c: (c == 1).float().mean() > 0.85),
        ({"filter_gate": False}, 1, lambda c: (c == 0).float().mean() > 0.95),
        ({"filter_start": 100}, 0, lambda c: (c == 1).float().mean() > 0.85),
        ({"mask_logits": False}, 0, lambda c: (c == 1).float().mean() > 0.85),
        ({"block_gate": False}, 2, lambda c: (c == 0).float().mean() > 0.95),
    ]:
        beh, state, obs = make_behaviour(**kw)
        beh.set_blocked(torch.tensor([False, False, True]))
        assert check(beh.act(obs, state)[1][task]), kw


def test_behaviour_decides_every_k_steps_and_latches_blocks_at_episode_start():
    torch.manual_seed(1)
    policy = fixed_mean_policy(MEANS)
    guide = StubGuide([[0.0, 0.0, 0.0]] * 3, [[0.0] * 3] * 3)  # uniform guide, no filtering
    beh = CTPGBehaviour(policy, None, guide, torch.zeros(3), guide_step=3, filter_gate=False)
    state = SwitchState.initial(3, 50, torch.device("cpu"))
    obs = torch.zeros(3, 50, 3)
    decisions, choices = [], []
    for step in range(8):
        if step == 1:
            beh.set_blocked(torch.tensor([True, False, False]))
        if step == 5:  # episodes of env 0 restart before step 5
            state.episode_started(torch.tensor([[True] + [False] * 49] * 3))
        _, chosen = beh.act(obs, state)
        decisions.append(beh.last_decision.clone())
        choices.append(chosen)
    expected = [0, 3, 6]
    for step in range(8):
        assert bool(decisions[step][:, 1:].all()) == (step in expected)
        if step not in expected:
            assert torch.equal(choices[step][:, 1:], choices[step - 1][:, 1:])  # sticky
    assert decisions[5][:, 0].all() and not decisions[6][:, 0].any()  # restarted at step 5
    assert (choices[3][0, 1:] != 0).any()  # the block waits for the episode start
    assert (choices[5][0, 0] == 0) and (choices[7][0, 0] == 0)  # env 0 restarted: blocked
    assert (choices[6][0, 1:] != 0).any()

    beh1 = CTPGBehaviour(policy, None, guide, torch.zeros(3), guide_step=1, filter_gate=False)
    state = SwitchState.initial(3, 50, torch.device("cpu"))
    for _ in range(3):
        beh1.act(obs, state)
        assert beh1.last_decision.all()


def test_deterministic_behaviour_acts_with_the_argmax_mean():
    beh, state, obs = make_behaviour(e=4, log_std=0.0)
    actions, chosen = beh.act(obs, state, deterministic=True)
    assert chosen.tolist() == [[0] * 4, [1] * 4, [0] * 4]  # 0 and 2 tie for task 0: first
    torch.testing.assert_close(actions, torch.tanh(MEANS[chosen]))


# ----------------------------------------------------------------------------- learner
def test_hindsight_switch_decides_which_guide_q_entry_is_trained():
    torch.manual_seed(0)
    means = torch.tensor([[-1.0], [1.0]])
    policy = fixed_mean_policy(means, log_std=-1.0)
    batch = table_batch()
    source = torch.tensor([[1, 1], [0, 0]])  # the actions came from these policies
    batch = batch._replace(actions=torch.tanh(means[source])[:, :, None].expand(2, 2, 3, 1).clone(),
                           guide_action=torch.tensor([[0, 0], [1, 1]]))
    for hindsight, trained in ((True, source), (False, batch.guide_action)):
        guide = CTPGGuide(Table(LOGITS), TwinTable(Q1, Q2), TwinTable(Q1, Q2), 2, grad_clip=None)
        stats = guide.update(batch, policy, torch.zeros(2), hindsight=hindsight)
        changed = guide.critic.q1.table.detach() != torch.tensor(Q1)  # (T, S, C)
        for i in range(2):
            start = SEGMENTS[i][0][0][0], SEGMENTS[i][1][0][0]
            expected = torch.zeros(3, 2, dtype=torch.bool)
            expected[list(start), trained[i].tolist()] = True
            assert torch.equal(changed[i], expected), (hindsight, i)
        assert stats["HindsightRelabelled"].tolist() == ([1.0, 1.0] if hindsight else [0.0, 0.0])


def test_update_caps_the_temperature_and_moves_targets_by_tau():
    torch.manual_seed(0)
    guide = CTPGGuide.build("multihead", 3, 4, (8,), tau=0.25, lr=0.1)
    batch = SegmentBatch(torch.randn(3, 6, 2, 4), torch.zeros(3, 6, 2, 1), torch.randn(3, 6, 2),
                         torch.ones(3, 6, 2), torch.randint(0, 3, (3, 6)), torch.randn(3, 6, 4),
                         torch.zeros(3, 6))
    old_target = [p.clone() for p in guide.target_critic.parameters()]
    guide.target_entropy = 10.0  # entropy below target: alpha wants to grow past the cap
    guide.update(batch, fixed_mean_policy(torch.zeros(3, 1), obs_dim=4), torch.zeros(3), hindsight=True)
    assert torch.equal(guide.alpha().detach(), torch.ones(3))  # would exceed the cap unclamped
    for old, new, online in zip(old_target, guide.target_critic.parameters(), guide.critic.parameters()):
        torch.testing.assert_close(new, 0.75 * old + 0.25 * online)
    assert math.isclose(CTPGGuide.build("multihead", 5, 4, (8,)).target_entropy, 0.98 * math.log(5))


# ----------------------------------------------------------------------------- segments
def test_segment_buffer_per_task_rings_and_empty_tasks():
    buf = SegmentBuffer(3, capacity=3, obs_dim=1, act_dim=1, K=2)

    def segs(task, marks):
        n = len(marks)
        m = torch.tensor(marks, dtype=torch.float32)
        return torch.tensor(task), SegmentBatch(
            m[:, None, None].expand(n, 2, 1), torch.zeros(n, 2, 1), m[:, None].expand(n, 2),
            torch.ones(n, 2), torch.zeros(n, dtype=torch.long), m[:, None], torch.zeros(n))

    buf.add(*segs([0, 1, 0, 0, 0, 0], [1, 10, 2, 3, 4, 5]))  # 5 for task 0 in one call
    assert buf.size.tolist() == [3, 1, 0]
    buf.add(*segs([0], [6]))
    stored = buf._storage["end_obs"][0, :3, 0].tolist()
    assert sorted(stored) == [4.0, 5.0, 6.0] and stored[buf.ptr[0] - 1] == 6.0
    batch = buf.sample(200)
    assert set(batch.end_obs[0, :, 0].tolist()) == {4.0, 5.0, 6.0}
    assert set(batch.end_obs[1, :, 0].tolist()) == {10.0}
    assert batch.weight[:2].eq(1).all() and batch.weight[2].eq(0).all()
    assert buf.sample(4, active=torch.tensor([False, True, False])).weight[:, 0].tolist() == [0, 1, 0]
    assert buf.sample(4, active=torch.tensor([False, False, True])).weight[:, 0].tolist() == [1, 1, 0]
    with pytest.raises(RuntimeError):
        SegmentBuffer(2, 4, 1, 1, 2).sample(3)


def test_segment_recorder_builds_segments_from_a_step_stream():
    """T=2, E=1, K=3. Task 0: episode truncated after 4 steps, then a new one. Task 1: terminated
    after 2 steps. obs at step g is 10 g; the final obs of an episode is 10 g + 5."""
    buf = SegmentBuffer(2, capacity=10, obs_dim=1, act_dim=1, K=3)
    rec = SegmentRecorder(buf, envs_per_task=1)
    ends = {0: {3: "trunc"}, 1: {1: "term"}}
    since, sizes = [0, 0], []
    for g in range(7):
        decision = torch.tensor([[since[0] % 3 == 0], [since[1] % 3 == 0]])
        done = torch.tensor([[g in ends[0]], [g in ends[1]]])
        term = torch.tensor([[ends[0].get(g) == "term"], [ends[1].get(g) == "term"]])
        obs = torch.full((2, 1, 1), 10.0 * g)
        nxt = obs + torch.where(done, 5.0, 10.0)[..., None]
        rec.step(obs, -obs, torch.full((2, 1), float(g)), nxt, term, done, decision,
                 torch.tensor([[g % 2], [1]]))
        since = [0 if done[i, 0] else since[i] + 1 for i in range(2)]
        sizes.append(buf.size.tolist())
    # emitted at the K-th step or at the episode's last step, not later
    assert sizes == [[0, 0], [0, 1], [1, 1], [2, 1], [2, 2], [2, 2], [3, 2]]
    # task 0: [0,1,2] -> 30; [3] truncated -> 35; [4,5,6] -> 70; task 1: [0,1] terminated -> 15;
    # then (no done) [2,3,4] -> 50 and [5,6] still open.
    s = buf._storage
    assert buf.size.tolist() == [3, 2]
    assert s["states"][0, :3, :, 0].tolist() == [[0, 10, 20], [30, 0, 0], [40, 50, 60]]
    assert s["valid"][0, :3].tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 1]]
    assert s["end_obs"][0, :3, 0].tolist() == [30, 35, 70]
    assert s["terminal"][0, :3].tolist() == [0, 0, 0]
    assert s["guide_action"][0, :3].tolist() == [0, 1, 0]
    assert s["rewards"][0, 2].tolist() == [4, 5, 6] and s["actions"][0, 1, :, 0].tolist() == [-30, 0, 0]
    assert s["states"][1, :2, :, 0].tolist() == [[0, 10, 0], [20, 30, 40]]
    assert s["end_obs"][1, :2, 0].tolist() == [15, 50] and s["terminal"][1, :2].tolist() == [1, 0]
    # carry-over: the open segment of task 1 finishes on the next call
    obs = torch.full((2, 1, 1), 70.0)
    rec.step(obs, -obs, torch.full((2, 1), 7.0), obs + 10, torch.zeros(2, 1), torch.zeros(2, 1),
             torch.tensor([[False], [False]]), torch.zeros(2, 1, dtype=torch.long))
    assert buf.size.tolist() == [3, 3]
    assert s["states"][1, 2, :, 0].tolist() == [50, 60, 70] and s["end_obs"][1, 2, 0] == 80
    # a decision while a segment is open closes it first (non-terminal, shorter than K)
    rec.step(obs, -obs, torch.ones(2, 1), obs + 10, torch.zeros(2, 1), torch.zeros(2, 1),
             torch.tensor([[True], [True]]), torch.zeros(2, 1, dtype=torch.long))
    rec.step(obs + 10, -obs, torch.ones(2, 1), obs + 20, torch.zeros(2, 1), torch.zeros(2, 1),
             torch.tensor([[True], [False]]), torch.zeros(2, 1, dtype=torch.long))
    assert buf.size.tolist() == [4, 3]
    assert buf._storage["valid"][0, 3].tolist() == [1, 0, 0]
    assert buf._storage["end_obs"][0, 3, 0] == 80 and buf._storage["terminal"][0, 3] == 0


def test_behaviour_recorder_buffer_and_update_run_together():
    """Wiring smoke test: the behaviour's decision flags feed the recorder; its segments train."""
    torch.manual_seed(0)
    t, e, d, a, k = 2, 3, 4, 2, 2
    policy = TanhGaussianPolicy("separate", t, d, a, (8,))
    qf = TwinQFunction("separate", t, d, a, (8,))
    guide = CTPGGuide.build("multihead", t, d, (8,))
    beh = CTPGBehaviour(policy, qf, guide, torch.zeros(t), guide_step=k, filter_start=0)
    buf = SegmentBuffer(t, 50, d, a, k)
    rec, state = SegmentRecorder(buf, e), SwitchState.initial(t, e, torch.device("cpu"))
    obs = torch.randn(t, e, d)
    for _ in range(9):
        action, _ = beh.act(obs, state)
        nxt, done = torch.randn(t, e, d), torch.rand(t, e) < 0.2
        rec.step(obs, action, torch.randn(t, e), nxt, done & (torch.rand(t, e) < 0.5), done,
                 beh.last_decision, beh.last_guide_action)
        state.episode_started(done)
        obs = nxt
    assert len(buf) >= t * e * 3
    stats = guide.update(buf.sample(8), policy, torch.zeros(t), hindsight=True)
    assert all(torch.isfinite(v).all() and v.shape == (t,) for v in stats.values())

"""CTPG wiring: what connects the guide to a run (He et al., NeurIPS 2024; anchors §1.4-§1.8).

The guide losses are checked against hand computation in tests/test_ctpg.py. Here: one
:meth:`CTPGGuide.update` against an independent per-task loop (its own MLP forward, hindsight
by torch.distributions, targets, torch's Adam, Polyak), the arguments the update passes to
each loss, :class:`GuideTraining`'s hooks (guide steps per collected step, which tasks train
the guide, the block gate's source, ties and refresh) with spies, and the trainer's calls of
those hooks in a tiny run (filter-gate units, guide steps, evaluation refresh, reward scale).
Planted bugs: tests/planted/ctpg_wiring.txt.
"""

import math

import pytest
import torch

from experiment_utils import resolve_config
from garage_experiments import build_trainer
from learning.algorithms import ctpg
from learning.algorithms.ctpg import CTPGGuide, GuideCritic, block_mask, control_side
from learning.algorithms.ctpg_training import GuideTraining
from learning.networks.separate import SeparateMLP
from learning.policies.ctpg_guide import CTPGBehaviour
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.replay_buffer import TransitionBatch
from learning.segment_buffer import SegmentBatch, SegmentBuffer, SegmentRecorder

T, B, K, D, A, H = 3, 4, 3, 3, 2, 5
GAMMA, SCALE, TAU, LR = 0.9, 0.5, 0.3, 0.01


def random_batch(seed=0, t=T, b=B, k=K, d=D, a=A):
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(1, k + 1, (t, b, 1), generator=g)
    valid = (torch.arange(k) < n).float()
    return SegmentBatch(torch.randn(t, b, k, d, generator=g) * valid[..., None],
                        (torch.rand(t, b, k, a, generator=g) * 1.6 - 0.8) * valid[..., None],
                        torch.randn(t, b, k, generator=g) * valid, valid,
                        torch.randint(0, t, (t, b), generator=g), torch.randn(t, b, d, generator=g),
                        (torch.rand(t, b, generator=g) < 0.4).float(), torch.ones(t, b))


# ----------------------------------------------------------------------------- independent loop
def task_slice(module, i):
    """Task i's slice of every stacked (T, ...) parameter, as float64 leaves: name -> tensor."""
    return {name: p.detach()[i].double().clone().requires_grad_(True)
            for name, p in module.named_parameters()}


def mlp(params, prefix, x):
    """Plain ReLU MLP from task-sliced SeparateMLP weights (in, out) and biases (1, out)."""
    n_hidden = len({k[len(prefix):].split(".")[1] for k in params if k.startswith(prefix + "hidden.")})
    for layer in range(n_hidden):
        x = torch.relu(x @ params[f"{prefix}hidden.{layer}.weight"]
                       + params[f"{prefix}hidden.{layer}.bias"].reshape(-1))
    return x @ params[prefix + "output.weight"] + params[prefix + "output.bias"].reshape(-1)


def tanh_normal_log_prob(a, mean, std):
    """log density of a = tanh(u), u ~ N(mean, std), summed over the action axis."""
    u = torch.atanh(a)
    return (torch.distributions.Normal(mean, std).log_prob(u) - torch.log(1 - a ** 2)).sum(-1)


def reference_update(guide, policy, batch, control_log_alpha, eps, hindsight, optimizer):
    """One guide step computed task by task, segment by segment, in float64 (anchors §1.4-§1.8;
    discrete SAC, Christodoulou 2019, eqs. 9-12) with torch's ``optimizer`` class (Adam or SGD)
    per task. Returns (new parameters per task, stats)."""
    out, stats = [], {k: [] for k in ("GuideQTarget", "CompQTarget", "GuideQf1Loss", "CompQf1Loss",
                                      "GuidePolicyLoss", "GuideAlphaLoss", "HindsightRelabelled",
                                      "CompQEntropyBonus")}
    c_alpha = control_log_alpha.double().exp()
    for i in range(T):
        pol, act = task_slice(policy, i), task_slice(guide.actor, i)
        crit, comp = task_slice(guide.critic, i), task_slice(guide.comparable_critic, i)
        tcrit = {k: v.detach() for k, v in task_slice(guide.target_critic, i).items()}
        tcomp = {k: v.detach() for k, v in task_slice(guide.target_comparable_critic, i).items()}
        log_alpha = guide.log_alpha.detach()[i].double().clone().requires_grad_(True)
        alpha = log_alpha.detach().exp()
        pols = [task_slice(policy, j) for j in range(T)]
        states, actions = batch.states[i].double(), batch.actions[i].double()
        ys, ycs, js, bonuses = [], [], [], []
        for b in range(B):
            n = int(batch.valid[i, b].sum())
            with torch.no_grad():
                if hindsight:  # every policy's log-likelihood of the stored actions
                    ll = []
                    for j in range(T):
                        total = 0.0
                        for k in range(n):
                            mean, log_std = mlp(pols[j], "net.", states[b, k]).split(A)
                            total += tanh_normal_log_prob(actions[b, k], mean, log_std.clamp(-20, 2).exp())
                        ll.append(float(total))
                    js.append(max(range(T), key=lambda j: ll[j]))
                else:
                    js.append(int(batch.guide_action[i, b]))
                end = batch.end_obs[i, b].double()
                p = torch.softmax(mlp(act, "", end), -1)
                tq = torch.minimum(mlp(tcrit, "q1.", end), mlp(tcrit, "q2.", end))
                tc = torch.minimum(mlp(tcomp, "q1.", end), mlp(tcomp, "q2.", end))
                boot = GAMMA ** n * (1 - float(batch.terminal[i, b]))
                y = sum(GAMMA ** k * SCALE * float(batch.rewards[i, b, k]) for k in range(n))
                ys.append(y + boot * float((p * (tq - alpha * torch.log(p))).sum()))
                yc = bonus = 0.0
                for k in range(n):  # fresh samples of task i's own policy, the given noise
                    mean, log_std = mlp(pol, "net.", states[b, k]).split(A)
                    u = mean + log_std.clamp(-20, 2).exp() * eps[i, b, k].double()
                    logp = tanh_normal_log_prob(torch.tanh(u), mean, log_std.clamp(-20, 2).exp())
                    yc += GAMMA ** k * (SCALE * float(batch.rewards[i, b, k]) - float(c_alpha[i]) * float(logp))
                    bonus += GAMMA ** k * -float(c_alpha[i]) * float(logp)
                ycs.append(yc + boot * float((p * tc).sum()))
                bonuses.append(bonus)
        s0 = batch.obs[i].double()
        jt = torch.tensor(js)

        def twin_loss(net, y):
            q1 = mlp(net, "q1.", s0).gather(-1, jt[:, None])[:, 0]
            q2 = mlp(net, "q2.", s0).gather(-1, jt[:, None])[:, 0]
            return ((q1 - y) ** 2).mean() + ((q2 - y) ** 2).mean(), ((q1 - y) ** 2).mean()

        def adam_step(params, loss):
            opt = optimizer(list(params.values()) if isinstance(params, dict) else [params], lr=LR)
            opt.zero_grad()
            loss.backward()
            opt.step()

        q_loss, q1_loss = twin_loss(crit, torch.tensor(ys, dtype=torch.float64))
        adam_step(crit, q_loss)
        c_loss, c1_loss = twin_loss(comp, torch.tensor(ycs, dtype=torch.float64))
        adam_step(comp, c_loss)
        logp = torch.log_softmax(mlp(act, "", s0), -1)
        with torch.no_grad():  # the guide critic after its step, not the comparable one
            q = torch.minimum(mlp(crit, "q1.", s0), mlp(crit, "q2.", s0))
        pi_loss = (logp.exp() * (alpha * logp - q)).sum(-1).mean()
        entropy = -(logp.exp() * logp).sum(-1).detach()
        adam_step(act, pi_loss)
        a_loss = log_alpha.exp() * (entropy - guide.target_entropy).mean()
        adam_step(log_alpha, a_loss)
        new = {"actor": act, "critic": crit, "comparable_critic": comp,
               "log_alpha": torch.clamp(log_alpha.detach(), max=guide.max_log_alpha)}
        new["target_critic"] = {k: (1 - TAU) * tcrit[k] + TAU * crit[k].detach() for k in crit}
        new["target_comparable_critic"] = {k: (1 - TAU) * tcomp[k] + TAU * comp[k].detach() for k in comp}
        out.append(new)
        for key, value in (("GuideQTarget", sum(ys) / B), ("CompQTarget", sum(ycs) / B),
                           ("CompQEntropyBonus", sum(bonuses) / B),
                           ("GuideQf1Loss", q1_loss), ("CompQf1Loss", c1_loss),
                           ("GuidePolicyLoss", pi_loss), ("GuideAlphaLoss", a_loss),
                           ("HindsightRelabelled", float((jt != batch.guide_action[i]).float().mean()))):
            stats[key].append(float(torch.as_tensor(value).detach()))
    return out, stats


def make_guide(seed=0):
    torch.manual_seed(seed)
    actor = SeparateMLP(T, D, (H,), T)
    guide = CTPGGuide(actor, GuideCritic("separate", T, D, (H,)), GuideCritic("separate", T, D, (H,)), T,
                      lr=LR, discount=GAMMA, tau=TAU, reward_scale=SCALE, grad_clip=None, init_alpha=0.6)
    with torch.no_grad():  # targets apart from the online critics, so Polyak is visible
        for p in [*guide.target_critic.parameters(), *guide.target_comparable_critic.parameters()]:
            p.add_(0.3 * torch.randn_like(p))
    return guide, TanhGaussianPolicy("separate", T, D, A, (H,))


@pytest.mark.parametrize("hindsight, optimizer", [(True, torch.optim.Adam), (False, torch.optim.Adam),
                                                  (True, torch.optim.SGD)])
def test_update_equals_an_independent_per_task_loop(hindsight, optimizer):
    """Every statistic and every parameter after one step. With SGD (each guide optimiser swapped
    for SGD over the same parameters) a step is proportional to the gradient, which Adam's first
    step (about lr * sign) is not."""
    guide, policy = make_guide()
    if optimizer is torch.optim.SGD:
        for name in ("actor_optimizer", "critic_optimizer", "comparable_optimizer", "alpha_optimizer"):
            setattr(guide, name, torch.optim.SGD(getattr(guide, name).param_groups[0]["params"], lr=LR))
    batch = random_batch()
    control_log_alpha = torch.log(torch.tensor([0.2, 0.5, 1.5]))
    torch.manual_seed(7)  # the comparable target's fresh samples are the update's one random draw,
    eps = torch.randn(T, B * K, A).reshape(T, B, K, A)  # shaped as policy(states (T, B*K, D))
    expected, exp_stats = reference_update(guide, policy, batch, control_log_alpha, eps, hindsight,
                                           optimizer)
    torch.manual_seed(7)
    stats = guide.update(batch, policy, control_log_alpha, hindsight=hindsight)
    for key, values in exp_stats.items():
        torch.testing.assert_close(stats[key].double(), torch.tensor(values, dtype=torch.float64),
                                   rtol=1e-4, atol=1e-4, msg=key)
    for i in range(T):
        for part, params in expected[i].items():
            if part == "log_alpha":
                torch.testing.assert_close(guide.log_alpha.detach()[i].double(), params, msg=part)
                continue
            for name, p in getattr(guide, part).named_parameters():
                torch.testing.assert_close(p.detach()[i].double(), params[name].detach(), rtol=1e-4,
                                           atol=1e-5, msg=f"task {i} {part}.{name}")


def test_update_passes_each_loss_its_own_networks_and_temperatures(monkeypatch):
    guide, policy = make_guide()
    seen = {}

    def spy(name, fn):
        def wrapped(*args, **kwargs):
            seen[name] = args
            return fn(*args, **kwargs)
        monkeypatch.setattr(ctpg, name, wrapped)

    for name in ("guide_critic_loss", "comparable_critic_loss", "guide_actor_loss", "guide_temperature_loss"):
        spy(name, getattr(ctpg, name))
    control_log_alpha = torch.log(torch.tensor([0.2, 0.5, 1.5]))
    guide_alpha = guide.alpha().detach().clone()
    guide.update(random_batch(), policy, control_log_alpha, hindsight=False)
    _, _, critic, target, _, alpha, discount, scale = seen["guide_critic_loss"]
    assert critic is guide.critic and target is guide.target_critic
    torch.testing.assert_close(alpha, guide_alpha)
    assert (discount, scale) == (GAMMA, SCALE)
    _, _, critic, target, _, _, c_alpha, discount, scale = seen["comparable_critic_loss"]
    assert critic is guide.comparable_critic and target is guide.target_comparable_critic
    torch.testing.assert_close(c_alpha, control_log_alpha.exp())  # control, not guide, temperatures
    assert (discount, scale) == (GAMMA, SCALE)
    _, actor, critic, alpha, _ = seen["guide_actor_loss"]
    assert actor is guide.actor and critic is guide.critic
    torch.testing.assert_close(alpha, guide_alpha)
    assert seen["guide_temperature_loss"][0] is guide.log_alpha


def test_both_target_critics_move_by_tau_and_only_by_polyak():
    guide, policy = make_guide()
    pairs = [(guide.target_critic, guide.critic), (guide.target_comparable_critic, guide.comparable_critic)]
    old = [[p.detach().clone() for p in target.parameters()] for target, _ in pairs]
    assert not any(p.requires_grad for target, _ in pairs for p in target.parameters())
    guide.update(random_batch(), policy, torch.zeros(T), hindsight=True)
    for (target, online), before in zip(pairs, old):
        for o, new, live in zip(before, target.parameters(), online.parameters()):
            torch.testing.assert_close(new, (1 - TAU) * o + TAU * live)


def test_control_side_reads_own_parameters_off_the_hindsight_pass(monkeypatch):
    """The comparable target's log pi_i(a~|s) from the hindsight evaluation's diagonal equals a
    direct forward of the own policies with the same random numbers; chunking changes nothing."""
    _, policy = make_guide()
    batch = random_batch(seed=3)
    torch.manual_seed(5)
    direct = policy(batch.states.reshape(T, B * K, D)).log_prob.reshape(T, B, K)
    torch.manual_seed(5)
    j, log_prob = control_side(batch, policy, hindsight=True)
    torch.testing.assert_close(log_prob, direct)
    monkeypatch.setattr(ctpg, "HINDSIGHT_ROWS", 2 * T + 1)  # several chunks of 2 states
    torch.manual_seed(5)
    j_chunked, log_prob_chunked = control_side(batch, policy, hindsight=True)
    assert torch.equal(j, j_chunked)
    torch.testing.assert_close(log_prob_chunked, direct)
    torch.manual_seed(5)
    j_off, log_prob_off = control_side(batch, policy, hindsight=False)
    assert torch.equal(j_off, batch.guide_action)
    torch.testing.assert_close(log_prob_off, direct)


# ----------------------------------------------------------------------------- GuideTraining hooks
class SpyGuide:
    """Records every update call: (batch, control policy, control log alpha, hindsight)."""

    def __init__(self, num_tasks):
        self.calls, self.log_alpha = [], torch.zeros(num_tasks)
        self.num_tasks = num_tasks

    def update(self, batch, control_policy, control_log_alpha, hindsight=True):
        self.calls.append((batch, control_policy, control_log_alpha, hindsight))
        return {"GuideQf1Loss": torch.zeros(self.num_tasks)}


class Control:
    def __init__(self, t, log_alpha):
        self.policy = TanhGaussianPolicy("separate", t, D, A, (H,))
        self.log_alpha = log_alpha


def make_training(t=3, e=2, k=2, block_gate=True, block_mode="alpha", log_alpha=None):
    control = Control(t, torch.zeros(t) if log_alpha is None else log_alpha)
    spy = SpyGuide(t)
    behaviour = CTPGBehaviour(control.policy, None, spy, control.log_alpha, guide_step=k,
                              filter_gate=False, block_gate=block_gate, block_mode=block_mode)
    buffer = SegmentBuffer(t, 100, D, A, k)
    training = GuideTraining(spy, behaviour, buffer, SegmentRecorder(buffer, e), control, t,
                             batch_size=5, update_every=10, hindsight=False)
    return training, spy, behaviour, control


def feed(training, behaviour, calls, t=3, e=2):
    """``calls`` collected (T, E) steps, a guide decision at every one (segments of one step)."""
    for _ in range(calls):
        behaviour.last_decision = torch.ones(t, e, dtype=torch.bool)
        behaviour.last_guide_action = torch.zeros(t, e, dtype=torch.long)
        training.observe(TransitionBatch(torch.randn(t, e, D), torch.rand(t, e, A) - 0.5, torch.randn(t, e),
                                         torch.randn(t, e, D), torch.zeros(t, e)), torch.zeros(t, e, dtype=torch.bool))


def test_one_guide_step_per_update_every_env_steps_per_task():
    """E = 2 envs per task: a collected (T, E) step is 2 env steps per task; 10 per guide step."""
    training, spy, behaviour, control = make_training()
    counts = []
    for calls in (8, 7, 3, 1, 9):  # 16 (warm-up), 14, 6, 2, 18 env steps per task
        feed(training, behaviour, calls)
        training.update(0)
        counts.append(len(spy.calls))
    # the warm-up counts one guide step (no catch-up burst); then 14 -> 1 (+4), 6 -> 1 (+0),
    # 2 -> 0 (+2), 18 -> 2 (+0)
    assert counts == [1, 2, 3, 3, 5]
    batch, policy, log_alpha, hindsight = spy.calls[-1]
    assert policy is control.policy and log_alpha is control.log_alpha and hindsight is False
    assert batch.states.shape[:2] == (3, 5)


def test_guide_batches_come_from_guided_tasks_only():
    training, spy, behaviour, _ = make_training()
    feed(training, behaviour, 10)
    behaviour.set_blocked(torch.tensor([True, False, True]))
    training.update(0)
    assert spy.calls[-1][0].weight[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert spy.calls[-1][0].weight.eq(spy.calls[-1][0].weight[:, :1]).all()
    training, spy, behaviour, _ = make_training(block_gate=False)  # ablation: every task trains it
    feed(training, behaviour, 10)
    behaviour.set_blocked(torch.tensor([True, False, True]))
    training.update(0)
    assert spy.calls[-1][0].weight.eq(1.0).all()


def test_block_gate_reads_the_control_temperatures_and_ties_block_nothing():
    log_alpha = torch.tensor([0.0, 1.0, -1.0])  # mean 0: task 1 above it
    training, spy, behaviour, control = make_training(log_alpha=log_alpha)
    spy.log_alpha = -log_alpha  # a guide temperature of the opposite order must not be read
    training.evaluated(torch.tensor([1.0, 1.0, 1.0]))
    assert behaviour.pending_block.tolist() == [False, True, False]
    control.log_alpha.copy_(torch.tensor([0.5, -2.0, 0.6]))  # read live at every evaluation
    training.evaluated(None)
    assert behaviour.pending_block.tolist() == [True, False, True]
    control.log_alpha.fill_(0.3)  # all equal (a fresh run, or one shared temperature): none blocked
    training.evaluated(None)
    assert not behaviour.pending_block.any()
    assert not block_mask(torch.full((4,), -1.2)).any()
    training, _, behaviour, _ = make_training(block_mode="success")
    training.evaluated(torch.tensor([0.9, 0.8, 0.1]))
    assert behaviour.pending_block.tolist() == [True, False, False]


# ----------------------------------------------------------------------------- the trainer's hooks
TINY = {"env": "MazeQuick-4-v0", "n_epochs": 3, "hidden_sizes": (8,), "guide_hidden_sizes": (8,),
        "batch_size": 4 * 25, "envs_per_task": 2, "min_buffer_size": 10, "gradient_steps_per_itr": 4,
        "buffer_batch_size": 8, "guide_batch_size": 4, "guide_step": 2, "num_evaluation_episodes": 4,
        "evaluation_frequency": 1, "num_threads": 1}


def test_trainer_hooks_guide_steps_filter_units_and_block_refresh(tmp_path):
    """A tiny ctpg_dnc run (T = 4, E = 2, 13 steps per env per iteration after a 5-step warm-up):
    the guide steps follow the env steps per task, the filter gate switches on at
    ``--guide_filter_start`` env steps per task, the block gate is refreshed from the control
    temperatures at every evaluation."""
    config = resolve_config("ctpg_dnc", {**TINY, "guide_filter_start": 36, "log_dir": str(tmp_path / "r")})
    trainer = build_trainer(config)
    training, t = trainer.guide_training, trainer.num_tasks
    calls, evaluations, guide_steps = [], [], []
    update, evaluated, guide_update = training.update, training.evaluated, training.guide.update

    def spy_update(steps):
        update(steps)
        calls.append((steps, trainer.total_env_steps, trainer.behaviour.filter_active, len(guide_steps)))

    def spy_evaluated(success):
        evaluated(success)
        evaluations.append((trainer.algorithm.log_alpha.detach().clone(), trainer.behaviour.pending_block.clone()))

    def spy_guide_update(batch, policy, log_alpha, hindsight=True):
        assert policy is trainer.algorithm.policy and log_alpha is trainer.algorithm.log_alpha
        guide_steps.append(batch.weight.clone())
        return guide_update(batch, policy, log_alpha, hindsight)

    training.update, training.evaluated, training.guide.update = spy_update, spy_evaluated, spy_guide_update
    trainer.train()
    per_task = [10, 36, 62]  # 5 steps x 2 envs, then + 13 x 2 per iteration
    assert [c[0] for c in calls] == per_task
    assert trainer.total_env_steps == per_task[-1] * t and trainer.behaviour.step == per_task[-1]
    assert [c[2] for c in calls] == [False, True, True]  # 36 env steps per task reached
    # one guide step for the warm-up, then one per 10 env steps per task (26 -> 2, rest 6; 32 -> 3)
    assert [c[3] for c in calls] == [1, 3, 6]
    assert len(evaluations) == 3  # every evaluation refreshes the gate
    for log_alpha, blocked in evaluations:
        assert torch.equal(blocked, log_alpha.expand(t) > log_alpha.mean())
    assert len({tuple(la.tolist()) for la, _ in evaluations}) > 1  # temperatures moved between
    assert math.isclose(float(training.guide.reward_scale), float(trainer.algorithm.reward_scale))


@pytest.mark.parametrize("scale", [0.1, 3.0])
def test_guide_and_control_share_the_reward_scale(tmp_path, scale):
    config = resolve_config("ctpg_dnc", {**TINY, "reward_scale": scale, "log_dir": str(tmp_path / "r")})
    trainer = build_trainer(config)
    try:
        assert trainer.algorithm.reward_scale == scale
        assert trainer.guide_training.guide.reward_scale == scale
    finally:
        trainer.close()

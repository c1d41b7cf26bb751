"""CARE and CARE + PTSL in both arrangements against mtrl's equations, with gradients.

per_network (Meta-World+): every network owns its task encoder, experts and attention; the critic's
experts see [s, a]. mtrl (mtrl / PTSL): one task encoder and one set of experts on the state, owned and
trained by the critic, read detached by the actor (its own attention and trunk train on the actor loss);
the critic's encoder feeds Q1 and Q2; the target encoder follows its own tau (0.05), the target task
encoder is the online one.
"""

from __future__ import annotations

import pytest
import torch

from learning.algorithms.sac import MultiTaskSAC, actor_loss
from learning.networks import build_network
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions import CARETwinQFunction, make_twin_q, share_care_parts
from learning.replay_buffer import TransitionBatch
from tests.test_networks_gradients import (Recorder, assert_variance, check_against_reference, lin, ptsl_reference,
                                           randomise, relu, xavier_variance)

T, B, OBS, ACT = 3, 5, 4, 2
SMALL = dict(num_experts=3, encoder_sizes=(6, 5), context_dim=4, context_hidden_sizes=(6,),
             attention_hidden_sizes=(6,), temperature=0.7)


def care_encoding(p: Recorder, s: torch.Tensor, emb: torch.Tensor, prefix: str, attention: str,
                  temperature: float = 0.7, experts: int = 3) -> torch.Tensor:
    """mtrl's CARE encoder for every task (PTSL ``task_encoder.py`` lines 40-82, ``moe_layer.py``
    lines 458-540, ``encoder.py`` lines 443-453), s (T, B, S):
    c_t = M(ReLU(L3(ReLU(L1(ReLU(e_t)))))), M = L5.0 -> ReLU -> L5.2 (one hidden layer here);
    a_t = softmax(A2(ReLU(A0(c_t))) / temperature); z = sum_e a_te E1_e(ReLU(E0_e(s))); [z, c_t]."""
    c = relu(lin(relu(lin(relu(emb), p, f"{prefix}context.1")), p, f"{prefix}context.3"))
    c = lin(relu(lin(c, p, f"{prefix}context.5.0")), p, f"{prefix}context.5.2")
    a = torch.softmax(lin(relu(lin(c, p, f"{attention}.0")), p, f"{attention}.2") / temperature, -1)
    rows = []
    for t in range(T):
        z = 0
        for e in range(experts):
            h = relu(s[t] @ p[f"{prefix}experts.0.weight"][e] + p[f"{prefix}experts.0.bias"][e, 0])
            z = z + a[t, e] * (h @ p[f"{prefix}experts.1.weight"][e] + p[f"{prefix}experts.1.bias"][e, 0])
        rows.append(torch.cat([z, c[t].expand(s.shape[1], -1)], -1))
    return torch.stack(rows)


def mlp2(p: Recorder, x: torch.Tensor, prefix: str) -> torch.Tensor:
    """Two ReLU hidden layers and a linear output, names {prefix}hidden.0/1 and {prefix}output."""
    return lin(relu(lin(relu(lin(x, p, f"{prefix}hidden.0")), p, f"{prefix}hidden.1")), p, f"{prefix}output")


# ------------------------------------------------------------------------------ per_network
def test_care_per_network_matches_mtrl_equations_with_gradients():
    """A .detach() on the attention weights or the context (or any part) changes a gradient."""
    torch.manual_seed(0)
    emb = torch.randn(T, 6)
    net = build_network("care", T, OBS, (6, 5), 2, options=dict(SMALL, task_embeddings=emb))

    def reference(p, x):
        return mlp2(p, care_encoding(p, x, emb.double(), "encoder.shared.", "encoder.attention"), "")
    check_against_reference(net, reference, OBS)


# PTSL's skip rule (anchors §2.1) for T = 3, p = 3: the first layer's input of 9 or 11 projects
# (9*3 + 3*4*3 <= 3*4*9), the output's U to 1 or 2 values is skipped (2*3 + 3*4*3 > 3*4*2).
PTSL_KEYS = dict(downs=["down0", "down", "down"], ups=["up", "up", None])


def test_care_ptsl_per_network_matches_mtrl_equations_with_gradients():
    torch.manual_seed(0)
    emb = torch.randn(T, 6)
    net = build_network("care_ptsl", T, OBS, (6, 6), 2, options=dict(
        SMALL, task_embeddings=emb, pal_dim=3, residual_mode="linear", shared_projection=True))
    trunk = ptsl_reference("linear", True, prefix="trunk.", **PTSL_KEYS)

    def reference(p, x):
        return trunk(p, care_encoding(p, x, emb.double(), "encoder.shared.", "encoder.attention"))
    check_against_reference(net, reference, OBS)


# ------------------------------------------------------------------------------ mtrl arrangement
def mtrl_pair(arch: str = "care", seed: int = 0, **extra):
    torch.manual_seed(seed)
    emb = torch.randn(T, 6)
    options = dict(SMALL, task_embeddings=emb, **extra)
    shared_opts = {k: options.pop(k) for k in ("encoder_sizes", "context_dim", "context_hidden_sizes",
                                                "task_embeddings")}
    from learning.networks.care import CAREShared
    shared = CAREShared(T, OBS, num_experts=3, **shared_opts)
    policy_opts = dict(options, shared=shared, detach_shared=True)
    q_opts = dict(options, shared=shared, encoder_tau=0.05)
    policy = TanhGaussianPolicy(arch, T, OBS, ACT, (6, 6), policy_opts)
    qf = make_twin_q(arch, T, OBS, ACT, (6, 6), q_opts)
    return policy, qf, shared, emb


def test_mtrl_actor_owns_only_its_attention_and_trunk_and_reads_the_shared_parts_detached():
    policy, qf, shared, emb = mtrl_pair()
    names = {n for n, _ in policy.net.named_parameters()}
    assert names == {f"encoder.attention.{i}.{w}" for i in (0, 2) for w in ("weight", "bias")} | {
        f"{layer}.{w}" for layer in ("hidden.0", "hidden.1", "output") for w in ("weight", "bias")}
    assert isinstance(qf, CARETwinQFunction) and qf.encoder.shared is shared
    net = policy.net.double()
    shared.double()
    randomise(net, 1)
    randomise(shared, 2)
    p = Recorder(net)
    q = Recorder(shared)
    x = torch.randn(T, B, OBS, dtype=torch.float64)

    class Both(dict):
        def __getitem__(self, key):
            return q[key[len("encoder.shared."):]] if key.startswith("encoder.shared.") else p[key]
    expected = mlp2(Both(), care_encoding(Both(), x, emb.double(), "encoder.shared.", "encoder.attention"), "")
    out = net(x)
    torch.testing.assert_close(out, expected)
    (out ** 2).sum().backward()
    assert all(prm.grad is None for prm in shared.parameters())  # detached: no gradient to g or experts
    assert all(prm.grad.abs().sum() > 0 for prm in net.parameters())  # attention and trunk train


@pytest.mark.parametrize("arch", ["care", "care_ptsl"])
def test_mtrl_critic_runs_experts_on_the_state_and_appends_the_action(arch):
    """Q_k = trunk_k([z(s), c, a]); every critic parameter (shared parts included) gets the
    reference gradient of the critic loss."""
    policy, qf, shared, emb = mtrl_pair(arch, pal_dim=3)
    qf.double()
    randomise(qf, 7)
    gen = torch.Generator().manual_seed(4)
    obs = torch.randn(T, B, OBS, generator=gen, dtype=torch.float64)
    act = torch.randn(T, B, ACT, generator=gen, dtype=torch.float64)
    p = Recorder(qf)
    x = torch.cat([care_encoding(p, obs, emb.double(), "encoder.shared.", "encoder.attention"), act], -1)
    if arch == "care":
        expected = [mlp2(p, x, f"{k}.") for k in ("q1", "q2")]
    else:
        expected = [ptsl_reference("none", True, prefix=f"{k}.", **PTSL_KEYS)(p, x) for k in ("q1", "q2")]
    q1, q2 = qf(obs, act)
    torch.testing.assert_close(q1, expected[0].squeeze(-1))
    torch.testing.assert_close(q2, expected[1].squeeze(-1))
    assert set(p.read) == set(p)
    ((q1 - 1.0) ** 2 + (q2 + 1.0) ** 2).sum().backward()
    ((expected[0].squeeze(-1) - 1.0) ** 2 + (expected[1].squeeze(-1) + 1.0) ** 2).sum().backward()
    for name, prm in qf.named_parameters():
        torch.testing.assert_close(prm.grad, p[name].grad, msg=lambda m, n=name: f"{n}: {m}")
        assert prm.grad.abs().sum() > 0, name
    torch.testing.assert_close(qf.q1_value(obs[:1], act), qf(obs[:1].expand(T, -1, -1), act)[0])  # broadcast


def _sac(arch: str = "care"):
    policy, qf, shared, _ = mtrl_pair(arch)
    sac = MultiTaskSAC(policy, qf, T, per_task_alpha=True, lr=1e-2, discount=0.9, tau=0.005,
                       reward_scale=1.0, target_entropy=-1.0, task_reduction="mean")
    gen = torch.Generator().manual_seed(5)
    data = TransitionBatch(torch.randn(T, B, OBS, generator=gen), torch.rand(T, B, ACT, generator=gen) * 2 - 1,
                           torch.randn(T, B, generator=gen), torch.randn(T, B, OBS, generator=gen), torch.zeros(T, B))
    return sac, shared, data


def test_mtrl_shared_parts_train_on_the_critic_loss_only():
    sac, shared, data = _sac()
    before = [prm.detach().clone() for prm in shared.parameters()]
    policy_before = [prm.detach().clone() for prm in sac.policy.parameters()]
    sac.qf_optimizer.step = lambda: None  # only the actor (and temperature) step
    sac.update(data)
    assert all(torch.equal(a, b) for a, b in zip(shared.parameters(), before))
    assert all(not torch.equal(a, b) for a, b in zip(sac.policy.parameters(), policy_before))
    sac2, shared2, data2 = _sac()
    before2 = [prm.detach().clone() for prm in shared2.parameters()]
    sac2.update(data2)
    assert all(not torch.equal(a, b) for a, b in zip(shared2.parameters(), before2))
    _, _, _ = actor_loss(data.obs, sac.policy, sac.qf, sac.alpha())
    assert not any(p in set(sac.policy_optimizer.param_groups[0]["params"]) for p in shared.parameters())


def test_mtrl_target_encoder_follows_its_own_tau_and_the_target_task_encoder_is_the_online_one():
    sac, _, data = _sac()
    assert_polyak(sac, data, lambda name: 1.0 if name.startswith("encoder.shared.context.") else (
        0.05 if name.startswith("encoder.") else 0.005))


def assert_polyak(sac, data, tau_of) -> None:
    """After one update every target parameter moved by tau_of(name) towards the online one (the two
    made to differ everywhere first)."""
    with torch.no_grad():
        for prm in sac.target_qf.parameters():
            prm.add_(1.0)
    old = {n: prm.detach().clone() for n, prm in sac.target_qf.named_parameters()}
    sac.update(data)
    online = dict(sac.qf.named_parameters())
    for name, prm in sac.target_qf.named_parameters():
        tau = tau_of(name)
        torch.testing.assert_close(prm, old[name] + tau * (online[name] - old[name]), msg=name)


def test_care_initial_statistics():
    """mtrl's weight_init: Xavier-uniform weights (per expert for the stacked experts), zero biases;
    the fixed task embeddings orthonormal."""
    torch.manual_seed(0)
    for arch in ("care", "care_ptsl"):
        net = build_network(arch, 10, 30, (64, 64), 8, options=dict(pal_dim=16) if arch == "care_ptsl" else {})
        for name, prm in net.named_parameters():
            if name.startswith("trunk."):
                continue  # PTSL's own initialisation (tests/test_networks_gradients.py)
            if "bias" in name:
                assert prm.abs().sum() == 0, name
            else:
                assert_variance(name, prm, xavier_variance(prm.shape), tol=0.35)
        emb = net.encoder.shared.task_embeddings
        torch.testing.assert_close(emb @ emb.T, torch.eye(10), atol=1e-5, rtol=0)


def test_share_care_parts_builds_one_shared_module_for_both():
    pol, q = share_care_parts(T, OBS, dict(num_experts=2), dict(num_experts=2), 0.1)
    assert pol["shared"] is q["shared"] and pol["detach_shared"] and q["encoder_tau"] == 0.1
    assert q["shared"].experts[0].weight.shape == (2, OBS, 50)


# ------------------------------------------------------------------------------ mtrl's SM arrangement
def _sm_sac():
    from learning.q_functions import share_sm_parts
    torch.manual_seed(0)
    pol_opts, q_opts = share_sm_parts(T, OBS, dict(variant="mtrl", num_modules=3), dict(variant="mtrl", num_modules=3),
                                      0.05)
    policy = TanhGaussianPolicy("soft_modular", T, OBS, ACT, (6,), pol_opts)
    qf = make_twin_q("soft_modular", T, OBS, ACT, (6,), q_opts)
    sac = MultiTaskSAC(policy, qf, T, per_task_alpha=True, lr=1e-2, discount=0.9, tau=0.005,
                       reward_scale=1.0, target_entropy=-1.0, task_reduction="mean")
    gen = torch.Generator().manual_seed(5)
    data = TransitionBatch(torch.randn(T, B, OBS, generator=gen), torch.rand(T, B, ACT, generator=gen) * 2 - 1,
                           torch.randn(T, B, generator=gen), torch.randn(T, B, OBS, generator=gen), torch.zeros(T, B))
    return sac, pol_opts["shared"], data


def test_mtrl_sm_shares_state_and_task_encoders_trained_by_the_critic_only():
    """mtrl's SM run: one state encoder and one task encoder, the critic's; the actor reads them detached
    (no gradient) and trains its own routing and modules; Q1 and Q2 read the same encoders."""
    from learning.q_functions import SMTwinQFunction
    sac, shared, data = _sm_sac()
    qf, policy = sac.qf, sac.policy
    assert type(qf) is SMTwinQFunction and qf.q1.parts is qf.q2.parts is shared is policy.net.parts
    assert not any(n.startswith("shared") for n, _ in policy.named_parameters())
    out = policy(data.obs)
    (out.mean ** 2).sum().backward()
    assert all(p.grad is None for p in shared.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters() if p.dim() > 1)
    before = [p.detach().clone() for p in shared.parameters()]
    sac.qf_optimizer.step = lambda: None  # actor and temperature steps only
    sac.update(data)
    assert all(torch.equal(a, b) for a, b in zip(shared.parameters(), before))
    sac2, shared2, data2 = _sm_sac()
    before2 = [p.detach().clone() for p in shared2.parameters()]
    sac2.update(data2)
    assert all(not torch.equal(a, b) for a, b in zip(shared2.parameters(), before2))


def test_mtrl_sm_target_encoders_follow_their_taus():
    sac, _, data = _sm_sac()
    assert_polyak(sac, data, lambda name: 1.0 if name.startswith("shared.task_") else (
        0.05 if name.startswith("shared.encoder.") else 0.005))

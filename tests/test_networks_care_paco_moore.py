"""CARE, PaCo and MOORE: shapes, formulas against independent per-task loops, PaCo's reset."""

import pytest
import torch
import torch.nn.functional as F

from learning.networks.care import CAREMLP
from learning.networks.moore import MOOREMLP, gram_schmidt
from learning.networks.paco import PaCoMLP, extreme_loss_tasks, mask_task_loss

T, B, IN, OUT = 3, 5, 4, 2


def linear(x, layer):
    """An nn.Linear applied by hand."""
    return x @ layer.weight.T + layer.bias


def mlp(x, layers):
    """Plain ReLU MLP over nn.Linear layers, no activation after the last."""
    for i, layer in enumerate(layers):
        x = linear(x if i == 0 else torch.relu(x), layer)
    return x


def expert(x, stacked_layers, e):
    """Expert e of a stack of StackedLinear layers, (B, in) -> (B, out), one expert at a time."""
    for i, layer in enumerate(stacked_layers):
        x = (x if i == 0 else torch.relu(x)) @ layer.weight[e] + layer.bias[e, 0]
    return x


# ---------------------------------------------------------------- shapes, all three


@pytest.mark.parametrize("cls", [CAREMLP, PaCoMLP, MOOREMLP])
def test_shapes_and_broadcast_input(cls):
    torch.manual_seed(0)
    net = cls(T, IN, (8, 6), OUT)
    x = torch.randn(1, B, IN)
    assert net(x).shape == (T, B, OUT)
    assert net(torch.randn(T, B, IN)).shape == (T, B, OUT)
    assert net.features(x).shape == (T, B, 6)
    torch.testing.assert_close(net(x), net(x.expand(T, -1, -1).contiguous()))
    with pytest.raises(ValueError):
        net(torch.randn(2, B, IN))


# ---------------------------------------------------------------- CARE


def care_reference(net: CAREMLP, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t alone, from scratch: context, attention, per-expert loop, output MLP."""
    emb = torch.relu(net.encoder.shared.task_embeddings[t])
    proj1, proj2, trunk = net.encoder.shared.context[1], net.encoder.shared.context[3], net.encoder.shared.context[5]
    c = mlp(torch.relu(linear(torch.relu(linear(emb, proj1)), proj2)), trunk[::2])
    logits = mlp(c, net.encoder.attention[::2])
    a = torch.exp(logits / net.encoder.temperature) / torch.exp(logits / net.encoder.temperature).sum()
    z = sum(a[e] * expert(x, net.encoder.shared.experts, e) for e in range(len(a)))
    h = torch.cat([z, c.expand(x.shape[0], -1)], dim=-1)
    return mlp(h, [*net.hidden, net.output])


def test_care_batched_equals_per_task_loop():
    torch.manual_seed(1)
    net = CAREMLP(T, IN, (8, 6), OUT, num_experts=3, encoder_sizes=(7, 5), context_dim=4,
                  context_hidden_sizes=(6,), attention_hidden_sizes=(6, 6), temperature=0.5,
                  task_embeddings=torch.randn(T, 9))
    x = torch.randn(T, B, IN)
    out = net(x)
    for t in range(T):
        torch.testing.assert_close(out[t], care_reference(net, x[t], t), rtol=1e-5, atol=1e-5)


def test_care_attention_rows_sum_to_one_and_mixture_is_weighted_sum_of_experts():
    torch.manual_seed(2)
    net = CAREMLP(T, IN, (8,), OUT, num_experts=4, encoder_sizes=(6, 5))
    a = net.encoder.mixing_weights()
    assert a.shape == (T, 4) and (a > 0).all()
    torch.testing.assert_close(a.sum(-1), torch.ones(T))
    x = torch.randn(1, B, IN)
    z = net.encode(x)[..., :5]
    for t in range(T):
        expected = sum(a[t, e] * expert(x[0], net.encoder.shared.experts, e) for e in range(4))
        torch.testing.assert_close(z[t], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.encode(x)[..., 5:], net.encoder.context_vectors()[:, None].expand(-1, B, -1))


def test_care_changing_one_task_embedding_changes_only_its_row():
    torch.manual_seed(3)
    net = CAREMLP(T, IN, (8,), OUT)
    x = torch.randn(T, B, IN)
    before = net(x)
    net.encoder.shared.task_embeddings[1] += torch.randn_like(net.encoder.shared.task_embeddings[1])
    after = net(x)
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]])
    assert (after[1] - before[1]).abs().max() > 1e-4


def test_care_default_embeddings_are_fixed_orthonormal_buffers_and_bad_shape_raises():
    net = CAREMLP(T, IN, (8,), OUT)
    assert "task_embeddings" not in dict(net.named_parameters())
    e = net.encoder.shared.task_embeddings
    torch.testing.assert_close(e @ e.T, torch.eye(T), atol=1e-5, rtol=0)
    torch.testing.assert_close(CAREMLP(T, IN, (8,), OUT).encoder.shared.task_embeddings, e)
    with pytest.raises(ValueError):
        CAREMLP(T, IN, (8,), OUT, task_embeddings=torch.randn(T + 1, 5))


# ---------------------------------------------------------------- PaCo


def test_paco_hand_computed_composition():
    net = PaCoMLP(1, 1, (), 1, num_param_sets=2)
    with torch.no_grad():
        net.weights[0].copy_(torch.tensor([2.0, 3.0]).reshape(2, 1, 1))
        net.biases[0].copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1))
        net.composition.copy_(torch.tensor([[0.5, 2.0]]))
    # theta = 0.5*2 + 2*3 = 7, b = 0.5*1 + 2*(-1) = -1.5, so y(2) = 12.5
    torch.testing.assert_close(net(torch.tensor([[[2.0]]])), torch.tensor([[[12.5]]]))


def test_paco_batched_equals_mlp_with_per_task_composed_weights():
    torch.manual_seed(4)
    net = PaCoMLP(T, IN, (8, 6), OUT, num_param_sets=3)
    x = torch.randn(T, B, IN)
    out = net(x)
    w = net.composition
    for t in range(T):
        h = x[t]
        for i in range(len(net.weights)):
            weight = sum(w[t, k] * net.weights[i][k] for k in range(3))
            bias = sum(w[t, k] * net.biases[i][k, 0] for k in range(3))
            h = (h if i == 0 else torch.relu(h)) @ weight + bias
        torch.testing.assert_close(out[t], h, rtol=1e-5, atol=1e-5)


def test_paco_task_loss_reaches_only_its_composition_row_and_the_shared_sets():
    torch.manual_seed(5)
    net = PaCoMLP(T, IN, (8,), OUT, num_param_sets=3)
    net(torch.randn(T, B, IN))[1].sum().backward()
    g = net.composition.grad
    assert g[1].abs().sum() > 0 and g[0].abs().sum() == 0 and g[2].abs().sum() == 0
    assert all(p.grad.abs().sum() > 0 for p in net.weights)


def test_extreme_loss_tasks_and_masked_loss():
    loss = torch.tensor([1.0, -5000.0, 2999.0, float("nan"), float("inf"), 3000.0])
    assert extreme_loss_tasks(loss, 3000.0).tolist() == [False, True, False, True, True, False]
    torch.manual_seed(6)
    net = PaCoMLP(T, IN, (8,), OUT, num_param_sets=3)
    per_task = net(torch.randn(T, B, IN)).pow(2).mean(dim=(1, 2)) * torch.tensor([1.0, 1e9, 1.0])
    extreme = extreme_loss_tasks(per_task, 3000.0)
    assert extreme.tolist() == [False, True, False]
    masked = mask_task_loss(per_task, extreme)
    torch.testing.assert_close(masked, per_task * torch.tensor([1.0, 0.0, 1.0]))
    masked.sum().backward()
    g = net.composition.grad
    assert g[1].abs().sum() == 0 and g[0].abs().sum() > 0 and g[2].abs().sum() > 0
    inf_loss = torch.tensor([[1.0, 2.0], [float("inf"), 1.0]])  # (T, B) per-sample losses
    torch.testing.assert_close(mask_task_loss(inf_loss, torch.tensor([False, True])),
                               torch.tensor([[1.0, 2.0], [0.0, 0.0]]))


def test_paco_reset_interpolate_uses_healthy_rows_and_leaves_the_rest():
    torch.manual_seed(7)
    net = PaCoMLP(4, IN, (8,), OUT, num_param_sets=3)
    with torch.no_grad():
        net.composition.add_(torch.randn(4, 3))  # "trained" away from the initial values
    before = net.composition.detach().clone()
    phi = [p.detach().clone() for p in [*net.weights, *net.biases]]
    mask = torch.tensor([False, True, False, True])
    net.reset_tasks(mask, generator=torch.Generator().manual_seed(0))
    beta = torch.rand(2, 2, generator=torch.Generator().manual_seed(0))
    expected = (beta / beta.sum(-1, keepdim=True)) @ before[[0, 2]]
    torch.testing.assert_close(net.composition[[1, 3]], expected)
    torch.testing.assert_close(net.composition[[0, 2]], before[[0, 2]])
    for p, q in zip([*net.weights, *net.biases], phi):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_paco_reset_initial_mode_and_all_extreme_fallback_restore_initial_values():
    torch.manual_seed(8)
    for mode, mask in [("initial", [True, False, True]), ("interpolate", [True, True, True])]:
        net = PaCoMLP(T, IN, (8,), OUT, num_param_sets=2, reset_mode=mode)
        init = net.composition.detach().clone()
        with torch.no_grad():
            net.composition.add_(1.0)
        moved = net.composition.detach().clone()
        mask_t = torch.tensor(mask)
        net.reset_tasks(mask_t)
        torch.testing.assert_close(net.composition[mask_t], init[mask_t])
        torch.testing.assert_close(net.composition[~mask_t], moved[~mask_t])
    net.reset_tasks(torch.zeros(T, dtype=torch.bool))  # nothing extreme: no change
    torch.testing.assert_close(net.composition, init)
    with pytest.raises(ValueError):
        PaCoMLP(T, IN, (8,), OUT, reset_mode="zeros")


# ---------------------------------------------------------------- MOORE


def test_gram_schmidt_hand_computed():
    u = torch.tensor([[[3.0, 4.0, 0.0], [1.0, 0.0, 0.0]]])
    # v1 = u1/5; w2 = u2 - 0.6 v1 = (0.64, -0.48, 0), |w2| = 0.8
    expected = torch.tensor([[[0.6, 0.8, 0.0], [0.8, -0.6, 0.0]]])
    torch.testing.assert_close(gram_schmidt(u), expected)


def test_moore_experts_are_orthonormal_per_sample():
    torch.manual_seed(9)
    net = MOOREMLP(T, IN, (16, 8), OUT, num_experts=4)
    v = net.orthogonal_experts(torch.randn(T, B, IN))
    assert v.shape == (T, B, 4, 8)
    gram = v @ v.transpose(-1, -2)
    torch.testing.assert_close(gram, torch.eye(4).expand_as(gram), atol=1e-5, rtol=0)


def moore_reference(net: MOOREMLP, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t alone: experts one by one, Gram-Schmidt as sign-fixed QR, weighted sum, tanh, head."""
    u = torch.stack([expert(x, net.experts, e) for e in range(net.task_weights.shape[1])], dim=-1)
    q, r = torch.linalg.qr(u)  # (B, H, E); Gram-Schmidt = QR with a positive diagonal of R
    v = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    f = torch.tanh(sum(net.task_weights[t, e] * v[..., e] for e in range(v.shape[-1])))
    return f @ net.heads.weight[t] + net.heads.bias[t, 0]


def test_moore_batched_equals_per_task_loop_and_mixture_is_weighted_sum():
    torch.manual_seed(10)
    net = MOOREMLP(T, IN, (16, 8), OUT, num_experts=3)
    x = torch.randn(T, B, IN)
    out = net(x)
    for t in range(T):
        torch.testing.assert_close(out[t], moore_reference(net, x[t], t), rtol=1e-4, atol=1e-5)
    v = net.orthogonal_experts(x)
    expected = torch.tanh(sum(net.task_weights[:, e, None, None] * v[:, :, e] for e in range(3)))
    torch.testing.assert_close(net.features(x), expected)


def test_moore_gradient_flows_through_gram_schmidt_and_is_isolated_per_task():
    torch.manual_seed(11)
    net = MOOREMLP(T, IN, (16, 8), OUT, num_experts=4)
    F.mse_loss(net(torch.randn(1, B, IN))[1], torch.randn(B, OUT)).backward()
    for layer in net.experts:
        assert torch.isfinite(layer.weight.grad).all() and layer.weight.grad.abs().sum() > 0
    g, gh = net.task_weights.grad, net.heads.weight.grad
    assert g[1].abs().sum() > 0 and g[[0, 2]].abs().sum() == 0 and gh[[0, 2]].abs().sum() == 0
    with pytest.raises(ValueError):
        MOOREMLP(T, IN, (3,), OUT, num_experts=4)


def test_paco_training_masks_an_overflowing_task_loss_with_torch_where(monkeypatch):
    """The update reduces the per-task losses after :func:`mask_task_loss`: a task whose squared TD
    error overflows float32 (inf) is left out and the reduced loss stays finite (0 * inf would be NaN),
    while the other tasks still train and every parameter stays finite."""
    from learning.algorithms import sac as sac_module
    from learning.algorithms.sac import MultiTaskSAC
    from learning.policies.tanh_gaussian import TanhGaussianPolicy
    from learning.q_functions.twin_q import TwinQFunction
    from learning.replay_buffer import TransitionBatch
    torch.manual_seed(0)
    policy, qf = TanhGaussianPolicy("paco", 2, 3, 1, (8,)), TwinQFunction("paco", 2, 3, 1, (8,))
    sac = MultiTaskSAC(policy, qf, 2, per_task_alpha=True, lr=1e-3, discount=0.9, tau=0.5, reward_scale=1.0,
                       target_entropy=-1.0, task_reduction="mean", extreme_loss=(3000.0, 0))
    calls, reduced = [], []
    monkeypatch.setattr(sac_module, "mask_task_loss", lambda loss, ext: calls.append(1) or mask_task_loss(loss, ext))
    monkeypatch.setattr(sac, "reduce", lambda per_task: reduced.append(per_task.detach()) or per_task.mean())
    reward = torch.tensor([[0.5] * 4, [1e20] * 4])  # task 1: (Q - 1e20)^2 = inf in float32
    data = TransitionBatch(torch.randn(2, 4, 3), torch.rand(2, 4, 1) * 2 - 1, reward, torch.randn(2, 4, 3),
                           torch.zeros(2, 4))
    before = qf.q1.composition.detach().clone()
    stats = sac.update(data)
    assert len(calls) == 2 and stats["ExtremeLoss"].tolist() == [0.0, 1.0]
    assert torch.isinf(stats["Qf1Loss"][1]) and torch.isfinite(reduced[0]).all() and reduced[0][1] == 0
    assert all(torch.isfinite(p).all() for p in (*policy.parameters(), *qf.parameters()))
    assert not torch.equal(qf.q1.composition[0], before[0])  # the healthy task trained

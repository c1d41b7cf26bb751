import pytest
import torch
from torch import nn

from learning.networks import build_network
from learning.networks.separate import SeparateMLP


def independent_mlp(net: SeparateMLP, t: int) -> nn.Sequential:
    """Task t's slice of the stacked weights as a plain nn.Sequential."""
    layers = []
    for layer in [*net.hidden, net.output]:
        lin = nn.Linear(layer.weight.shape[1], layer.weight.shape[2])
        with torch.no_grad():
            lin.weight.copy_(layer.weight[t].T)
            lin.bias.copy_(layer.bias[t, 0])
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_separate_matches_independent_mlps_in_outputs_and_gradients():
    torch.manual_seed(0)
    t, b = 4, 9
    net = SeparateMLP(t, 5, (32, 16), 3)
    x = torch.randn(t, b, 5)
    target = torch.randn(t, b, 3)
    out = net(x)
    ((out - target) ** 2).mean(dim=(1, 2)).sum().backward()
    for k in range(t):
        ref = independent_mlp(net, k)
        ref_out = ref(x[k])
        torch.testing.assert_close(out[k], ref_out, rtol=1e-5, atol=1e-5)
        ((ref_out - target[k]) ** 2).mean().backward()
        torch.testing.assert_close(net.hidden[0].weight.grad[k], ref[0].weight.grad.T, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(net.output.weight.grad[k], ref[-1].weight.grad.T, rtol=1e-4, atol=1e-6)


def test_separate_task_loss_gives_zero_gradient_to_other_tasks():
    torch.manual_seed(0)
    net = SeparateMLP(3, 4, (8,), 2)
    net(torch.randn(3, 5, 4))[1].sum().backward()
    for p in net.parameters():
        assert p.grad[1].abs().sum() > 0
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0


@pytest.mark.parametrize("arch", ["separate", "multihead", "shared"])
def test_broadcast_input_equals_expanded_input(arch):
    torch.manual_seed(0)
    net = build_network(arch, 3, 4, (8,), 2)
    x = torch.randn(1, 6, 4)
    torch.testing.assert_close(net(x), net(x.expand(3, -1, -1)))
    assert net(x).shape == (3, 6, 2)


def test_multihead_shares_trunk_and_differs_by_head():
    torch.manual_seed(0)
    net = build_network("multihead", 2, 4, (8,), 1)
    x = torch.randn(1, 3, 4)
    out = net(x)
    feats = net.features(x)
    torch.testing.assert_close(out[1], feats[0] @ net.heads.weight[1] + net.heads.bias[1])
    assert not torch.allclose(out[0], out[1])


def test_shared_is_the_same_function_for_every_task():
    net = build_network("shared", 3, 4, (8,), 2)
    x = torch.randn(1, 5, 4).expand(3, -1, -1)
    out = net(x)
    torch.testing.assert_close(out[0], out[2])


def test_unknown_architecture_lists_allowed():
    with pytest.raises(ValueError, match="separate, multihead, shared"):
        build_network("moe", 2, 3, (4,), 1)


def test_shared_onehot_conditions_on_the_task_axis():
    """Row t is the shared MLP on [x, onehot(t)], computed independently; a (1, B) input is fed to
    every task, so policy j can act on any task's states."""
    from learning.networks.shared_onehot import SharedOneHotMLP
    torch.manual_seed(0)
    net = SharedOneHotMLP(3, 4, (5,), 2)
    x = torch.randn(1, 6, 4)
    out = net(x)
    w1, b1 = net.mlp.hidden[0].weight, net.mlp.hidden[0].bias
    w2, b2 = net.mlp.output.weight, net.mlp.output.bias
    for t in range(3):
        inp = torch.cat([x[0], torch.eye(3)[t].expand(6, 3)], dim=-1)
        torch.testing.assert_close(out[t], torch.relu(inp @ w1.T + b1) @ w2.T + b2)
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(net(x.expand(3, 6, 4)), out)

"""CARE + PTSL: CARE's encoding computed by hand, then task t's PTSL trunk computed by hand."""

import pytest
import torch

from learning.networks.care import CAREMLP
from learning.networks.care_ptsl import CAREPTSLMLP

T, B, IN, OUT = 3, 5, 4, 2


def lin(x, layer):
    return x @ layer.weight.T + layer.bias


def mlp(x, layers):
    for i, layer in enumerate(layers):
        x = lin(x if i == 0 else torch.relu(x), layer)
    return x


def randomise(net, seed=0):
    """Every parameter random (the PTSL branch's zero projections included), so both paths count."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen))


def reference(net: CAREPTSLMLP, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t alone, (B, in) -> (B, out): CARE's [z, c] by a per-expert loop, then PTSL layers
    o = W h + b + U (T_t^T D h + c_t) (residual none)."""
    emb = torch.relu(net.encoder.shared.task_embeddings[t])
    c = mlp(torch.relu(lin(torch.relu(lin(emb, net.encoder.shared.context[1])), net.encoder.shared.context[3])), net.encoder.shared.context[5][::2])
    logits = mlp(c, net.encoder.attention[::2])
    a = torch.softmax(logits / net.encoder.temperature, dim=0)
    z = 0
    for e in range(len(a)):
        h = x
        for i, layer in enumerate(net.encoder.shared.experts):
            h = (h if i == 0 else torch.relu(h)) @ layer.weight[e] + layer.bias[e, 0]
        z = z + a[e] * h
    h = torch.cat([z, c.expand(x.shape[0], -1)], dim=-1)
    trunk = net.trunk
    for i in range(trunk.num_layers):
        down, up = trunk.down_keys[i], trunk.up_keys[i]
        d = h @ trunk.proj[down] if down else h
        y = d @ trunk.task[i].weight[t] + trunk.task[i].bias[t, 0]
        out = lin(h, trunk.shared[i]) + (y @ trunk.proj[up] if up else y)
        h = torch.relu(out) if i < trunk.num_layers - 1 else out
    return h


def test_care_ptsl_batched_equals_hand_computed_per_task():
    torch.manual_seed(0)
    net = CAREPTSLMLP(T, IN, (8, 8), OUT, num_experts=3, pal_dim=3, task_embeddings=torch.randn(T, 6))
    randomise(net)
    x = torch.randn(T, B, IN)
    out = net(x)
    assert out.shape == (T, B, OUT) and net.features(x).shape == (T, B, 8)
    for t in range(T):
        torch.testing.assert_close(out[t], reference(net, x[t], t), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(net(x[:1]), net(x[:1].expand(T, -1, -1).contiguous()))


def test_care_ptsl_at_init_equals_care_with_the_same_shared_weights():
    """PTSL's zero-initialised task branch: at init the network is CARE with the trunk's shared layers."""
    torch.manual_seed(1)
    net = CAREPTSLMLP(T, IN, (8, 8), OUT, num_experts=3, pal_dim=3)
    care = CAREMLP(T, IN, (8, 8), OUT, num_experts=3)
    care.load_state_dict({**{k: v for k, v in net.state_dict().items() if not k.startswith("trunk.")},
                          "hidden.0.weight": net.trunk.shared[0].weight, "hidden.0.bias": net.trunk.shared[0].bias,
                          "hidden.1.weight": net.trunk.shared[1].weight, "hidden.1.bias": net.trunk.shared[1].bias,
                          "output.weight": net.trunk.shared[2].weight, "output.bias": net.trunk.shared[2].bias})
    x = torch.randn(T, B, IN)
    torch.testing.assert_close(net(x), care(x))
    randomise(net.trunk.proj)  # a non-zero branch makes them differ: the comparison can fail
    assert not torch.allclose(net(x), care(x))


def test_care_ptsl_task_isolation_and_options():
    torch.manual_seed(2)
    net = CAREPTSLMLP(T, IN, (8, 8), OUT, num_experts=2, pal_dim=4, residual_mode="sum")
    randomise(net)
    assert net.trunk.pal_dim == 4 and net.trunk.residual_mode == "sum" and net.encoder.shared.experts[0].weight.shape[0] == 2
    x = torch.randn(T, B, IN)
    y = x.clone()
    y[1] += 1.0
    out_x, out_y = net(x), net(y)
    torch.testing.assert_close(out_x[[0, 2]], out_y[[0, 2]])
    assert not torch.allclose(out_x[1], out_y[1])
    with pytest.raises(ValueError, match="equal hidden sizes"):
        CAREPTSLMLP(T, IN, (8, 6), OUT, shared_projection=True)

"""PTSL and Soft Modularization networks: shapes, hand-computed formulas, batched == per-task loop."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from learning.networks.ptsl import PTSLMLP
from learning.networks.soft_modular import SoftModularMLP

T, B, IN, OUT = 3, 5, 6, 2
MODES = ("none", "sum", "linear", "project")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise(net: torch.nn.Module, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def _lin(x: torch.Tensor, layer: torch.nn.Linear) -> torch.Tensor:
    return x @ layer.weight.T + layer.bias


# ----------------------------------------------------------------------------------------- PTSL
def _ptsl_reference(net: PTSLMLP, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t alone, (B, in) -> (B, out): o = W h + b + U (T_t^T u + c_t), u by residual mode."""
    h, d_prev, y_prev = x, None, None
    for i in range(net.num_layers):
        down, up = net.down_keys[i], net.up_keys[i]
        d = h @ net.proj[down] if down else h
        u = d
        if i and net.residual_mode == "sum":
            u = d + d_prev + y_prev
        elif i and net.residual_mode == "linear":
            u = net.alpha[0] * d + net.alpha[1] * d_prev + net.alpha[2] * y_prev
        elif i and net.residual_mode == "project":
            u = torch.cat([d, d_prev, y_prev], dim=1) @ net.res_proj
        y = u @ net.task[i].weight[t] + net.task[i].bias[t, 0]
        out = _lin(h, net.shared[i]) + (y @ net.proj[up] if up else y)
        h = torch.relu(out) if i < net.num_layers - 1 else out
        d_prev, y_prev = d, y
    return h


def reordering_rtol(num_layers: int, max_terms: int) -> float:
    """Relative tolerance for the same float32 network evaluated along two paths (a (1, B) input
    broadcast vs a (T, B) copy): with more than one torch thread the matmul kernels split each dot
    product of up to ``max_terms`` terms into per-thread partial sums, so the two paths add the same
    terms in another order. Reordering a float32 sum of n terms changes it by at most about
    n * eps * sum|terms| per layer (Higham, Accuracy and Stability, §4.2), i.e. relative to the
    output when no cancellation occurs: ``num_layers * max_terms * eps``. One thread: the default
    float32 tolerance of assert_close (1.3e-6)."""
    if torch.get_num_threads() == 1:
        return 1.3e-6
    return num_layers * max_terms * torch.finfo(torch.float32).eps


def test_ptsl_shapes_and_broadcast_input():
    net = PTSLMLP(T, IN, (16, 16), OUT, residual_mode="sum")
    _randomise(net)
    x = torch.randn(1, B, IN)
    assert net(x).shape == (T, B, OUT) and net.features(x).shape == (T, B, 16)
    assert net(torch.randn(T, B, IN)).shape == (T, B, OUT)
    # 3 layers; the widest sum adds the shared layer's 16 terms, the task layer's 32 and the up
    # projection's 32, and the sum residual 3 more vectors: 16 + 32 + 32 + 3 terms per output.
    torch.testing.assert_close(net(x), net(x.expand(T, -1, -1)), rtol=reordering_rtol(3, 83), atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("branch_init", ["ptsl", "lora"])
@pytest.mark.parametrize("skip", [True, False])
def test_ptsl_task_branch_is_zero_at_init(mode, shared, branch_init, skip):
    net = PTSLMLP(T, IN, (16, 16), OUT, residual_mode=mode, shared_projection=shared,
                  branch_init=branch_init, skip_projection=skip, pal_dim=4)
    x = torch.randn(T, B, IN)
    h = x
    for i, layer in enumerate(net.shared):  # the shared backbone alone
        h = F.linear(h, layer.weight, layer.bias)
        h = torch.relu(h) if i < len(net.shared) - 1 else h
    torch.testing.assert_close(net(x), h, rtol=0, atol=0)


# Scalar net, hidden (1, 1), pal_dim 1, every layer projected. x = 2 by hand:
# layer 0: s = 2*2+1 = 5, d0 = 1*2 = 2, y0 = 3*2+1 = 7, h1 = relu(5 + 1*7) = 12
# layer 1: s = 12, d1 = 0.5*12 = 6, u1 (mode), y1 = 2 u1 + 1, h2 = relu(12 + y1)
# layer 2: s = h2, d2 = 0.5 h2, u2 (mode), y2 = u2, out = h2 + y2 (no activation)
#   none:    u1 = 6, y1 = 13, h2 = 25, u2 = 12.5 -> 37.5
#   sum:     u1 = 6+2+7 = 15, y1 = 31, h2 = 43, u2 = 21.5+6+31 = 58.5 -> 101.5
#   linear (a = 1, 2, 3): u1 = 6+4+21 = 31, y1 = 63, h2 = 75, u2 = 37.5+12+189 -> 313.5
#   project (P = 1, 0.5, 2): u1 = 6+1+14 = 21, y1 = 43, h2 = 55, u2 = 27.5+3+86 -> 171.5
# x = -2: h1 = relu(-3 - 5) = 0, d0 = -2, y0 = -5, d1 = d2 = 0 whenever h = 0:
#   none: y1 = 1, h2 = 1, out = 1 + 0.5 = 1.5;  sum: u1 = -7, y1 = -13, h2 = 0, u2 = -13 -> -13
#   linear: u1 = -4-15, y1 = -37, u2 = 3*(-37) -> -111;  project: u1 = -1-10, y1 = -21, u2 -> -42
@pytest.mark.parametrize("mode,expected", [
    ("none", (37.5, 1.5)), ("sum", (101.5, -13.0)), ("linear", (313.5, -111.0)),
    ("project", (171.5, -42.0)),
])
def test_ptsl_residual_modes_hand_computed(mode, expected):
    net = PTSLMLP(1, 1, (1, 1), 1, pal_dim=1, residual_mode=mode, skip_projection=False)
    assert net.down_keys == ["down0", "down", "down"] and net.up_keys == ["up", "up", "up2"]
    values = {"shared.0.weight": 2.0, "shared.0.bias": 1.0, "shared.1.weight": 1.0,
              "shared.2.weight": 1.0, "proj.down0": 1.0, "proj.down": 0.5, "proj.up": 1.0,
              "proj.up2": 1.0, "task.0.weight": 3.0, "task.0.bias": 1.0, "task.1.weight": 2.0,
              "task.1.bias": 1.0, "task.2.weight": 1.0}
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.fill_(values.get(name, 0.0))
        if mode == "linear":
            net.alpha.copy_(torch.tensor([1.0, 2.0, 3.0]))
        if mode == "project":
            net.res_proj.copy_(torch.tensor([[1.0], [0.5], [2.0]]))
    out = net(torch.tensor([[[2.0], [-2.0]]]))
    torch.testing.assert_close(out, torch.tensor([[[expected[0]], [expected[1]]]]))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shared", [True, False])
def test_ptsl_batched_equals_per_task_loop(mode, shared):
    net = PTSLMLP(T, IN, (16, 16, 16), OUT, residual_mode=mode, shared_projection=shared, pal_dim=4)
    _randomise(net)
    net.double()  # float64: the comparison tests the formula, not float32 summation order
    for x in (torch.randn(T, B, IN, dtype=torch.float64), torch.randn(1, B, IN, dtype=torch.float64)):
        expected = torch.stack([_ptsl_reference(net, x[t % x.shape[0]], t) for t in range(T)])
        torch.testing.assert_close(net(x), expected)


@pytest.mark.parametrize("mode", MODES)
def test_ptsl_task_isolation(mode):
    net = PTSLMLP(T, IN, (16, 16), OUT, residual_mode=mode, pal_dim=4)
    _randomise(net)
    x = torch.randn(1, B, IN)
    before = net(x)
    with torch.no_grad():
        for task in net.task:
            task.weight[1] += 1.0
            task.bias[1] += 1.0
    changed = (net(x) - before).abs().amax(dim=(1, 2))
    assert changed[1] > 1e-3 and changed[0] == 0 and changed[2] == 0


def test_ptsl_projection_sharing_across_layers():
    shared = PTSLMLP(T, IN, (16, 16, 16), OUT, pal_dim=4, skip_projection=False)
    assert shared.down_keys == ["down0", "down", "down", "down"]
    assert shared.up_keys == ["up", "up", "up", "up3"]
    own = PTSLMLP(T, IN, (16, 16, 16), OUT, pal_dim=4, skip_projection=False, shared_projection=False)
    assert own.down_keys == ["down0", "down1", "down2", "down3"]
    assert own.up_keys == ["up0", "up1", "up2", "up3"]
    for net in (shared, own):  # D and U carry no task axis; T and c do
        assert all(p.dim() == 2 for p in net.proj.values())
        assert all(task.weight.shape[0] == T for task in net.task)
    n_shared = sum(p.numel() for p in shared.parameters())
    n_own = sum(p.numel() for p in own.parameters())
    assert n_own - n_shared == 2 * (16 * 4 + 4 * 16)  # two more D (16x4) and two more U (4x16)


def test_ptsl_projection_skip_rule():
    # layer 0 down, N=10, in=39: p=32: 39*32 + 10*33*32 = 11808 <= 10*40*32 = 12800 -> project;
    # p=50: 39*50 + 10*51*50 = 27450 > 10*40*50 = 20000 -> skip. Output up (out 8) is skipped:
    # 8*p + 10*(p+1)*p > 10*(p+1)*8.
    net32 = PTSLMLP(10, 39, (400, 400), 8, pal_dim=32)
    net50 = PTSLMLP(10, 39, (400, 400), 8, pal_dim=50)
    assert net32.down_keys == ["down0", "down", "down"] and net50.down_keys == [None, "down", "down"]
    assert net32.up_keys[-1] is None and net50.up_keys[-1] is None
    assert net50.task[0].weight.shape == (10, 39, 50) and net50.task[-1].weight.shape == (10, 50, 8)


def test_ptsl_zero_init_gradients():
    x = torch.randn(1, B, IN)
    net = PTSLMLP(T, IN, (16, 16), OUT, pal_dim=4)  # shared D reaches the output without a U
    net(x).square().sum().backward()
    assert net.proj["down"].grad.abs().sum() > 0 and net.task[-1].bias.grad.abs().sum() > 0
    own = PTSLMLP(T, IN, (16, 16), OUT, pal_dim=4, shared_projection=False)
    own(x).square().sum().backward()  # the original's saddle: D = U = c = 0 -> all gradients 0
    grads = [own.proj["down1"].grad, own.proj["up1"].grad, own.task[1].weight.grad, own.task[1].bias.grad]
    assert all(g.abs().sum() == 0 for g in grads)
    lora = PTSLMLP(T, IN, (16, 16), OUT, pal_dim=4, shared_projection=False, branch_init="lora")
    lora(x).square().sum().backward()
    assert lora.proj["up1"].grad.abs().sum() > 0


# ------------------------------------------------------------------------------ Soft Modularization
def _sm_reference(net: SoftModularMLP, x: torch.Tensor, t: int) -> torch.Tensor:
    """Task t alone with explicit loops over modules, (B, in) -> (B, out)."""
    paper, n, layers = net.variant == "paper", net.num_modules, net.num_layers
    f = x
    for i, layer in enumerate(net.obs_net):
        f = _lin(torch.relu(f) if i else f, layer)
    g = net.task_embedding[t, 0] * f
    for layer in net.gating:
        g = _lin(torch.relu(g), layer)
    probs, logits = [], None
    for i in range(layers):
        if i == 0:
            hidden = torch.relu(g)
        else:
            cond = torch.cat([p.reshape(len(x), -1) for p in probs], 1) if paper else logits
            hidden = torch.relu(_lin(cond, net.route_up[i - 1]) * g)
        logits = _lin(hidden, net.route_down[i])
        probs.append(torch.softmax(logits.reshape(len(x), -1, n), dim=-1))
    inputs = [torch.relu(f) if paper else f] * n
    for i in range(layers):
        outs = [inputs[k] @ net.module_weight[i][k] + net.module_bias[i][k] for k in range(n)]
        outs = outs if paper else [torch.relu(o) for o in outs]
        inputs = [sum(probs[i][:, j, k, None] * outs[k] for k in range(n)) for j in range(probs[i].shape[1])]
        inputs = [torch.relu(v) for v in inputs] if paper else inputs
    return _lin(inputs[0], net.last)


@pytest.mark.parametrize("variant", ["paper", "ctpg"])
def test_sm_shapes_and_routing_simplex(variant):
    net = SoftModularMLP(T, IN, (32, 32), OUT, num_modules=3, module_hidden=8, variant=variant)
    _randomise(net)
    x = torch.randn(1, B, IN)
    assert net(x).shape == (T, B, OUT) and net.features(x).shape == (T, B, 8)
    assert net(torch.randn(T, B, IN)).shape == (T, B, OUT)
    torch.testing.assert_close(net(x), net(x.expand(T, -1, -1)))
    probs = net.routing(x)
    assert [p.shape for p in probs] == [(T, B, 3, 3)] * 3 + [(T, B, 1, 3)]
    for p in probs:
        assert (p >= 0).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))


@pytest.mark.parametrize("variant", ["paper", "ctpg"])
def test_sm_batched_equals_per_task_loop(variant):
    net = SoftModularMLP(T, IN, (32, 32), OUT, num_modules=3, module_hidden=8, gating_hidden=16,
                         variant=variant)
    _randomise(net)
    net.double()
    for x in (torch.randn(T, B, IN, dtype=torch.float64), torch.randn(1, B, IN, dtype=torch.float64)):
        expected = torch.stack([_sm_reference(net, x[t % x.shape[0]], t) for t in range(T)])
        torch.testing.assert_close(net(x), expected)


@pytest.mark.parametrize("variant", ["paper", "ctpg"])
def test_sm_task_embedding_isolation(variant):
    net = SoftModularMLP(T, IN, (32, 32), OUT, num_modules=3, module_hidden=8, variant=variant)
    _randomise(net)
    x = torch.randn(1, B, IN)
    before = net(x)
    with torch.no_grad():
        net.task_embedding[2] += 1.0
    changed = (net(x) - before).abs().amax(dim=(1, 2))
    assert changed[2] > 1e-3 and changed[0] == 0 and changed[1] == 0


@pytest.mark.parametrize("variant", ["paper", "ctpg"])
def test_sm_one_module_per_layer_is_plain_mlp(variant):
    net = SoftModularMLP(T, IN, (32, 32), OUT, num_layers=3, num_modules=1, module_hidden=8, variant=variant)
    _randomise(net)
    x = torch.randn(T, B, IN)
    h = F.linear(torch.relu(F.linear(x, net.obs_net[0].weight, net.obs_net[0].bias)),
                 net.obs_net[1].weight, net.obs_net[1].bias)
    h = torch.relu(h) if variant == "paper" else h  # CTPG feeds F(s) to the modules without ReLU
    for weight, bias in zip(net.module_weight, net.module_bias):
        h = torch.relu(h @ weight[0] + bias[0])
    torch.testing.assert_close(net(x), F.linear(h, net.last.weight, net.last.bias))


# in 1, E 1, no gating layers, n 2, L 2, module width 1; route weights 0 so P comes from biases:
# P_0 = [[3/4, 1/4], [1/4, 3/4]], P_1 = [[3/4, 1/4]]. f = x = 2; layer-0 modules: 2 and -0.5*2 = -1.
# paper: x1 = relu(1.5 - 0.25) = 1.25, relu(0.5 - 0.75) = 0; layer 1: 1.25, 2*0 - 1 = -1;
#        relu(0.9375 - 0.25) = 0.6875 -> 2*0.6875 + 1 = 2.375
# ctpg:  relu first: 2, 0 -> x1 = 1.5, 0.5; layer 1: relu(1.5) = 1.5, relu(2*0.5 - 1) = 0;
#        0.75*1.5 = 1.125 -> 2*1.125 + 1 = 3.25
@pytest.mark.parametrize("variant,expected", [("paper", 2.375), ("ctpg", 3.25)])
def test_sm_routing_mix_hand_computed(variant, expected):
    net = SoftModularMLP(1, 1, (1,), 1, num_layers=2, num_modules=2, module_hidden=1,
                         num_gating_layers=0, variant=variant)
    ln3 = math.log(3.0)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.obs_net[0].weight.fill_(1.0)
        net.task_embedding.fill_(1.0)
        net.route_down[0].bias.copy_(torch.tensor([ln3, 0.0, 0.0, ln3]))
        net.route_down[1].bias.copy_(torch.tensor([ln3, 0.0]))
        net.module_weight[0].copy_(torch.tensor([1.0, -0.5]).view(2, 1, 1))
        net.module_weight[1].copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1))
        net.module_bias[1].copy_(torch.tensor([0.0, -1.0]).view(2, 1))
        net.last.weight.fill_(2.0)
        net.last.bias.fill_(1.0)
    torch.testing.assert_close(net(torch.tensor([[[2.0]]])), torch.tensor([[[expected]]]))

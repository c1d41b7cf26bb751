"""Every architecture of learning/networks against its paper's equations, gradients included.

Each reference below is written from the paper's / original code's equations (cited per function) and
reads the raw weights by parameter name only: the structure (which layers exist, where the ReLUs are,
how the routing and the projections are wired) is written here, not read from the module under test.
A reference records which parameters it read, so a module with a missing or an extra parameter fails.

- forward: the module's output equals the reference's, for a (T, B) input and a broadcast (1, B) one;
- gradients: a random linear loss of the output gives every parameter the reference's gradient (a
  ``.detach()`` anywhere in the module, or a parameter that the equations use and the module does not
  train, shows up as a mismatch), and each of them is non-zero with random weights;
- initialisation: biases zero, weights with the source's variance (Xavier: 2 / (fan_in + fan_out)),
  and the source-specific cases (PTSL's N(0, 1) task matrices and zero projections, PaCo's distinct
  compositions, ...).
"""

from __future__ import annotations

import itertools

import pytest
import torch

from learning.networks import build_network

T, B = 3, 5


class Recorder(dict):
    """The module's parameters as fresh float64 leaves; remembers which ones the reference read."""

    def __init__(self, net: torch.nn.Module):
        super().__init__({k: v.detach().clone().double().requires_grad_(True)
                          for k, v in net.named_parameters()})
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> torch.Tensor:
        self.read.add(key)
        return super().__getitem__(key)


def randomise(net: torch.nn.Module, seed: int = 0, scale: float = 0.4) -> None:
    """Every parameter random, so zero-initialised parts (PTSL's projections) take part too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def lin(x: torch.Tensor, p: Recorder, name: str) -> torch.Tensor:
    """nn.Linear ``name`` by hand: x W^T + b (W stored (out, in))."""
    return x @ p[f"{name}.weight"].T + p[f"{name}.bias"]


def check_against_reference(net: torch.nn.Module, reference, in_dim: int, seed: int = 0) -> None:
    """Forward and gradients of ``net`` (float64, random weights) equal ``reference(p, x)``'s; every
    parameter is read by the reference and gets a non-zero gradient."""
    net.double()
    randomise(net, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    for t_in in (T, 1):
        x = torch.randn(t_in, B, in_dim, generator=gen, dtype=torch.float64)
        p = Recorder(net)
        out = net(x)
        expected = reference(p, x.expand(T, -1, -1))
        torch.testing.assert_close(out, expected)
        assert set(p.read) == set(p), f"not read by the equations: {set(p) - p.read}"
        weight = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        net.zero_grad(set_to_none=True)
        (out * weight).sum().backward()
        (expected * weight).sum().backward()
        for name, param in net.named_parameters():
            assert param.grad is not None, f"{name}: no gradient"
            torch.testing.assert_close(param.grad, p[name].grad, msg=lambda m, n=name: f"{n}: {m}")
            assert param.grad.abs().sum() > 0, f"{name}: zero gradient"


def relu(x: torch.Tensor) -> torch.Tensor:
    return torch.clamp(x, min=0.0)


# ------------------------------------------------------------------ separate, multihead, shared_onehot
def separate_reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
    """T independent MLPs (reference §2.2): h = ReLU(h W_t + b_t), linear output."""
    out = []
    for t in range(T):
        h = x[t]
        for i in range(2):
            h = relu(h @ p[f"hidden.{i}.weight"][t] + p[f"hidden.{i}.bias"][t, 0])
        out.append(h @ p["output.weight"][t] + p["output.bias"][t, 0])
    return torch.stack(out)


def multihead_reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
    """A shared ReLU trunk and task t's own linear head."""
    h = relu(lin(relu(lin(x, p, "hidden.0")), p, "hidden.1"))
    return torch.stack([h[t] @ p["heads.weight"][t] + p["heads.bias"][t, 0] for t in range(T)])


def shared_onehot_reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
    """One MLP on [s, onehot(t)] (CTPG's MTSAC, anchors §1.10)."""
    onehot = torch.eye(T, dtype=x.dtype)[:, None, :].expand(T, x.shape[1], T)
    h = torch.cat([x, onehot], -1)
    h = relu(lin(relu(lin(h, p, "mlp.hidden.0")), p, "mlp.hidden.1"))
    return lin(h, p, "mlp.output")


@pytest.mark.parametrize("arch, reference", [("separate", separate_reference),
                                             ("multihead", multihead_reference),
                                             ("shared_onehot", shared_onehot_reference)])
def test_plain_networks_match_their_equations(arch, reference):
    torch.manual_seed(0)
    check_against_reference(build_network(arch, T, 4, (6, 5), 2), reference, 4)


# ------------------------------------------------------------------------------------------- PTSL
def ptsl_reference(mode: str, shared: bool, layers: int = 3, downs=None, ups=None, prefix: str = ""):
    """PTSL (anchors §2.1-§2.3): o_l = W_l h + b_l + U_l (T_{l,t}^T u_l + c_{l,t}), d_l = D_l h,
    u_0 = d_0, u_l by residual mode. Every layer projected (``skip_projection=False``) unless ``downs``
    / ``ups`` name the projections (None: identity, the layer's D or U skipped by PTSL's rule).
    Shared projection: layer 0 has its own D ("down0"), the output layer its own U ("up{L-1}"), all
    other layers use one D ("down") and one U ("up"); independent: "down{l}" / "up{l}" everywhere."""
    def down(i):
        key = downs[i] if downs else (f"down{i}" if not shared or i == 0 else "down")
        return key and f"{prefix}proj.{key}"

    def up(i):
        key = ups[i] if ups else (f"up{i}" if not shared or i == layers - 1 else "up")
        return key and f"{prefix}proj.{key}"

    def reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
        rows = []
        for t in range(x.shape[0]):
            h, d_prev, y_prev = x[t], None, None
            for i in range(layers):
                d = h @ p[down(i)] if down(i) else h
                if i == 0 or mode == "none":
                    u = d
                elif mode == "sum":
                    u = d + d_prev + y_prev
                elif mode == "linear":
                    a = p[f"{prefix}alpha"]
                    u = a[0] * d + a[1] * d_prev + a[2] * y_prev
                else:
                    u = torch.cat([d, d_prev, y_prev], -1) @ p[f"{prefix}res_proj"]
                y = u @ p[f"{prefix}task.{i}.weight"][t] + p[f"{prefix}task.{i}.bias"][t, 0]
                o = lin(h, p, f"{prefix}shared.{i}") + (y @ p[up(i)] if up(i) else y)
                h = relu(o) if i < layers - 1 else o
                d_prev, y_prev = d, y
            rows.append(h)
        return torch.stack(rows)
    return reference


@pytest.mark.parametrize("mode, shared", itertools.product(("none", "sum", "linear", "project"),
                                                           (True, False)))
def test_ptsl_matches_its_equations_with_gradients(mode, shared):
    torch.manual_seed(0)
    net = build_network("ptsl", T, 4, (6, 6), 2, options=dict(
        pal_dim=3, residual_mode=mode, shared_projection=shared, skip_projection=False))
    check_against_reference(net, ptsl_reference(mode, shared), 4)


# ------------------------------------------------------------------------------------------- PaCo
def paco_reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
    """PaCo §3: task t's layer theta_t = sum_k w_tk Phi_k (weights and biases), ReLU MLP."""
    rows = []
    for t in range(T):
        w, h = p["composition"][t], x[t]
        for i in range(3):
            weight = sum(w[k] * p[f"weights.{i}"][k] for k in range(len(w)))
            bias = sum(w[k] * p[f"biases.{i}"][k, 0] for k in range(len(w)))
            h = h @ weight + bias
            h = relu(h) if i < 2 else h
        rows.append(h)
    return torch.stack(rows)


def test_paco_matches_its_equations_with_gradients():
    torch.manual_seed(0)
    check_against_reference(build_network("paco", T, 4, (6, 5), 2, options=dict(num_param_sets=3)),
                            paco_reference, 4)


# ------------------------------------------------------------------------------------------ MOORE
def moore_reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
    """MOORE (Hendawi et al. 2024, eq. 3-5): experts u_e(s), classical Gram-Schmidt per sample
    (v_e = w_e / (|w_e| + 1e-8), w_e = u_e - sum_{j<e} <u_e, v_j> v_j), f_t = tanh(sum_e w_te v_e),
    task t's linear head. Written sample by sample."""
    num_experts = p["task_weights"].shape[1]
    rows = []
    for t in range(T):
        samples = []
        for s in x[t]:
            u = []
            for e in range(num_experts):
                h = s @ p["experts.0.weight"][e] + p["experts.0.bias"][e, 0]
                u.append(relu(h) @ p["experts.1.weight"][e] + p["experts.1.bias"][e, 0])
            v = []
            for e in range(num_experts):
                w = u[e] - sum(((u[e] * vj).sum() * vj for vj in v), torch.zeros_like(u[e]))
                v.append(w / (torch.sqrt((w * w).sum()) + 1e-8))
            f = torch.tanh(sum(p["task_weights"][t, e] * v[e] for e in range(num_experts)))
            samples.append(f @ p["heads.weight"][t] + p["heads.bias"][t, 0])
        rows.append(torch.stack(samples))
    return torch.stack(rows)


def test_moore_matches_its_equations_with_gradients_through_gram_schmidt():
    torch.manual_seed(0)
    check_against_reference(build_network("moore", T, 4, (6, 5), 2, options=dict(num_experts=3)),
                            moore_reference, 4)


# ------------------------------------------------------------------------- initial statistics
def xavier_variance(shape: torch.Size) -> float:
    """Var of Xavier-uniform / -normal with fans from the last two axes: 2 / (fan_in + fan_out)."""
    return 2.0 / (shape[-1] + shape[-2])


def assert_variance(name: str, tensor: torch.Tensor, expected: float, tol: float = 0.3) -> None:
    var = tensor.detach().double().pow(2).mean().item()  # zero-mean initialisations
    assert abs(var / expected - 1.0) < tol, f"{name}: variance {var:.4g}, expected {expected:.4g}"


WIDE = dict(num_tasks=10, in_dim=30, hidden_sizes=(64, 64), out_dim=8)


@pytest.mark.parametrize("arch, exceptions", [
    ("separate", {}), ("multihead", {}), ("shared_onehot", {}),
    ("paco", {"composition": ("xavier", (10, 5))}),
    ("moore", {"task_weights": ("xavier", (10, 4))}),
])
def test_initial_statistics_are_xavier_with_zero_biases(arch, exceptions):
    """garage / mtrl / CTPG initialisation: Xavier weights (per task / expert / parameter set: fans
    from the last two axes), zero biases."""
    torch.manual_seed(0)
    net = build_network(arch, WIDE["num_tasks"], WIDE["in_dim"], WIDE["hidden_sizes"], WIDE["out_dim"])
    for name, param in net.named_parameters():
        if "bias" in name:
            assert param.abs().sum() == 0, f"{name}: bias not zero"
        elif name in exceptions:
            assert_variance(name, param, xavier_variance(exceptions[name][1]))
        else:
            assert_variance(name, param, xavier_variance(param.shape))


def test_ptsl_initial_statistics():
    """PTSL (anchors §2.4): shared layers Xavier with zero bias; D, U and the residual projection zero;
    task matrices T ~ N(0, 1) (torch.randn) and c = 0; the linear residual's weights 1/3 each."""
    torch.manual_seed(0)
    for mode in ("none", "linear", "project"):
        net = build_network("ptsl", 10, 30, (64, 64), 8, options=dict(pal_dim=32, residual_mode=mode))
        for name, param in net.named_parameters():
            if name.startswith("shared.") and name.endswith("weight"):
                assert_variance(name, param, xavier_variance(param.shape))
            elif name.startswith("proj.") or name == "res_proj" or name.endswith("bias"):
                assert param.abs().sum() == 0, f"{name}: not zero"
            elif name.startswith("task."):
                assert_variance(name, param, 1.0, tol=0.1)
            elif name == "alpha":
                torch.testing.assert_close(param, torch.full((3,), 1.0 / 3.0))
            else:
                raise AssertionError(f"unexpected parameter {name}")


def test_paco_compositions_differ_between_tasks_at_start():
    """PaCo / CTPG draw every task's w_t independently (Xavier table): no two tasks start equal, so
    tasks are distinguishable from the first update."""
    torch.manual_seed(0)
    net = build_network("paco", 6, 4, (8,), 2, options=dict(num_param_sets=5))
    w = net.composition.detach()
    gaps = torch.cdist(w, w) + torch.eye(6) * 1e9
    assert gaps.min() > 1e-3
    torch.testing.assert_close(net.initial_composition, w)


# ------------------------------------------------------------------------- option effects
def _outputs(arch: str, options: dict, seed: int = 0, hidden=(8, 8)) -> tuple[torch.Tensor, int]:
    torch.manual_seed(seed)
    net = build_network(arch, T, 4, hidden, 2, options=options)
    randomise(net, seed, scale=0.1)  # small enough that CARE's attention is not saturated
    x = torch.randn(T, B, 4, generator=torch.Generator().manual_seed(9))
    return net(x).detach(), sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("arch, base, changed", [
    ("ptsl", dict(pal_dim=3), dict(pal_dim=4)),
    ("ptsl", dict(pal_dim=3), dict(pal_dim=3, shared_projection=False)),
    ("ptsl", dict(pal_dim=3), dict(pal_dim=3, residual_mode="sum")),
    ("ptsl", dict(pal_dim=3), dict(pal_dim=3, skip_projection=False)),
    ("paco", dict(num_param_sets=3), dict(num_param_sets=2)),
    ("moore", dict(num_experts=3), dict(num_experts=2)),
    ("soft_modular", dict(variant="paper"), dict(variant="ctpg")),
    ("soft_modular", dict(variant="paper"), dict(variant="mtrl")),
    ("soft_modular", dict(variant="ctpg"), dict(variant="ctpg", num_gating_layers=2)),
    ("soft_modular", dict(num_layers=3), dict(num_layers=2)),
    ("soft_modular", dict(num_modules=3), dict(num_modules=2)),
    ("soft_modular", dict(module_hidden=8), dict(module_hidden=6)),
    ("soft_modular", dict(gating_hidden=8), dict(gating_hidden=6)),
    ("soft_modular", dict(variant="mtrl"), dict(variant="mtrl", num_layers=3)),
    ("soft_modular", dict(variant="mtrl"), dict(variant="mtrl", num_modules=3)),
    ("soft_modular", dict(variant="mtrl"), dict(variant="mtrl", module_hidden=6)),
    ("care", dict(num_experts=3), dict(num_experts=2)),
    ("care", dict(temperature=1.0), dict(temperature=0.3)),
    ("care_ptsl", dict(pal_dim=3), dict(pal_dim=4)),
    ("care_ptsl", dict(pal_dim=3), dict(pal_dim=3, shared_projection=False)),
    ("care_ptsl", dict(pal_dim=3), dict(pal_dim=3, residual_mode="sum")),
    ("care_ptsl", dict(pal_dim=3, num_experts=3), dict(pal_dim=3, num_experts=2)),
    ("care_ptsl", dict(pal_dim=3, temperature=1.0), dict(pal_dim=3, temperature=0.3)),
])
def test_each_option_has_an_observable_effect(arch, base, changed):
    """A different option value gives another function or parameter count (an option dropped on the
    way to the module would give the same)."""
    out_a, n_a = _outputs(arch, base)
    out_b, n_b = _outputs(arch, changed)
    assert n_a != n_b or not torch.allclose(out_a, out_b)


# ----------------------------------------------------------------------------- Soft Modularization
def sm_reference(variant: str, layers: int, modules: int, gating_layers: int):
    """Soft Modularization (Yang et al. 2020, §4.2; Soft-Module code for "paper", CTPG's
    ``SoftModularizedMLP`` for "ctpg"), task t, written with loops over modules:
    f = L1(ReLU(L0(s))); z = e_t * f; g = gating_layers Linear layers on ReLU(z), ReLU between;
    q_0 = Wd_0 ReLU(g), q_l = Wd_l ReLU(Wu_l(c_l) * g), P_l = row softmax of q_l ((n, n), last (1, n));
    paper: c_l = [P_0 .. P_{l-1}], x_0 = ReLU(f), x_{l+1,j} = ReLU(sum_k P_l[j,k] (x_{l,k} W_{l,k} + b_{l,k}));
    ctpg:  c_l = q_{l-1},           x_0 = f,       x_{l+1,j} = sum_k P_l[j,k] ReLU(x_{l,k} W_{l,k} + b_{l,k});
    output = Linear(x_L)."""
    def reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
        rows = []
        for t in range(T):
            f = lin(relu(lin(x[t], p, "obs_net.0")), p, "obs_net.1")
            g = p["task_embedding"][t, 0] * f
            for i in range(gating_layers):
                g = lin(relu(g), p, f"gating.{i}")
            probs, logits = [], None
            for i in range(layers):
                if i == 0:
                    hidden = relu(g)
                else:
                    cond = torch.cat([q.flatten(1) for q in probs], 1) if variant == "paper" else logits
                    hidden = relu(lin(cond, p, f"route_up.{i - 1}") * g)
                logits = lin(hidden, p, f"route_down.{i}")
                rows_l = modules if i < layers - 1 else 1
                probs.append(torch.softmax(logits.reshape(-1, rows_l, modules), -1))
            inputs = [relu(f) if variant == "paper" else f] * modules
            for i in range(layers):
                outs = [inputs[k] @ p[f"module_weight.{i}"][k] + p[f"module_bias.{i}"][k] for k in range(modules)]
                if variant == "ctpg":
                    outs = [relu(o) for o in outs]
                mixed = [sum(probs[i][:, j, k, None] * outs[k] for k in range(modules))
                         for j in range(probs[i].shape[1])]
                inputs = [relu(m) for m in mixed] if variant == "paper" else mixed
            rows.append(lin(inputs[0], p, "last"))
        return torch.stack(rows)
    return reference


@pytest.mark.parametrize("variant, gating_layers", [("paper", 2), ("ctpg", 1), ("ctpg", 2)])
def test_soft_modular_matches_its_equations_with_gradients(variant, gating_layers):
    torch.manual_seed(0)
    net = build_network("soft_modular", T, 4, (6, 6), 2, options=dict(
        variant=variant, num_layers=3, num_modules=2, module_hidden=5, gating_hidden=7,
        num_gating_layers=gating_layers))
    check_against_reference(net, sm_reference(variant, 3, 2, gating_layers), 4)


def sm_mtrl_reference(layers: int, modules: int, state_dim: int | None = None):
    """mtrl's SoftModularizedMLP as PTSL's SM baseline (PTSL ``soft_modularization.py`` lines 86-105 and
    185-201, ``encoder.py`` 283-292, ``task_encoder.py`` 67-82, ``critic.py`` 275-285), task t:
    f = L4(ReLU(L2(ReLU(L0(s))))), critic: f = P([f, a]); e_t = M4(ReLU(M2(ReLU(M0(ReLU(E_t))))));
    r = R(f * e_t); q_0 = Wd_0 ReLU(r), q_l = Wd_l ReLU(Wu_l(q_{l-1}) * r); P_l = row softmax;
    h_{l+1, j} = sum_k P_l[j, k] ReLU(h_{l,k} W_{l,k} + b_{l,k}); y = mean_k (h_k W_k + b_k)."""
    def reference(p: Recorder, x: torch.Tensor) -> torch.Tensor:
        rows = []
        s_dim = x.shape[-1] if state_dim is None else state_dim
        for t in range(T):
            f = lin(relu(lin(relu(lin(x[t, :, :s_dim], p, "shared.encoder.0")), p, "shared.encoder.2")),
                    p, "shared.encoder.4")
            if s_dim < x.shape[-1]:
                f = lin(torch.cat([f, x[t, :, s_dim:]], -1), p, "action_projection")
            e = relu(p["shared.task_table"][t])
            e = lin(relu(lin(relu(lin(e, p, "shared.task_mlp.0")), p, "shared.task_mlp.2")), p, "shared.task_mlp.4")
            r = lin(f * e, p, "routing_projection")
            q = lin(relu(r), p, "route_down.0")
            probs = [torch.softmax(q.reshape(-1, modules, modules), -1)]
            for i in range(1, layers - 1):
                q = lin(relu(lin(q, p, f"route_up.{i - 1}") * r), p, f"route_down.{i}")
                probs.append(torch.softmax(q.reshape(-1, modules, modules), -1))
            h = [f] * modules
            for i in range(layers - 1):
                outs = [relu(h[k] @ p[f"module_weight.{i}"][k] + p[f"module_bias.{i}"][k]) for k in range(modules)]
                h = [sum(probs[i][:, j, k, None] * outs[k] for k in range(modules)) for j in range(modules)]
            last = layers - 1
            rows.append(sum(h[k] @ p[f"module_weight.{last}"][k] + p[f"module_bias.{last}"][k]
                            for k in range(modules)) / modules)
        return torch.stack(rows)
    return reference


@pytest.mark.parametrize("layers, state_dim", [(2, None), (3, None), (2, 3)])
def test_soft_modular_mtrl_matches_its_equations_with_gradients(layers, state_dim):
    """The actor form (state only) and the critic form (state_dim 3 of 4 inputs: [F(s), a] projected)."""
    torch.manual_seed(0)
    net = build_network("soft_modular", T, 4, (6,), 2, options=dict(
        variant="mtrl", num_layers=layers, num_modules=3, state_dim=state_dim))
    check_against_reference(net, sm_mtrl_reference(layers, 3, state_dim), 4)


def test_soft_modular_mtrl_initial_statistics_and_routing_rows():
    """mtrl's weight_init: Xavier-uniform weights (per module), zero biases; the task table keeps
    nn.Embedding's N(0, 1); the routing matrices are row-stochastic."""
    torch.manual_seed(0)
    net = build_network("soft_modular", 10, 30, (64,), 8, options=dict(variant="mtrl"))
    for name, prm in net.named_parameters():
        if "bias" in name:
            assert prm.abs().sum() == 0, name
        elif name == "shared.task_table":
            assert_variance(name, prm, 1.0, tol=0.2)
        else:
            assert_variance(name, prm, xavier_variance(prm.shape), tol=0.35)
    probs = net.routing(torch.randn(1, 5, 30))
    assert len(probs) == 1 and probs[0].shape == (10, 5, 4, 4)
    torch.testing.assert_close(probs[0].sum(-1), torch.ones(10, 5, 4))


def test_soft_modular_variant_defaults_and_bad_options():
    """ctpg: one gating layer (CTPG's projection_before_routing); paper: two; mtrl: one routing
    projection only; an unknown variant names the allowed ones."""
    assert len(build_network("soft_modular", T, 4, (8,), 2, options=dict(variant="ctpg")).gating) == 1
    assert len(build_network("soft_modular", T, 4, (8,), 2, options=dict(variant="paper")).gating) == 2
    with pytest.raises(ValueError, match="paper, ctpg, mtrl"):
        build_network("soft_modular", T, 4, (8,), 2, options=dict(variant="soft"))
    with pytest.raises(ValueError, match="--sm_gating_layers must be 1"):
        build_network("soft_modular", T, 4, (8,), 2, options=dict(variant="mtrl", num_gating_layers=2))

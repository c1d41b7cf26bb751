"""Batched T-task SAC update time of every architecture at its paper's size, beside MT-SAC's, in one run.

Milliseconds per multi-task SAC update (critics, actor, temperature, Polyak) on (T, B) minibatches of
Meta-World-sized inputs (obs 39, action 4) for T = 10 (MT10) and 50 (MT50), each architecture built as its
preset builds it (``--preset ptsl``: MT-SAC and CARE 400 x 3, SAC + PTSL 367 x 3, CARE + PTSL 326 x 3 with
pal_dim 50, CARE in mtrl's arrangement, mtrl's SM 4 modules of 326; ``--preset ctpg``: CTPG's SM, PaCo 5
sets 400 x 3; MOORE: Meta-World+'s 4 / 6 experts, 400 x 3), and its ratio to MT-SAC's (``shared_onehot``
400 x 3) measured in the same run. ``python -m bench --only architectures`` prints the same rows.

Usage: python bench/bench_architectures.py [--tasks 10 50] [--batch 128] [--steps 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learning.algorithms.sac import MultiTaskSAC  # noqa: E402
from learning.policies.tanh_gaussian import TanhGaussianPolicy  # noqa: E402
from learning.q_functions import make_twin_q, share_care_parts, share_sm_parts  # noqa: E402
from learning.replay_buffer import TransitionBatch  # noqa: E402

OBS, ACT = 39, 4
PTSL = dict(pal_dim=50, shared_projection=True, residual_mode="none")
CTPG_SM = dict(variant="ctpg", num_layers=4, num_modules=4, module_hidden=128, gating_hidden=256, num_gating_layers=1)


def cases(t: int) -> list[tuple[str, str, dict, tuple[int, ...], bool]]:
    """(label, architecture, options, hidden sizes, mtrl CARE arrangement) at the papers' sizes."""
    return [
        ("MT-SAC (shared_onehot)", "shared_onehot", {}, (400,) * 3, False),
        ("MHSAC (multihead)", "multihead", {}, (400,) * 3, False),
        ("SAC + PTSL", "ptsl", PTSL, (367,) * 3, False),
        ("CARE, mtrl", "care", dict(num_experts=4), (400,) * 3, True),
        ("CARE, per_network", "care", dict(num_experts=4), (400,) * 3, False),
        ("CARE + PTSL, mtrl", "care_ptsl", dict(num_experts=4, **PTSL), (326,) * 3, True),
        ("SM mtrl (PTSL)", "soft_modular", dict(variant="mtrl", num_modules=4), (326,), True),
        ("SM ctpg (CTPG)", "soft_modular", CTPG_SM, (400, 400), False),
        ("SM paper (Soft-Module)", "soft_modular", dict(CTPG_SM, variant="paper", num_gating_layers=2),
         (400, 400), False),
        ("PaCo (CTPG)", "paco", dict(num_param_sets=5), (400,) * 3, False),
        ("MOORE", "moore", dict(num_experts=4 if t <= 10 else 6), (400,) * 3, False),
    ]


def build(arch: str, t: int, options: dict, hidden: tuple[int, ...], mtrl: bool):
    policy_options, q_options = dict(options), dict(options)
    if mtrl:  # mtrl's arrangement: the critic's encoders read detached by the actor
        share = share_sm_parts if arch == "soft_modular" else share_care_parts
        policy_options, q_options = share(t, OBS, policy_options, q_options, 0.05)
    return TanhGaussianPolicy(arch, t, OBS, ACT, hidden, policy_options), make_twin_q(arch, t, OBS, ACT, hidden,
                                                                                     q_options)


def ms_per_update(arch: str, t: int, b: int, options: dict, hidden: tuple[int, ...], mtrl: bool,
                  steps: int) -> tuple[float, int]:
    """(milliseconds per update, parameters of the actor and the twin critic)."""
    torch.manual_seed(0)
    policy, qf = build(arch, t, options, hidden, mtrl)
    sac = MultiTaskSAC(policy, qf, t, per_task_alpha=True, lr=3e-4, discount=0.99, tau=0.005,
                       reward_scale=1.0, target_entropy=-ACT, task_reduction="mean",
                       temperature_form="alpha")
    data = TransitionBatch(torch.randn(t, b, OBS), torch.rand(t, b, ACT) * 2 - 1, torch.randn(t, b),
                           torch.randn(t, b, OBS), torch.zeros(t, b))
    for _ in range(2):
        sac.update(data)
    start = time.perf_counter()
    for _ in range(steps):
        sac.update(data)
    params = sum(p.numel() for p in policy.parameters()) + sum(p.numel() for p in qf.parameters())
    return (time.perf_counter() - start) / steps * 1e3, params


def measure(tasks: list[int], b: int, steps: int):
    """Yield (T, label, ms, ratio to MT-SAC, parameters) for every case, MT-SAC first."""
    for t in tasks:
        base = None
        for label, arch, options, hidden, mtrl in cases(t):
            ms, params = ms_per_update(arch, t, b, options, hidden, mtrl, steps)
            base = base or ms
            yield t, label, ms, ms / base, params


def section_rows(quick: bool) -> list[tuple[str, str, str, str, str]]:
    """Rows of ``python -m bench``: MT10 (and MT50 unless ``quick``), B = 128 per task, 3 updates."""
    return [("architectures", f"{label} update / MT-SAC's, T={t} B=128",
             f"{ratio:.2f}x ({ms:.0f} ms; {params / 1e6:.2f}M parameters)", "", "")
            for t, label, ms, ratio, params in measure([10] if quick else [10, 50], 128, 3)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, nargs="+", default=[10, 50])
    p.add_argument("--batch", type=int, default=128, help="transitions per task")
    p.add_argument("--steps", type=int, default=3)
    a = p.parse_args()
    print(f"B={a.batch} per task, obs {OBS}, action {ACT}, threads={torch.get_num_threads()}")
    print("| architecture | T | ms per update | vs MT-SAC | parameters (actor + 2 critics) |")
    print("|---|---|---|---|---|")
    for t, label, ms, ratio, params in measure(a.tasks, a.batch, a.steps):
        print(f"| {label} | {t} | {ms:.1f} | {ratio:.2f}x | {params:,} |", flush=True)


if __name__ == "__main__":
    main()

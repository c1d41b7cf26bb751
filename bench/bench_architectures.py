"""Batched T-task SAC update time of every network architecture, measured in one run.

Milliseconds per update (critics, actor, temperature, Polyak) of multi-task SAC on (T, B) minibatches of
Meta-World-sized inputs (obs 39, action 4), and each architecture's ratio to multihead MT-SAC's.
Usage: python bench/bench_architectures.py [--tasks 10 50] [--batch 128] [--hidden 400 400 400] [--steps 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learning.algorithms.sac import MultiTaskSAC  # noqa: E402
from learning.networks import TASK_CONDITIONED  # noqa: E402
from learning.policies.tanh_gaussian import TanhGaussianPolicy  # noqa: E402
from learning.q_functions.twin_q import TwinQFunction  # noqa: E402
from learning.replay_buffer import TransitionBatch  # noqa: E402

OBS, ACT = 39, 4


def ms_per_update(arch: str, t: int, b: int, hidden: tuple[int, ...], steps: int) -> tuple[float, int]:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(arch, t, OBS, ACT, hidden)
    qf = TwinQFunction(arch, t, OBS, ACT, hidden)
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, nargs="+", default=[10, 50])
    p.add_argument("--batch", type=int, default=128, help="transitions per task")
    p.add_argument("--hidden", type=int, nargs="+", default=[400, 400, 400])
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    hidden = tuple(a.hidden)
    print(f"B={a.batch} per task, hidden={hidden}, obs {OBS}, action {ACT}, threads={torch.get_num_threads()}")
    print("| architecture | T | ms per update | vs multihead | parameters (actor + 2 critics) |")
    print("|---|---|---|---|---|")
    for t in a.tasks:
        base = None
        for arch in TASK_CONDITIONED:
            ms, params = ms_per_update(arch, t, a.batch, hidden, a.steps)
            base = base or ms
            print(f"| {arch} | {t} | {ms:.1f} | {ms / base:.2f}x | {params:,} |", flush=True)


if __name__ == "__main__":
    main()

"""Batched T-task SAC update vs a Python loop of T single-task updates (same networks, same data).

Prints milliseconds per update for both and their ratio, measured in one run, for Adam's fused
kernel (the default, learning/algorithms/optim.py) and torch's foreach path.
Usage: python bench/bench_update.py [--tasks 10] [--batch 256] [--hidden 256 256] [--steps 30]
       [--impl fused foreach] [--device cpu]
``measure(...)`` is what ``python -m bench`` calls.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from learning.algorithms.optim import adam  # noqa: E402
from learning.algorithms.sac import MultiTaskSAC  # noqa: E402
from learning.policies.tanh_gaussian import TanhGaussianPolicy  # noqa: E402
from learning.q_functions.twin_q import TwinQFunction  # noqa: E402
from learning.replay_buffer import TransitionBatch  # noqa: E402


def make_sac(t, obs_dim, act_dim, hidden, impl="fused", device="cpu"):
    """T separate SAC learners on stacked weights (the DnC/Separated layout), optimiser ``impl``."""
    policy = TanhGaussianPolicy("separate", t, obs_dim, act_dim, hidden).to(device)
    qf = TwinQFunction("separate", t, obs_dim, act_dim, hidden).to(device)
    sac = MultiTaskSAC(policy, qf, t, per_task_alpha=True, lr=3e-4, discount=0.99, tau=0.005,
                       reward_scale=1.0, target_entropy=-act_dim, task_reduction="sum")
    sac.policy_optimizer = adam(policy.parameters(), 3e-4, impl)
    sac.qf_optimizer = adam(qf.parameters(), 3e-4, impl)
    sac.alpha_optimizer = adam([sac.log_alpha], 3e-4, impl)
    return sac


def batch(t, b, obs_dim, act_dim, device="cpu"):
    return TransitionBatch(*(x.to(device) for x in (
        torch.randn(t, b, obs_dim), torch.rand(t, b, act_dim) * 2 - 1, torch.randn(t, b),
        torch.randn(t, b, obs_dim), torch.zeros(t, b))))


def time_it(fn, steps):
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1e3


def measure(tasks: int, batch_size: int, obs_dim: int = 39, act_dim: int = 4,
            hidden: tuple[int, ...] = (256, 256), steps: int = 20, impl: str = "fused",
            device: str = "cpu") -> dict[str, float]:
    """Milliseconds per update: {"batched": ..., "loop": ..., "speedup": loop / batched}."""
    torch.manual_seed(0)
    dev = torch.device(device)
    batched = make_sac(tasks, obs_dim, act_dim, hidden, impl, dev)
    data = batch(tasks, batch_size, obs_dim, act_dim, dev)
    looped = [make_sac(1, obs_dim, act_dim, hidden, impl, dev) for _ in range(tasks)]
    slices = [TransitionBatch(*(f[k:k + 1] for f in data[:5])) for k in range(tasks)]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def run_batched():
        batched.update(data)
        sync()

    def run_looped():
        for sac, d in zip(looped, slices):
            sac.update(d)
        sync()

    ms_batched, ms_looped = time_it(run_batched, steps), time_it(run_looped, steps)
    return {"batched": ms_batched, "loop": ms_looped, "speedup": ms_looped / ms_batched}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--obs", type=int, default=39)
    p.add_argument("--act", type=int, default=4)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--impl", nargs="+", default=["fused", "foreach"])
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    print(f"T={a.tasks} B={a.batch} hidden={tuple(a.hidden)} device={a.device} "
          f"threads={torch.get_num_threads()}")
    for impl in a.impl:
        r = measure(a.tasks, a.batch, a.obs, a.act, tuple(a.hidden), a.steps, impl, a.device)
        print(f"{impl:8s} batched update: {r['batched']:.2f} ms   per-task loop: {r['loop']:.2f} ms   "
              f"speed-up: {r['speedup']:.2f}x")


if __name__ == "__main__":
    main()

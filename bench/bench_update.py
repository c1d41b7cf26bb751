"""Batched T-task SAC update vs a Python loop of T single-task updates (same networks, same data).

Prints milliseconds per update for both and their ratio, measured in one run.
Usage: python bench/bench_update.py [--tasks 10] [--batch 256] [--hidden 256 256] [--steps 30]
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
from learning.q_functions.twin_q import TwinQFunction  # noqa: E402
from learning.replay_buffer import TransitionBatch  # noqa: E402


def make_sac(t, obs_dim, act_dim, hidden):
    policy = TanhGaussianPolicy("separate", t, obs_dim, act_dim, hidden)
    qf = TwinQFunction("separate", t, obs_dim, act_dim, hidden)
    return MultiTaskSAC(policy, qf, t, per_task_alpha=True, lr=3e-4, discount=0.99, tau=0.005,
                        reward_scale=1.0, target_entropy=-act_dim, task_reduction="sum")


def batch(t, b, obs_dim, act_dim):
    return TransitionBatch(torch.randn(t, b, obs_dim), torch.rand(t, b, act_dim) * 2 - 1,
                           torch.randn(t, b), torch.randn(t, b, obs_dim), torch.zeros(t, b))


def time_it(fn, steps):
    for _ in range(3):
        fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=10)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--obs", type=int, default=4)
    p.add_argument("--act", type=int, default=2)
    p.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.manual_seed(0)
    dev = torch.device(a.device)
    hidden = tuple(a.hidden)
    batched = make_sac(a.tasks, a.obs, a.act, hidden).to(dev)
    data = batch(a.tasks, a.batch, a.obs, a.act)
    data = data._replace(**{k: v.to(dev) for k, v in data._asdict().items() if v is not None})
    looped = [make_sac(1, a.obs, a.act, hidden).to(dev) for _ in range(a.tasks)]
    slices = [data._replace(**{n: v[k:k + 1] for n, v in data._asdict().items() if v is not None})
              for k in range(a.tasks)]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def run_batched():
        batched.update(data)
        sync()

    def run_looped():
        for sac, d in zip(looped, slices):
            sac.update(d)
        sync()

    ms_batched, ms_looped = time_it(run_batched, a.steps), time_it(run_looped, a.steps)
    print(f"T={a.tasks} B={a.batch} hidden={hidden} device={dev} threads={torch.get_num_threads()}")
    print(f"batched update: {ms_batched:.2f} ms   per-task loop: {ms_looped:.2f} ms   "
          f"speed-up: {ms_looped / ms_batched:.2f}x")


if __name__ == "__main__":
    main()

"""cProfile breakdown of qmp_dnc epochs with the env's preset (default MazeLarge-10-v0).

Runs ``--n_epochs`` epochs (default 2: warm-up + one steady epoch) under cProfile and prints the
share of wall time in each part of the loop, by the functions' own (tottime) time attributed to
the code they belong to, then the top functions by own time.
Usage: python bench/profile_epoch.py [--env MazeLarge-10-v0] [--n_epochs 2] [--top 20]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (bucket, substring of "file:function") in priority order; the first match wins.
BUCKETS = [
    ("optimizer (Adam)", ("torch/optim", "_fused_adam", "_foreach_")),
    ("autograd backward", ("run_backward", "_engine_run_backward", "autograd/__init__")),
    ("simulator (MuJoCo step)", ("mujoco", "mj_step", "do_simulation", "environments/")),
    ("gymnasium wrappers / vector env", ("gymnasium/",)),
    ("replay buffer", ("replay_buffer",)),
    ("sampler bookkeeping", ("learning/sampler",)),
    ("numpy (envs' and sampler's array work)", ("numpy",)),
    ("network forward (torch ops)", ("torch/nn", "built-in method torch.", "learning/networks",
                                     "learning/policies", "learning/q_functions", "method '")),
    ("losses / algorithm code", ("learning/algorithms",)),
    ("logging (dowel, tensorboard, csv)", ("dowel", "tensorboard", "learning/logging", "csv")),
]


def bucket_of(key: tuple) -> str:
    name = f"{key[0]}:{key[2]}"
    for bucket, needles in BUCKETS:
        if any(n in name for n in needles):
            return bucket
    return "other"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="MazeLarge-10-v0")
    p.add_argument("--experiment", default="qmp_dnc")
    p.add_argument("--n_epochs", type=int, default=2)
    p.add_argument("--top", type=int, default=20)
    a = p.parse_args()
    from experiment_utils import resolve_config
    from garage_experiments import build_trainer
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve_config(a.experiment, {"env": a.env, "n_epochs": a.n_epochs, "log_dir": f"{tmp}/run",
                                               "num_threads": 1})
        trainer = build_trainer(config)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        try:
            trainer.train()
        finally:
            profiler.disable()
            trainer.close()
        wall = time.perf_counter() - start
    stats = pstats.Stats(profiler)
    shares: dict[str, float] = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():
        shares[bucket_of(key)] = shares.get(bucket_of(key), 0.0) + tottime
    total = sum(shares.values())
    print(f"{a.experiment} on {a.env}, {a.n_epochs} epochs with the preset: {wall:.1f} s wall "
          f"(profiled own time {total:.1f} s)")
    print("| part | own time | share |\n|---|---|---|")
    for bucket, seconds in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {bucket} | {seconds:.1f} s | {seconds / total:.0%} |")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(a.top)
    print(out.getvalue())


if __name__ == "__main__":
    main()

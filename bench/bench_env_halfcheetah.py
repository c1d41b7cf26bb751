"""Raw simulation speed of HalfCheetahMT5-v0 / HalfCheetahMT8-v0: steps/s of one env.

Usage: python bench/bench_env_halfcheetah.py [--steps 20000]. Uniformly random actions; the
env never terminates, so resets only happen at the 1000-step time limit. Runs on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from environments.halfcheetah import build_halfcheetah_mt5, build_halfcheetah_mt8  # noqa: E402


def bench(suite, task: int, steps: int, seed: int = 0) -> float:
    """Steps/s of ``suite.make_env(task)`` over ``steps`` random-action steps."""
    env = suite.make_env(task)
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, 6)).astype(np.float32)
    env.reset(seed=seed)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    for suite in (build_halfcheetah_mt5(), build_halfcheetah_mt8()):
        for task in (0, suite.num_tasks - 1):
            sps = bench(suite, task, args.steps)
            print(f"{suite.env_id} task {task} ({suite.task_names[task]}): {sps:,.0f} steps/s")


if __name__ == "__main__":
    main()

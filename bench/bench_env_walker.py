"""Raw simulation speed of Walker2dMT4-v0: steps/s of one env with uniformly random actions.

Usage: python bench/bench_env_walker.py [--steps 20000]. Episodes are reset on termination
(random actions make the walker fall within ~15-70 steps, so resets, which themselves run
5-10 random-action steps, are a real part of the cost). Runs on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from environments.walker import build_walker2d_mt4  # noqa: E402


def bench(task: int, steps: int, seed: int = 0) -> tuple[float, int]:
    """Steps/s of ``suite.make_env(task)`` over ``steps`` steps, and the number of resets."""
    env = build_walker2d_mt4().make_env(task)
    actions = np.random.default_rng(seed).uniform(-1, 1, size=(steps, 6)).astype(np.float32)
    env.reset(seed=seed)
    resets = 0
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
            resets += 1
    elapsed = time.perf_counter() - start
    env.close()
    return steps / elapsed, resets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    for task, name in enumerate(build_walker2d_mt4().task_names):
        sps, resets = bench(task, args.steps)
        print(f"Walker2dMT4-v0 task {task} ({name}): {sps:,.0f} steps/s ({resets} resets)")


if __name__ == "__main__":
    main()

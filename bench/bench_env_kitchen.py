"""Raw simulation speed of one KitchenMTEasy-v0 task env (random actions, one core).

Usage: ``python bench/bench_env_kitchen.py [--steps 3000] [--task 0]``; prints steps/s.
Episodes are reset at termination or after 140 steps (the suite's time limit).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from environments import get_suite  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--task", type=int, default=0)
    args = parser.parse_args()
    env = get_suite("KitchenMTEasy-v0").make_env(args.task)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(args.steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, 9))
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - start
    env.close()
    print(f"KitchenMTEasy-v0 task {args.task}: {args.steps / elapsed:.0f} steps/s "
          f"({args.steps} steps, random actions)")


if __name__ == "__main__":
    main()

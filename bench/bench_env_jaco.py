"""Steps per second of one ``JacoReachMT5-v1`` env with random actions (single process).

Usage: ``python bench/bench_env_jaco.py [--steps N]``. Prints the raw env rate and the rate
through ``TaskSuite.make_env`` (task one-hot + time limit), resetting at episode ends.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from environments.jaco import JacoReachMultistageEnv, build_jaco_reach_mt5  # noqa: E402


def rate(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1, 1, size=(steps, 6)).astype(np.float32)
    env.reset(seed=seed)
    start = time.perf_counter()
    t = 0
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        t += 1
        if term or trunc or t == 200:
            env.reset()
            t = 0
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20000)
    args = parser.parse_args()
    raw = JacoReachMultistageEnv(0)
    wrapped = build_jaco_reach_mt5().make_env(0)
    print(f"raw env:     {rate(raw, args.steps):.0f} steps/s")
    print(f"suite env:   {rate(wrapped, args.steps):.0f} steps/s")
    raw.close()
    wrapped.close()


if __name__ == "__main__":
    main()

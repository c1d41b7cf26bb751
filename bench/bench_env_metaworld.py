"""Raw simulation speed of the Meta-World suites (MT10 tasks and CDS tasks), random actions.

Usage: ``python bench/bench_env_metaworld.py [--steps 2000] [--suite mt10|cds|all]``.
Prints env steps/s for one env per task (raw task env, no one-hot/time-limit wrappers; a reset
every 500 steps is included). MuJoCo runs single-threaded, i.e. on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def steps_per_second(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    actions = rng.uniform(-1, 1, size=(steps, 4)).astype(np.float32)
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
        if (t + 1) % 500 == 0:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--suite", choices=["mt10", "cds", "all"], default="all")
    args = parser.parse_args()
    suites = []
    if args.suite in ("mt10", "all"):
        from environments.metaworld_mt import build_mt10

        suites.append(build_mt10())
    if args.suite in ("cds", "all"):
        from environments.metaworld_cds import build_cds

        suites.append(build_cds())
    for suite in suites:
        rates = []
        for k, name in enumerate(suite.task_names):
            env = suite.make_task_env(k, test=False, seed=0, render_mode=None)
            rate = steps_per_second(env, args.steps)
            env.close()
            rates.append(rate)
            print(f"{suite.env_id:18s} {name:26s} {rate:8.0f} steps/s")
        print(f"{suite.env_id:18s} {'mean over tasks':26s} {np.mean(rates):8.0f} steps/s")


if __name__ == "__main__":
    main()

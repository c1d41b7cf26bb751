"""Env steps per second of random actions through a suite's vector env, in-process
(``--n_workers 1``: SyncVectorEnv) vs N worker processes (``environments.workers``).

Simulator-heavy suites (Kitchen, Meta-World MT50) gain most; on the maze the simulator is cheap
and the pipe round trip per step dominates. Construction time is not counted.
Usage: python bench/bench_workers.py [--envs KitchenMTEasy-v0 ...] [--workers 1 2] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import environments  # noqa: E402

DEFAULT_ENVS = ("KitchenMTEasy-v0", "MetaWorldMT50-v2", "MazeLarge-10-v0")


def _random_actions(vec, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    low, high = vec.action_space.low, vec.action_space.high
    return [rng.uniform(low, high).astype(vec.action_space.dtype) for _ in range(count)]


def _rate(vec, actions: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    return len(actions) * vec.num_envs / (time.perf_counter() - start)


def measure(env_id: str, n_workers: int, steps: int = 200, envs_per_task: int = 1) -> float:
    """Env steps per second (sub-env steps, summed over all T * E sub-envs) of ``steps`` vector
    steps with uniform random actions, after 5 warm-up steps; construction is not timed."""
    vec = environments.get_suite(env_id).make_vector_env(envs_per_task, seed=0, n_workers=n_workers)
    try:
        vec.reset(seed=0)
        actions = _random_actions(vec, steps + 5)
        _rate(vec, actions[:5])
        return _rate(vec, actions[5:])
    finally:
        vec.close()


def compare(env_id: str, workers: list[int], steps: int, rounds: int) -> dict[int, float]:
    """Median steps/s per worker count, the vector envs built once and timed in alternation
    (``rounds`` blocks of ``steps // rounds`` vector steps each), so that a change of the machine's
    load during the run hits every worker count alike."""
    suite = environments.get_suite(env_id)
    vecs = {n: suite.make_vector_env(1, seed=0, n_workers=n) for n in workers}
    try:
        rates: dict[int, list[float]] = {n: [] for n in workers}
        for n, vec in vecs.items():
            vec.reset(seed=0)
            _rate(vec, _random_actions(vec, 5))
        actions = _random_actions(vecs[workers[0]], max(1, steps // rounds))
        for _ in range(rounds):
            for n, vec in vecs.items():
                rates[n].append(_rate(vec, actions))
        return {n: float(np.median(r)) for n, r in rates.items()}
    finally:
        for vec in vecs.values():
            vec.close()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", type=int, default=200, help="vector steps per worker count")
    p.add_argument("--rounds", type=int, default=5, help="alternating timing blocks (median)")
    a = p.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for env_id in a.envs:
        rates = compare(env_id, a.workers, a.steps, a.rounds)
        base = rates[a.workers[0]]
        cells = ", ".join(f"n_workers {n}: {r:,.0f} steps/s ({r / base:.2f}x)" for n, r in rates.items())
        print(f"{env_id}: {cells}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

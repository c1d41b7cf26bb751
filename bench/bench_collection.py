"""Collection throughput vs raw simulation on the same T-task vector env.

Measures env steps per second of (a) the raw SyncVectorEnv with random actions, (b) the
Sampler with each task's own policy, (c) the Sampler with the Q-switch mixture, (d) the Sampler
with CTPG's guide (gates on, K = 10, segments recorded as in training), and reports each
collection rate as a ratio to (a).

The four are measured in interleaved rounds (raw, own, Q-switch, CTPG, raw, own, ...) so that a
change of machine load during the run affects all of them alike; the reported ratio is the
median over rounds of (collection rate / raw rate in the same round). Ratios by process CPU time
(``cpu_ratio``), which ignore time the process waits for a shared core, are given beside the
wall-clock ones.

Usage: python bench/bench_collection.py [--env MazeLarge-10-v0 --env MetaWorldMT10-v2]
                                         [--steps 300] [--rounds 3]
As a library: ``measure(env_id, steps) -> dict`` (see :func:`measure`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import environments  # noqa: E402
from learning.algorithms.ctpg import CTPGGuide  # noqa: E402
from learning.policies.behaviour import OwnPolicy, SwitchState  # noqa: E402
from learning.policies.ctpg_guide import CTPGBehaviour  # noqa: E402
from learning.policies.qswitch_mixture_policies_wrapper import QSwitchMixturePolicy  # noqa: E402
from learning.policies.tanh_gaussian import TanhGaussianPolicy  # noqa: E402
from learning.q_functions.twin_q import TwinQFunction  # noqa: E402
from learning.sampler import EpisodeRecord, Sampler  # noqa: E402
from learning.segment_buffer import SegmentBuffer, SegmentRecorder  # noqa: E402

DEFAULT_ENVS = ("MazeLarge-10-v0", "MetaWorldMT10-v2")
BEHAVIOURS = ("own", "qswitch", "ctpg")
LABELS = {"own": "own policy", "qswitch": "Q-switch", "ctpg": "CTPG guide"}


def measure(env_id: str = "MazeLarge-10-v0", steps: int = 300, envs_per_task: int = 1,
            rounds: int = 3, hidden_sizes: tuple[int, ...] = (256, 256),
            behaviours: tuple[str, ...] = BEHAVIOURS, seed: int = 0) -> dict:
    """Collection speed of each behaviour relative to the raw vector env.

    Args:
        env_id: the suite.
        steps: vector-env steps per measurement (split over ``rounds``).
        envs_per_task: E.
        rounds: interleaved rounds; ratios are medians over them.
        hidden_sizes: policy and critic widths (the presets use (256, 256)).
        behaviours: a subset of ``("own", "qswitch", "ctpg")``.

    Returns:
        ``{"env", "num_tasks", "envs_per_task", "steps", "raw_steps_per_s",
        "<name>_steps_per_s", "<name>_ratio", "<name>_cpu_ratio" for each behaviour}``
        where ``ratio`` = collection rate / raw rate (wall clock, median over rounds) and
        ``cpu_ratio`` the same by process CPU time.
    """
    unknown = set(behaviours) - set(BEHAVIOURS)
    if unknown:
        raise ValueError(f"unknown behaviours {sorted(unknown)}; allowed: {', '.join(BEHAVIOURS)}")
    suite = environments.get_suite(env_id)
    t, e = suite.num_tasks, envs_per_task
    torch.manual_seed(seed)
    vec = suite.make_vector_env(e, seed=seed)
    vec.reset(seed=seed)
    vec.action_space.seed(seed)
    raw_dim = vec.single_observation_space.shape[0]
    act_dim = vec.single_action_space.shape[0]
    idx = suite.network_obs_indices(raw_dim, False)
    policy = TanhGaussianPolicy("separate", t, len(idx), act_dim, hidden_sizes)
    qf = TwinQFunction("separate", t, len(idx), act_dim, hidden_sizes)

    makers = {"own": lambda: (OwnPolicy(policy), None),
              "qswitch": lambda: (QSwitchMixturePolicy(policy, qf), None),
              "ctpg": lambda: _ctpg(policy, qf, t, e, len(idx), act_dim, hidden_sizes)}
    runners = {}
    for name in behaviours:
        behaviour, observer = makers[name]()
        sampler = Sampler(suite, e, idx, torch.device("cpu"), seed=seed)
        state = SwitchState.initial(t, e, torch.device("cpu"))
        sampler.collect(behaviour, state, 5, EpisodeRecord.empty(t), observer)  # warm-up
        runners[name] = (sampler, behaviour, state, observer)

    def run_raw(n):
        for _ in range(n):
            vec.step(vec.action_space.sample())

    def runner(name):
        sampler, behaviour, state, observer = runners[name]
        return lambda n: sampler.collect(behaviour, state, n, EpisodeRecord.empty(t), observer)

    run_raw(5)  # warm-up
    jobs = {"raw": run_raw, **{name: runner(name) for name in behaviours}}
    per_round = max(1, steps // rounds)
    wall = {k: [] for k in jobs}
    cpu = {k: [] for k in jobs}
    try:
        for _ in range(rounds):
            for name, job in jobs.items():
                w0, c0 = time.perf_counter(), time.process_time()
                job(per_round)
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)
    finally:
        vec.close()
        for sampler, *_ in runners.values():
            sampler.close()
    n_steps = per_round * rounds
    out = {"env": env_id, "num_tasks": t, "envs_per_task": e, "steps": n_steps,
           "raw_steps_per_s": n_steps * t * e / sum(wall["raw"])}
    for name in behaviours:
        out[f"{name}_steps_per_s"] = n_steps * t * e / sum(wall[name])
        out[f"{name}_ratio"] = statistics.median(r / b for r, b in zip(wall["raw"], wall[name]))
        out[f"{name}_cpu_ratio"] = statistics.median(r / b for r, b in zip(cpu["raw"], cpu[name]))
    return out


def _ctpg(policy, qf, t, e, obs_dim, act_dim, hidden_sizes):
    guide = CTPGGuide.build("multihead", t, obs_dim, hidden_sizes)
    ctpg = CTPGBehaviour(policy, qf, guide, torch.zeros(t), guide_step=10, filter_start=0)
    segments = SegmentRecorder(SegmentBuffer(t, 10_000, obs_dim, act_dim, 10), e)

    def record_segments(tr, done):
        segments.step(tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminal, torch.as_tensor(done),
                      ctpg.last_decision, ctpg.last_guide_action)

    return ctpg, record_segments


def report(result: dict) -> str:
    lines = [f"{result['env']}: T={result['num_tasks']} envs/task={result['envs_per_task']} "
             f"steps={result['steps']}",
             f"raw vector env, random actions: {result['raw_steps_per_s']:,.0f} steps/s"]
    for name in BEHAVIOURS:
        if f"{name}_ratio" in result:
            lines.append(f"collection with {LABELS[name]}: {result[f'{name}_steps_per_s']:,.0f} steps/s"
                         f"  ({result[f'{name}_ratio']:.2f}x raw simulation; "
                         f"by CPU time {result[f'{name}_cpu_ratio']:.2f}x)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", action="append", help=f"repeatable; default {' and '.join(DEFAULT_ENVS)}")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--envs_per_task", type=int, default=1)
    a = p.parse_args(argv)
    results = []
    for env_id in a.env or DEFAULT_ENVS:
        results.append(measure(env_id, a.steps, a.envs_per_task, a.rounds))
        print(report(results[-1]), flush=True)
    return results


if __name__ == "__main__":
    main()

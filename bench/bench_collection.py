"""Collection throughput vs raw simulation on the same T-task vector env.

Measures env steps per second of (a) the raw SyncVectorEnv with random actions, (b) the
Sampler with each task's own policy, (c) the Sampler with the Q-switch mixture, (d) the Sampler
with CTPG's guide (gates on, K = 10, segments recorded as in training), all in one run, and
prints the ratios.
Usage: python bench/bench_collection.py [--env MazeLarge-10-v0] [--steps 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="MazeLarge-10-v0")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--envs_per_task", type=int, default=1)
    a = p.parse_args()
    suite = environments.get_suite(a.env)
    t, e = suite.num_tasks, a.envs_per_task
    vec = suite.make_vector_env(e, seed=0)
    vec.reset(seed=0)
    vec.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(a.steps):
        vec.step(vec.action_space.sample())
    raw = a.steps * t * e / (time.perf_counter() - start)
    vec.close()

    raw_dim = vec.single_observation_space.shape[0]
    idx = suite.network_obs_indices(raw_dim, False)
    act_dim = vec.single_action_space.shape[0]
    policy = TanhGaussianPolicy("separate", t, len(idx), act_dim, (256, 256))
    qf = TwinQFunction("separate", t, len(idx), act_dim, (256, 256))
    guide = CTPGGuide.build("multihead", t, len(idx), (256, 256))
    ctpg = CTPGBehaviour(policy, qf, guide, torch.zeros(t), guide_step=10, filter_start=0)
    segments = SegmentRecorder(SegmentBuffer(t, 10_000, len(idx), act_dim, 10), e)

    def record_segments(tr, done):
        segments.step(tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminal, torch.as_tensor(done),
                      ctpg.last_decision, ctpg.last_guide_action)

    rates = {}
    for name, behaviour, observer in (("own policy", OwnPolicy(policy), None),
                                      ("Q-switch", QSwitchMixturePolicy(policy, qf), None),
                                      ("CTPG guide", ctpg, record_segments)):
        sampler = Sampler(suite, e, idx, torch.device("cpu"), seed=0)
        state = SwitchState.initial(t, e, torch.device("cpu"))
        sampler.collect(behaviour, state, 5, EpisodeRecord.empty(t), observer)
        start = time.perf_counter()
        sampler.collect(behaviour, state, a.steps, EpisodeRecord.empty(t), observer)
        rates[name] = a.steps * t * e / (time.perf_counter() - start)
        sampler.close()
    print(f"{a.env}: T={t} envs/task={e}")
    print(f"raw vector env, random actions: {raw:,.0f} steps/s")
    for name, rate in rates.items():
        print(f"collection with {name}: {rate:,.0f} steps/s  ({rate / raw:.2f}x raw simulation)")
    print(f"Q-switch cost vs own policy: {rates['own policy'] / rates['Q-switch']:.2f}x")
    print(f"CTPG guide cost vs own policy: {rates['own policy'] / rates['CTPG guide']:.2f}x")
    np.set_printoptions()


if __name__ == "__main__":
    main()

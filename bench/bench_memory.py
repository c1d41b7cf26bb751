"""Replay-buffer memory: bytes per stored transition and peak resident memory with full buffers.

For the Meta-World presets (MT10/MT50 x qmp_dnc, mtsac, qmp_sac; capacities, network obs size and
envs per task from the experiment presets) each case runs in a fresh subprocess that builds a
TaskReplayBuffer and fills it completely in large chunks of realistic data: E interleaved env
streams, next_obs = the next step's obs except at episode ends every 500 steps (Meta-World's time
limit), where the final obs differs from the reset obs, so the side store holds 1/500 of the rows.
The chunk's values repeat from chunk to chunk (content does not matter for memory or time).

Prints one table: old layout bytes per transition (next_obs stored per row: 4 * (2 * obs + act +
2)), the new layout's measured bytes, their ratio, the old layout's estimated peak (its final
storage plus the copy made by its last doubling), the new RSS right after construction (untouched
pages are not resident), peak RSS (ru_maxrss and /proc/self/status VmHWM) and the fill time.

Usage: python bench/bench_memory.py [--quick]   (--quick skips the MT50 cases)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EPISODE = 500  # Meta-World's time limit (environments/metaworld_mt.py MAX_EPISODE_STEPS)
RAW_OBS = 39  # Meta-World's observation before the suite's one-hot (environments/metaworld_mt.py)
GIB = 2 ** 30


def cases(quick: bool) -> list[dict]:
    from experiment_utils import resolve_config
    from garage_experiments import replay_capacity_per_task, validate
    out = []
    for env in ("MetaWorldMT10-v2",) + (() if quick else ("MetaWorldMT50-v2",)):
        for exp in ("qmp_dnc", "mtsac", "qmp_sac"):
            config = resolve_config(exp, {"env": env})
            suite = validate(config)
            t = suite.num_tasks
            obs_dim = len(suite.network_obs_indices(RAW_OBS + t, config.include_task_id))
            out.append(dict(name=f"{env.split('-')[0][9:]} {exp}", t=t, obs_dim=obs_dim, act_dim=4,
                            capacity=replay_capacity_per_task(config, t), e=config.envs_per_task))
    return out


def vm_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return -1


def run_case(case: dict) -> dict:
    """Build and fill one buffer (in this process); the measurements as a dict."""
    import torch
    from learning.replay_buffer import TaskReplayBuffer, TransitionBatch
    t, d, a, cap, e = case["t"], case["obs_dim"], case["act_dim"], case["capacity"], case["e"]
    buf = TaskReplayBuffer(t, cap, d, a, stream_width=e)
    rss_init = vm_kib("VmRSS") * 1024
    rows = min(cap, max(1, 500_000 // t // (EPISODE * e)) * EPISODE * e)  # per task per add
    obs = torch.randn(t, rows, d)
    next_obs = obs.roll(-e, dims=1)  # row i's successor is row i + E (the next chunk for the last E)
    end = (torch.arange(rows) // e) % EPISODE == EPISODE - 1
    next_obs[:, end] += 1000.0  # final obs of an episode: not the reset obs that follows
    batch = TransitionBatch(obs, torch.rand(t, rows, a), torch.randn(t, rows), next_obs,
                            torch.zeros(t, rows))
    start = time.perf_counter()
    while len(buf) < cap:
        left = cap - len(buf)
        buf.add(batch if left >= rows else TransitionBatch(*(f[:, :left] for f in batch[:5])))
    fill = time.perf_counter() - start
    return dict(case, new_bytes=buf.nbytes_per_transition(), memory=buf.memory_bytes(), rss_init=rss_init,
                maxrss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, hwm=vm_kib("VmHWM") * 1024,
                fill_s=fill)


def old_peak(case: dict) -> float:
    """The old layout's peak: storage grew by doubling from 1024 rows, briefly holding old + new."""
    per_row = case["t"] * 4 * (2 * case["obs_dim"] + case["act_dim"] + 2)
    alloc = prev = min(case["capacity"], 1024)
    while alloc < case["capacity"]:
        prev, alloc = alloc, min(case["capacity"], 2 * alloc)
    return (alloc + (prev if prev < alloc else 0)) * per_row


def measure_all(quick: bool = False) -> list[dict]:
    """Every case in its own subprocess (separate peaks): ``case`` name, ``old_bytes`` and
    ``new_bytes`` per transition, ``peak_gib`` (VmHWM), ``old_peak_gib`` (estimated), ``fill_s``."""
    out = []
    for case in cases(quick):
        proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True,
                              text=True, cwd=ROOT, check=True)
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        out.append(dict(case=r["name"], old_bytes=4 * (2 * r["obs_dim"] + r["act_dim"] + 2),
                        new_bytes=r["new_bytes"], peak_gib=r["hwm"] / GIB, old_peak_gib=old_peak(r) / GIB,
                        fill_s=r["fill_s"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the MT50 cases")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one case as JSON
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    head = (f"{'case':<16}{'T':>4}{'cap/task':>10}{'obs':>5}{'E':>3}{'old B':>7}{'new B':>8}{'ratio':>7}"
            f"{'old peak':>10}{'alloc':>8}{'RSS init':>9}{'maxrss':>8}{'VmHWM':>8}{'fill s':>8}")
    print(head + "\n" + "-" * len(head) + "   (memory columns in GiB)")
    for case in cases(args.quick):
        proc = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True,
                              text=True, cwd=ROOT)
        if proc.returncode:
            print(f"{case['name']:<16} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        old = 4 * (2 * r["obs_dim"] + r["act_dim"] + 2)
        print(f"{r['name']:<16}{r['t']:>4}{r['capacity']:>10}{r['obs_dim']:>5}{r['e']:>3}{old:>7}"
              f"{r['new_bytes']:>8.1f}{old / r['new_bytes']:>7.2f}{old_peak(r) / GIB:>10.2f}"
              f"{r['memory'] / GIB:>8.2f}{r['rss_init'] / GIB:>9.2f}{r['maxrss'] / GIB:>8.2f}"
              f"{r['hwm'] / GIB:>8.2f}{r['fill_s']:>8.1f}", flush=True)


if __name__ == "__main__":
    main()

"""What CTPG's guide costs, as two ratios measured in one run (issue 18).

1. A guide step against its own arithmetic: one ``CTPGGuide.update`` on the release's guide
   batch (128 segments of K = 10 steps per task) with the run's own networks (built by
   ``build_trainer``), against the same step's matrix products alone. The products are recorded
   while the step runs (every ``mm``/``bmm``/``addmm``/``baddbmm``, forward and backward, with
   their shapes and strides) and replayed on random tensors of those layouts, so the ideal time is
   the step's matmul FLOPs at the matmul rate this machine reaches on those very shapes, now.
   Target: step / matmuls <= 1.5.
2. A CTPG run against its base run: the same command with ``ctpg_*`` instead of the base
   experiment, the guide at the release's batch (``--guide_batch_size 128``), both built in this
   process with their epochs alternating, timed over the epochs after the warm-up epoch.
   Target: CTPG / base <= 2.

Usage: python bench/bench_ctpg.py [--quick]; ``section_rows(quick)`` is what ``python -m bench``
calls (section ``ctpg``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
import tempfile
import time
from pathlib import Path

import torch
from dowel.tabular_input import TabularInputWarning
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from experiment_utils import resolve_config  # noqa: E402
from garage_experiments import build_trainer  # noqa: E402
from learning.segment_buffer import SegmentBatch  # noqa: E402

MATMULS = {torch.ops.aten.mm.default, torch.ops.aten.bmm.default, torch.ops.aten.addmm.default,
           torch.ops.aten.baddbmm.default}
GUIDE_BATCH = 128  # segments per task per guide step in the release (its control batch per task)
# (label, experiment, base experiment, config values): the MazeQuick pair, and a cell of CTPG's
# table with CTPG's control settings (shortened: 15 iterations of 10 steps per epoch).
CASES = [
    ("MazeQuick-4-v0 preset", "ctpg_dnc", "dnc_sac", {"env": "MazeQuick-4-v0"}),
    ("HalfCheetahMT5-v0 --preset ctpg", "ctpg_dnc", "dnc_sac",
     {"env": "HalfCheetahMT5-v0", "preset": "ctpg", "steps_per_epoch": 15, "min_buffer_size": 200,
      "evaluation_frequency": 1000, "num_evaluation_episodes": 5}),
]


class RecordMatmuls(TorchDispatchMode):
    """Records (op, [(size, stride, dtype)] of the tensor arguments, scalars) of every matmul."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in MATMULS:
            layout = [(a.size(), a.stride(), a.dtype) if isinstance(a, torch.Tensor) else a for a in args]
            self.calls.append((func, layout, dict(kwargs or {})))
        return func(*args, **(kwargs or {}))


def replay(calls, repeats: int) -> float:
    """Seconds per replay of the recorded matmuls on random tensors of the same layouts."""
    inputs = [[torch.empty_strided(x[0], x[1], dtype=x[2]).normal_() if isinstance(x, tuple) else x
               for x in layout] for _, layout, _ in calls]
    for (func, _, kwargs), args in zip(calls, inputs):
        func(*args, **kwargs)
    start = time.perf_counter()
    for _ in range(repeats):
        for (func, _, kwargs), args in zip(calls, inputs):
            func(*args, **kwargs)
    return (time.perf_counter() - start) / repeats


def segment_batch(t: int, b: int, k: int, obs_dim: int, act_dim: int, device) -> SegmentBatch:
    """Random full segments (the cost does not depend on the values)."""
    g = torch.Generator().manual_seed(0)
    return SegmentBatch(*(x.to(device) for x in (
        torch.randn(t, b, k, obs_dim, generator=g), torch.rand(t, b, k, act_dim, generator=g) * 2 - 1,
        torch.randn(t, b, k, generator=g), torch.ones(t, b, k), torch.randint(0, t, (t, b), generator=g),
        torch.randn(t, b, obs_dim, generator=g), torch.zeros(t, b), torch.ones(t, b))))


def guide_step(experiment: str, flags: dict, repeats: int = 5) -> dict[str, float]:
    """Seconds per guide step and per replay of its matmuls, and its matmul GFLOP."""
    with tempfile.TemporaryDirectory() as tmp:
        config = resolve_config(experiment, {**flags, "log_dir": f"{tmp}/run", "num_threads": 1})
        trainer = build_trainer(config)
        trainer.close()
    training, control = trainer.guide_training, trainer.algorithm
    t, k = training.num_tasks, training.buffer.K
    batch = segment_batch(t, GUIDE_BATCH, k, training.buffer.obs_dim, training.buffer.act_dim,
                          training.buffer.device)

    def step():
        return training.guide.update(batch, control.policy, control.log_alpha, hindsight=training.hindsight)

    step()
    counter, recorder = FlopCounterMode(display=False), RecordMatmuls()
    with counter:
        step()
    with recorder:
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    seconds = (time.perf_counter() - start) / repeats
    matmul = replay(recorder.calls, repeats)
    flops = counter.get_total_flops()
    return {"step": seconds, "matmul": matmul, "gflop": flops / 1e9, "rate": flops / matmul / 1e9,
            "tasks": t, "K": k, "matmuls": len(recorder.calls)}


def run_ratio(experiment: str, base: str, flags: dict, n_epochs: int = 4) -> dict[str, float]:
    """Seconds per epoch of the CTPG run and of its base run after the warm-up epoch.

    Both trainers are built in this process and their epochs alternate (CTPG first in even epochs,
    base first in odd ones), so a change of the machine's load reaches both runs alike; the logger
    has no outputs here, so nothing is written.
    """
    seconds: dict[str, list[float]] = {experiment: [], base: []}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        try:
            for name in (experiment, base):
                extra = {"guide_batch_size": GUIDE_BATCH} if name == experiment else {}
                config = resolve_config(name, {**flags, **extra, "n_epochs": n_epochs, "num_threads": 1,
                                               "log_dir": f"{tmp}/{name}"})
                trainers[name] = build_trainer(config)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TabularInputWarning)  # the logger has no outputs
                for epoch in range(n_epochs):
                    order = (experiment, base) if epoch % 2 == 0 else (base, experiment)
                    for name in order:
                        start = time.perf_counter()
                        trainers[name]._run_epoch(epoch)
                        if epoch > 0:
                            seconds[name].append(time.perf_counter() - start)
        finally:
            for trainer in trainers.values():
                trainer.close()
    ctpg, plain = (sum(seconds[n]) / len(seconds[n]) for n in (experiment, base))
    return {"ctpg": ctpg, "base": plain, "ratio": ctpg / plain}


def section_rows(quick: bool) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for label, experiment, base, flags in CASES[:1] if quick else CASES:
        g = guide_step(experiment, flags)
        ratio = g["step"] / g["matmul"]
        rows.append(("ctpg", f"{label}: {experiment} guide step / its matmuls (T={g['tasks']}, "
                     f"{GUIDE_BATCH} x {g['K']}-step segments per task, {g['gflop']:.2f} GFLOP at "
                     f"{g['rate']:.0f} GFLOP/s)", f"{ratio:.2f}x ({g['step'] * 1e3:.0f} vs "
                     f"{g['matmul'] * 1e3:.0f} ms)", "<= 1.5x", "met" if ratio <= 1.5 else
                     f"short: {ratio / 1.5:.2f}x the target"))
        r = run_ratio(experiment, base, flags)
        rows.append(("ctpg", f"{label}: {experiment} / {base} seconds per epoch after warm-up",
                     f"{r['ratio']:.2f}x ({r['ctpg']:.1f} vs {r['base']:.1f} s)", "<= 2x",
                     "met" if r["ratio"] <= 2 else f"short: {r['ratio'] / 2:.2f}x the target"))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="the MazeQuick case only")
    torch.set_num_threads(1)
    for row in section_rows(p.parse_args().quick):
        print(" | ".join(row))


if __name__ == "__main__":
    main()

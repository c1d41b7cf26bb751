"""``python -m bench``: one table of speed and memory ratios, each measured in this run.

Sections (each figure a ratio of two measurements taken here, so the machine's speed cancels):
  simulator  raw env steps/s per suite: random actions through the suite's own vector env
  collection own policy, Q-switch and CTPG guide collection as a fraction of that limit
  update     batched T-task SAC update vs a loop of T single-task updates (fused Adam), and
             fused vs foreach Adam on the batched update
  epoch      one qmp_dnc epoch with the preset, split into collection, update, evaluation, rest
  memory     bytes per stored transition and peak resident memory with full replay buffers
  workers    --n_workers 2 (subprocess vector env) vs 1 where the simulator dominates
  gpu        the update on CUDA when a GPU is present (else the table says so)
  ctpg       a CTPG guide step vs its own matmuls, and a CTPG run vs its base run (bench/bench_ctpg.py)
  architectures  each architecture's update at its paper's size vs MT-SAC's, T=10 and 50
             (bench/bench_architectures.py)

The table is printed and written into docs/benchmarks.md between the ``bench:start`` and
``bench:end`` markers, with the machine description. ``--quick`` skips MT50 and the MT10
epoch (about 3 minutes instead of about 10). ``--only update,memory`` runs some sections.
Exit status 1 if a section failed (its row says why).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")

SUITES = ["MazeLarge-10-v0", "JacoReachMT5-v1", "Walker2dMT4-v0", "MetaWorldCDS-v1", "MetaWorldMT10-v2",
          "MetaWorldMT50-v2", "KitchenMTEasy-v0", "HalfCheetahMT5-v0"]
SECTIONS = ["simulator", "collection", "update", "epoch", "memory", "workers", "gpu", "ctpg", "architectures"]
Row = tuple[str, str, str, str, str]  # section, measurement, value, target, verdict


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    except OSError:
        mem = float("nan")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} CPU cores ({cpu}), {mem:.0f} GiB RAM, {gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, load average at start {os.getloadavg()[0]:.1f}")


# Why a target can fall short on a CPU (docs/benchmarks.md, "Targets of the speed issue"), shown in the
# verdict of a row that misses its target.
WHY = {
    "update": "arithmetic-bound: T x (matmuls + Adam over the stacked weights) is the same work in both; "
              "only the loop's per-call overhead is saved, a smaller share as T x work grows",
    "collection": "each Q-switch step runs T policies and T critics on every task's state (T x the own "
                  "policy's products, ~0.6-0.8 ms on one core at T = 10), comparable to a maze step",
}


def verdict(value: float, target: float, why: str = "") -> str:
    if value >= target:
        return "met"
    return f"short: {value / target:.0%} of target" + (f" ({WHY[why]})" if why else "")


def simulator_limit(env_id: str, seconds: float = 2.0) -> float:
    """Env steps/s (all sub-envs counted) of random actions through the suite's vector env."""
    import environments
    vec = environments.get_suite(env_id).make_vector_env(1, seed=0)
    try:
        vec.reset(seed=0)
        vec.action_space.seed(0)
        actions = [vec.action_space.sample() for _ in range(50)]
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or steps < 20:
            vec.step(actions[steps % 50])
            steps += 1
        return steps * vec.num_envs / (time.perf_counter() - start)
    finally:
        vec.close()


def section_simulator(quick: bool) -> list[Row]:
    rows = []
    for env_id in SUITES:
        if quick and env_id == "MetaWorldMT50-v2":
            continue
        rows.append(("simulator", f"{env_id}: raw env steps/s", f"{simulator_limit(env_id):,.0f}", "", ""))
    return rows


def section_collection(quick: bool) -> list[Row]:
    from bench.bench_collection import measure
    rows = []
    for env_id, target in (("MazeLarge-10-v0", 0.5), ("MetaWorldMT10-v2", 0.85)):
        r = measure(env_id, 900 if env_id.startswith("Maze") else 150, rounds=5)
        for key, name in (("own", "own policy"), ("qswitch", "Q-switch"), ("ctpg", "CTPG guide")):
            ratio = r[f"{key}_ratio"]
            t = target if key == "qswitch" else None
            rows.append(("collection", f"{env_id}: {name} / simulator ({r['raw_steps_per_s']:,.0f} steps/s)",
                         f"{ratio:.2f}x", f">= {t}x" if t else "", verdict(ratio, t, "collection") if t else ""))
    return rows


def section_update(quick: bool) -> list[Row]:
    from bench.bench_update import measure
    rows = []
    cases = [(5, 32, None, "Jaco/Walker preset B"), (10, 32, 2.0, ""), (10, 256, None, "Maze/MT10 preset B"),
             (50, 32, 5.0, ""), (50, 25, None, "MT50 preset B (1280 / 50)")]
    for tasks, b, target, note in cases:
        if quick and tasks == 50 and target is None:
            continue
        r = measure(tasks, b, steps=10 if tasks == 50 else 20)
        value = f"{r['speedup']:.2f}x ({r['batched']:.1f} vs {r['loop']:.1f} ms)"
        rows.append(("update", f"batched / per-task loop, T={tasks} B={b} {note}".strip(), value,
                     f">= {target}x" if target else "", verdict(r["speedup"], target, "update") if target else ""))
    for tasks in (10, 50):
        fused = measure(tasks, 32, steps=10, impl="fused")["batched"]
        foreach = measure(tasks, 32, steps=10, impl="foreach")["batched"]
        rows.append(("update", f"fused / foreach Adam, batched T={tasks} B=32",
                     f"{foreach / fused:.2f}x ({fused:.1f} vs {foreach:.1f} ms)", "", ""))
    return rows


def epoch_breakdown(env_id: str, extra: list[str]) -> dict[str, float]:
    """The second epoch's Time/ columns of a 2-epoch qmp_dnc run with the env's preset."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "run.py"), "qmp_dnc", f"--env={env_id}", "--n_epochs", "2",
               "--num_threads", "1", "--log_dir", f"{tmp}/run", *extra]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        with open(f"{tmp}/run/progress.csv") as f:
            last = list(csv.DictReader(f))[-1]
    keys = ("CollectSeconds", "UpdateSeconds", "EvaluationSeconds", "EpochSeconds")
    return {k: float(last[f"Time/{k}"]) for k in keys}


def section_epoch(quick: bool) -> list[Row]:
    rows = []
    runs = [("MazeLarge-10-v0", [], "preset epoch")]
    if not quick:
        runs.append(("MetaWorldMT10-v2", ["--steps_per_epoch", "1", "--min_buffer_size", "500"],
                     "1 of the preset's 10 iterations; warm-up 500 per task"))
    for env_id, extra, note in runs:
        t = epoch_breakdown(env_id, extra)
        total = t["EpochSeconds"]
        rest = total - t["CollectSeconds"] - t["UpdateSeconds"] - t["EvaluationSeconds"]
        parts = ", ".join(f"{name} {v / total:.0%}" for name, v in (
            ("collection", t["CollectSeconds"]), ("update", t["UpdateSeconds"]),
            ("evaluation", t["EvaluationSeconds"]), ("logging/other", rest)))
        rows.append(("epoch", f"{env_id} qmp_dnc ({note}): {total:.1f} s", parts, "", ""))
    return rows


def section_memory(quick: bool) -> list[Row]:
    from bench.bench_memory import measure_all
    rows = []
    for r in measure_all(quick=quick):
        target = "< 24 GiB" if "MT50" in r["case"] else ""
        ok = ("met" if r["peak_gib"] < 24 else "short") if target else ""
        rows.append(("memory", f"{r['case']}: bytes/transition, peak RSS with full buffers",
                     f"{r['new_bytes']:.0f} B (old layout {r['old_bytes']:.0f} B), {r['peak_gib']:.1f} GiB "
                     f"(old layout: {r['old_peak_gib']:.1f} GiB of storage at its doubling peak, estimated)", target, ok))
    return rows


def section_workers(quick: bool) -> list[Row]:
    from bench.bench_workers import compare
    rows = []
    for env_id in ("MazeLarge-10-v0", "KitchenMTEasy-v0") + (() if quick else ("MetaWorldMT50-v2",)):
        rate = compare(env_id, [1, 2], 150 if env_id.startswith("Maze") else 60, rounds=3)
        rows.append(("workers", f"{env_id}: --n_workers 2 / 1 (random actions)", f"{rate[2] / rate[1]:.2f}x",
                     "", ""))
    return rows


def section_gpu(quick: bool) -> list[Row]:
    if not torch.cuda.is_available():
        return [("gpu", "batched / per-task loop on CUDA, T=50 B=32", "not measured: no GPU on this machine",
                 ">= 20x", "not measured")]
    from bench.bench_update import measure
    r = measure(50, 32, steps=20, device="cuda")
    return [("gpu", f"batched / per-task loop on CUDA, T=50 B=32 ({torch.cuda.get_device_name(0)})",
             f"{r['speedup']:.1f}x ({r['batched']:.1f} vs {r['loop']:.1f} ms)", ">= 20x",
             verdict(r["speedup"], 20.0))]


def section_ctpg(quick: bool) -> list[Row]:
    from bench.bench_ctpg import section_rows
    return section_rows(quick)


def section_architectures(quick: bool) -> list[Row]:
    from bench.bench_architectures import section_rows
    return section_rows(quick)


def table(rows: list[Row]) -> str:
    lines = ["| section | measurement | value | target | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(lines)


def write_docs(text: str, path: Path) -> None:
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        doc = doc[: doc.index(start)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="skip MT50 and the MT10 epoch")
    p.add_argument("--only", default="", help=f"comma list of sections: {','.join(SECTIONS)}")
    p.add_argument("--no_write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    p.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    a = p.parse_args(argv)
    only = [s for s in a.only.split(",") if s]
    bad = sorted(set(only) - set(SECTIONS))
    if bad:
        p.error(f"--only: unknown section(s) {', '.join(bad)}; allowed: {', '.join(SECTIONS)}")
    torch.set_num_threads(1)  # one core per measurement, as the runs' --num_threads 1
    description, rows, failed = machine(), [], False
    print(description, flush=True)
    start = time.perf_counter()
    for name in only or SECTIONS:
        t0 = time.perf_counter()
        try:
            new = globals()[f"section_{name}"](a.quick)
        except Exception as exc:  # a failed section is a row, the others still run
            traceback.print_exc()
            new, failed = [(name, "error", f"{type(exc).__name__}: {exc}".replace("|", "/")[:200], "", "")], True
        rows += new
        print(table(new).split("\n", 2)[2], f"  [{time.perf_counter() - t0:.0f} s]", flush=True)
    text = (f"Measured by `python -m bench{' --quick' if a.quick else ''}` on "
            f"{time.strftime('%Y-%m-%d')}: {description}; {time.perf_counter() - start:.0f} s in all.\n\n"
            + table(rows))
    print("\n" + text)
    if not a.no_write and not only:
        write_docs(text, Path(a.docs))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

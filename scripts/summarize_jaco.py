"""Markdown tables of the Multistage Reacher reproduction (docs/results.md), from kept progress.csv files.

Usage: python scripts/summarize_jaco.py [DIR]   (default docs/results/jaco_repro; one sub-folder per run,
named METHOD_sSEED as scripts/repro_jaco.sh names them). Prints to stdout:

1. per run: final and best own-policy success (``Evaluation/p/SuccessRate`` where the run logs a ``p``
   mode, else ``Evaluation/SuccessRate``), the mean of the last 5 evaluations, final StagesCompleted
   (0-3 per episode; the mean over the 5 tasks) and per-task final success / stages;
2. per method: mean over seeds of the final success and stages;
3. for Q-switch runs: the selection matrix (row i = task i's data collection, column j = share of its
   steps acted by policy j) averaged over the last 10 epochs and over seeds.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def own(df: pd.DataFrame, leaf: str) -> str:
    """Column of the own-policy evaluation for ``leaf`` (``p`` mode when the run has one)."""
    return f"Evaluation/p/{leaf}" if f"Evaluation/p/{leaf}" in df else f"Evaluation/{leaf}"


def load(root: Path) -> dict[str, pd.DataFrame]:
    runs = {}
    for csv in sorted(root.glob("*/progress.csv")):
        runs[csv.parent.name] = pd.read_csv(csv)
    if not runs:
        raise SystemExit(f"no */progress.csv under {root}")
    return runs


def main(root: Path) -> None:
    runs = load(root)
    n_tasks = 1 + max(int(m.group(1)) for df in runs.values() for c in df.columns
                      if (m := re.match(r"Evaluation/Task(\d+)/SuccessRate", c)))
    print("| run | env steps | final success | mean of last 5 evals | best | final stages (0-3) | "
          "per-task final success | per-task final stages |")
    print("|---|---|---|---|---|---|---|---|")
    per_method: dict[str, list[tuple[float, float]]] = {}
    for name, df in runs.items():
        ev = df.dropna(subset=[own(df, "SuccessRate")])
        last = ev.iloc[-1]
        succ = ev[own(df, "SuccessRate")]
        stages = last[own(df, "StagesCompleted")]
        tasks_s = " ".join(f"{last[own(df, f'Task{t}/SuccessRate')]:.1f}" for t in range(n_tasks))
        tasks_g = " ".join(f"{last[own(df, f'Task{t}/StagesCompleted')]:.1f}" for t in range(n_tasks))
        print(f"| {name} | {int(last['TotalEnvSteps']):,} | {succ.iloc[-1]:.2f} | {succ.iloc[-5:].mean():.2f} "
              f"| {succ.max():.2f} | {stages:.2f} | {tasks_s} | {tasks_g} |")
        per_method.setdefault(re.sub(r"_s\d+$", "", name), []).append((succ.iloc[-1], stages))
    print()
    print("| method | seeds | final success, mean (per seed) | final stages, mean (per seed) |")
    print("|---|---|---|---|")
    for method, vals in per_method.items():
        s = [v[0] for v in vals]
        g = [v[1] for v in vals]
        print(f"| {method} | {len(vals)} | {np.mean(s):.2f} ({', '.join(f'{x:.2f}' for x in s)}) "
              f"| {np.mean(g):.2f} ({', '.join(f'{x:.2f}' for x in g)}) |")
    qswitch = {n: df for n, df in runs.items() if "Train/LocalPolicy0/Policy0Prob" in df}
    if qswitch:
        mats = []
        for df in qswitch.values():
            tail = df.iloc[-10:]
            mats.append(np.array([[tail[f"Train/LocalPolicy{i}/Policy{j}Prob"].mean() for j in range(n_tasks)]
                                  for i in range(n_tasks)]))
        mat = np.mean(mats, axis=0)
        print()
        print(f"Q-switch selection, last 10 epochs, mean over {len(mats)} runs ({', '.join(qswitch)}): "
              "row = task collecting, column = policy acting")
        print()
        print("| task | " + " | ".join(f"pi_{j}" for j in range(n_tasks)) + " |")
        print("|---" * (n_tasks + 1) + "|")
        for i in range(n_tasks):
            print(f"| {i} | " + " | ".join(f"{mat[i, j]:.2f}" for j in range(n_tasks)) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/jaco_repro"))

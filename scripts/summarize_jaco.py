"""Markdown tables of the Multistage Reacher reproduction (docs/results.md), from kept run dirs.

Usage: python scripts/summarize_jaco.py [DIR]   (default docs/results/jaco_repro: run dirs with
variant.json and progress.csv below it). Runs are read and grouped as ``run.py plot`` does
(:mod:`tools.plot`: by variant.json; success is each run's own-policy column, ``Evaluation/p/SuccessRate``
where the run logs a ``p`` mode, else ``Evaluation/SuccessRate``). Prints to stdout:

1. per run: final and best success, the mean of the last 5 evaluations, final StagesCompleted (0-3 per
   episode; the mean over the tasks) and per-task final success / stages;
2. per group (method): mean over seeds of the final success and stages;
3. per mixture group (QMP, QMP-Uniform, QMP-Domain): the mixture's and the own policies' success per run,
   and the selection matrix (row i = task i's data collection, column j = share of its steps acted by
   policy j) over the first and the last 10 epochs, averaged over the group's runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.plot import final_score, group_runs, load_runs  # noqa: E402

SELECTION_EPOCHS = 10


def main(root: Path) -> None:
    runs = load_runs([root], metric="SuccessRate", log=lambda m: print(m, file=sys.stderr))
    groups = group_runs(runs)
    print("| run | env steps | final success | mean of last 5 evals | best | final stages (0-3) | "
          "per-task final success | per-task final stages |")
    print("|---|---|---|---|---|---|---|---|")
    for group in groups:
        for run in sorted(group.runs, key=lambda r: r.variant.get("seed", 0)):
            prefix = run.metric.removesuffix("SuccessRate")  # "Evaluation/p/" or "Evaluation/"
            n_tasks = run.variant["resolved"]["num_tasks"]
            steps, success = run.series(run.metric)
            tasks_s = " ".join(f"{final_score(run, f'{prefix}Task{t}/SuccessRate'):.1f}" for t in range(n_tasks))
            tasks_g = " ".join(f"{final_score(run, f'{prefix}Task{t}/StagesCompleted'):.1f}"
                               for t in range(n_tasks))
            print(f"| {run.path.name} | {int(steps[-1]):,} | {success[-1]:.2f} | {success[-5:].mean():.2f} "
                  f"| {success.max():.2f} | {final_score(run, prefix + 'StagesCompleted'):.2f} | {tasks_s} "
                  f"| {tasks_g} |")
    print()
    print("| group | seeds | final success, mean (per seed) | final stages, mean (per seed) |")
    print("|---|---|---|---|")
    for group in groups:
        ordered = sorted(group.runs, key=lambda r: r.variant.get("seed", 0))
        s = [final_score(r) for r in ordered]
        g = [final_score(r, r.metric.removesuffix("SuccessRate") + "StagesCompleted") for r in ordered]
        print(f"| {group.label} | {len(ordered)} | {np.mean(s):.2f} ({', '.join(f'{x:.2f}' for x in s)}) "
              f"| {np.mean(g):.2f} ({', '.join(f'{x:.2f}' for x in g)}) |")
    for group in groups:
        mixed = [r for r in group.runs if "Train/LocalPolicy0/Policy0Prob" in r.progress]
        if not mixed:
            continue
        print()
        print(f"Mixture, {group.label}: success of the behaviour mixture (`Evaluation/SuccessRate`) beside "
              "the own policies' (`Evaluation/p/SuccessRate`), final (mean of last 5 evaluations)")
        print()
        print("| run | mixture final | mixture last 5 | own final | own last 5 |")
        print("|---|---|---|---|---|")
        for r in sorted(mixed, key=lambda r: r.variant.get("seed", 0)):
            _, mix = r.series("Evaluation/SuccessRate")
            _, own = r.series("Evaluation/p/SuccessRate")
            print(f"| {r.path.name} | {mix[-1]:.2f} | {mix[-5:].mean():.2f} | {own[-1]:.2f} | {own[-5:].mean():.2f} |")
        for name, rows in (("first", slice(0, SELECTION_EPOCHS)), ("last", slice(-SELECTION_EPOCHS, None))):
            print_selection(group.label, mixed, name, rows)


def print_selection(label: str, runs, name: str, rows: slice) -> None:
    """Selection matrix (row i = task i's data collection, column j = share of its steps acted by
    policy j) over the ``name`` SELECTION_EPOCHS epochs, averaged over ``runs``."""
    n_tasks = runs[0].variant["resolved"]["num_tasks"]
    mats = [np.array([[r.progress[f"Train/LocalPolicy{i}/Policy{j}Prob"].dropna().iloc[rows].mean()
                       for j in range(n_tasks)] for i in range(n_tasks)]) for r in runs]
    mat = np.mean(mats, axis=0)
    print()
    print(f"Selection, {label}, {name} {SELECTION_EPOCHS} epochs, mean over {len(mats)} runs "
          f"({', '.join(r.path.name for r in runs)}): row = task collecting, column = policy acting")
    print()
    print("| task | " + " | ".join(f"pi_{j}" for j in range(n_tasks)) + " |")
    print("|---" * (n_tasks + 1) + "|")
    for i in range(n_tasks):
        print(f"| {i} | " + " | ".join(f"{mat[i, j]:.2f}" for j in range(n_tasks)) + " |")

if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/jaco_arm"))

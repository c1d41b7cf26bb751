#!/usr/bin/env python
"""Plot one progress.csv column against TotalEnvSteps for several runs (mean ± std over seeds).

Runs whose directory names differ only by the trailing seed are grouped into one curve.
Usage: python scripts/plot_curves.py RUN_DIR [RUN_DIR ...] [--column Evaluation/p/SuccessRate] [--out curves.png]
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_column(run_dir: Path, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(TotalEnvSteps, column) of the rows where the column has a value."""
    with open(run_dir / "progress.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get(column, "") not in ("", "nan")]
    if column.startswith("Evaluation/"):  # only epochs that evaluated (Iteration == Epoch)
        rows = [r for r in rows if r.get("Evaluation/Iteration", r["Epoch"]) in ("", r["Epoch"])]
    if not rows:
        raise ValueError(f"{run_dir}/progress.csv has no values in column {column!r}")
    return (np.array([float(r["TotalEnvSteps"]) for r in rows]),
            np.array([float(r[column]) for r in rows]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--column", default="Evaluation/p/SuccessRate")
    p.add_argument("--fallback_column", default="Evaluation/SuccessRate",
                   help="used for runs without --column (non-QMP runs have no Evaluation/p/)")
    p.add_argument("--out", default="curves.png")
    a = p.parse_args()
    groups = defaultdict(list)
    for run in a.runs:
        groups[re.sub(r"_\d+(_\d+)?$", "", run.name)].append(run)
    fig, ax = plt.subplots(figsize=(6, 4))
    used_fallback = False
    for label, runs in sorted(groups.items()):
        curves = []
        for run in runs:
            try:
                curves.append(read_column(run, a.column))
            except (ValueError, KeyError):
                curves.append(read_column(run, a.fallback_column))
                used_fallback = True
        n = min(len(y) for _, y in curves)
        steps = curves[0][0][:n]
        ys = np.stack([y[:n] for _, y in curves])
        ax.plot(steps, ys.mean(0), label=f"{label} ({len(runs)} seed{'s' * (len(runs) > 1)})")
        ax.fill_between(steps, ys.mean(0) - ys.std(0), ys.mean(0) + ys.std(0), alpha=0.2)
    ax.set_xlabel("TotalEnvSteps")
    ax.set_ylabel(a.column + (f"\n(or {a.fallback_column})" if used_fallback else ""))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()

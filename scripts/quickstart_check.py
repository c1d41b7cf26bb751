"""Final printout of ``make run``: the run's success against the range the README states.

Usage: python scripts/quickstart_check.py LOG_DIR LOW HIGH

Reads LOG_DIR/progress.csv of a finished run (LOG_DIR/final_evaluation.json exists) and prints each
task's own-policy success (``Evaluation/p/SuccessRate``, deterministic actions) at the first and the
last evaluation and the mean of the last 5 evaluations, then whether that mean lies in [LOW, HIGH]:
the range measured over seeds 0-2 with the same command (README, "Quick start"). The mean of 5
evaluations is compared because a single evaluation of a young policy swings (one task more or
less solved moves the figure by 0.25 on a 4-task suite).

Exit status: 0 when the run finished (inside the range or not: outside is a reason to look, not an
error), 2 when it did not finish or the arguments are wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

COLUMN = "Evaluation/p/SuccessRate"
LAST = 5


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python scripts/quickstart_check.py LOG_DIR LOW HIGH", file=sys.stderr)
        return 2
    log_dir, low, high = Path(argv[0]), float(argv[1]), float(argv[2])
    if not (log_dir / "final_evaluation.json").is_file():
        hint = f" (continue it with `python run.py resume {log_dir}`)" if (log_dir / "params.pt").is_file() else ""
        print(f"{log_dir}/final_evaluation.json is missing: the run did not finish{hint}", file=sys.stderr)
        return 2
    final = json.loads((log_dir / "final_evaluation.json").read_text())
    evals = pd.read_csv(log_dir / "progress.csv").dropna(subset=[COLUMN])
    success = evals[COLUMN].to_numpy()
    tail = success[-LAST:].mean()
    print(f"own-policy success ({COLUMN}): {success[0]:.2f} at the first evaluation "
          f"({int(evals['TotalEnvSteps'].iloc[0]):,} env steps), {success[-1]:.2f} at the last "
          f"({final['total_env_steps']:,} env steps), {tail:.2f} over the last {LAST} evaluations")
    verdict = "inside" if low <= tail <= high else "OUTSIDE"
    print(f"expected mean of the last {LAST} evaluations (README, seeds 0-2): {low:.2f} to {high:.2f}; "
          f"this run is {verdict} that range")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``make run``'s final check (scripts/quickstart_check.py) and its range's agreement with the README."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "quickstart_check.py"


def fake_run(tmp_path, success, finished=True):
    rows = []
    for k, s in enumerate(success):  # evaluations every other epoch; blank rows between
        rows.append({"Epoch": 2 * k, "TotalEnvSteps": 1000 * (2 * k + 1), "Evaluation/p/SuccessRate": s})
        rows.append({"Epoch": 2 * k + 1, "TotalEnvSteps": 1000 * (2 * k + 2)})
    pd.DataFrame(rows).to_csv(tmp_path / "progress.csv", index=False)
    if finished:
        (tmp_path / "final_evaluation.json").write_text(json.dumps({"total_env_steps": 1000 * 2 * len(success)}))
    return tmp_path


def check(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_mean_of_last_five_evaluations_against_range(tmp_path):
    run = fake_run(tmp_path, [0.0, 0.25, 1.0, 1.0, 0.5, 0.5, 0.75, 0.25])
    out = check(run, 0.5, 0.7)
    assert out.returncode == 0
    # last five: 1.0, 0.5, 0.5, 0.75, 0.25 -> 0.60 (the final 0.25 and the overall mean 0.53 differ)
    assert "0.00 at the first evaluation" in out.stdout and "0.25 at the last" in out.stdout
    assert "0.60 over the last 5 evaluations" in out.stdout and "inside" in out.stdout
    assert "OUTSIDE" in check(run, 0.61, 0.9).stdout
    assert "inside" in check(run, 0.6, 0.6).stdout  # both bounds included (the mean is exactly 0.6)


def test_unfinished_run_exits_2(tmp_path):
    out = check(fake_run(tmp_path, [0.5], finished=False), 0, 1)
    assert out.returncode == 2 and "did not finish" in out.stderr


def test_makefile_range_is_the_readme_range():
    make = (ROOT / "Makefile").read_text()
    low, high = re.search(r"^QUICKSTART_RANGE\s*:=\s*([\d.]+)\s+([\d.]+)\s*$", make, re.M).groups()
    readme = (ROOT / "README.md").read_text()
    assert f"{float(low):.2f} to {float(high):.2f}" in readme
    assert 0 <= float(low) <= float(high) <= 1


"""`python run.py qmp_dnc|dnc_sac --env=ID` runs 2 epochs on every suite (tiny budgets)."""

import csv

import pytest
from click.testing import CliRunner

import environments
import run

SUITES = ["JacoReachMT5-v1", "Walker2dMT4-v0", "MetaWorldCDS-v1", "KitchenMTEasy-v0",
          "HalfCheetahMT5-v0", "HalfCheetahMT8-v0", "MetaWorldMT10-v2"]


# dnc_sac shares every component with qmp_dnc but the behaviour policy; the two slowest suites
# (Meta-World benchmark construction, Kitchen physics) run it only once to keep the suite short.
CASES = [(e, x) for e in SUITES for x in ("qmp_dnc", "dnc_sac")
         if not (x == "dnc_sac" and e in ("MetaWorldMT10-v2", "KitchenMTEasy-v0"))]


@pytest.mark.parametrize("env_id, experiment", CASES)
def test_two_epochs_on_suite(tmp_path, env_id, experiment):
    t = environments.get_suite(env_id).num_tasks
    log_dir = tmp_path / "run"
    args = [experiment, "--env", env_id, "--n_epochs", "2", "--steps_per_epoch", "1",
            "--batch_size", str(10 * t), "--min_buffer_size", "10", "--gradient_steps_per_itr", str(2 * t),
            "--buffer_batch_size", "8", "--hidden_sizes", "16", "--num_evaluation_episodes", str(t),
            "--log_dir", str(log_dir)]
    result = CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with open(log_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert int(rows[-1]["TotalEnvSteps"]) == 10 * t + 10 * t
    assert float(rows[-1]["Evaluation/NumEpisodes"]) == t
    assert f"Evaluation/Task{t - 1}/AverageReturn" in rows[-1]
    leaf = "SuccessRate" if environments.get_suite(env_id).success_is_meaningful else "AverageReturn"
    if experiment == "qmp_dnc":
        assert f"Evaluation/p/Task{t - 1}/{leaf}" in rows[-1]
    assert ("Evaluation/SuccessRate" in rows[-1]) == (leaf == "SuccessRate")  # none for return-only suites

"""The baseline methods (DnC, UDS, PCGrad, mixture variants) run end to end for a tiny budget
on MazeLarge-10-v0 and write their columns."""

import csv
import math

import pytest
from click.testing import CliRunner

import run

TINY = ["--n_epochs", "2", "--batch_size", "100", "--min_buffer_size", "20",
        "--gradient_steps_per_itr", "20", "--buffer_batch_size", "16", "--hidden_sizes", "16", "16",
        "--num_evaluation_episodes", "10"]


def invoke(args):
    return CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def per_task(*keys):
    return {f"Train/LocalPolicy{i}/{k}" for i in range(10) for k in keys}


CASES = [
    ("dnc_sac", ["--kl_coeff", "0.01", "--distillation_period", "1", "--distillation_n_epochs", "5"],
     per_task("PolicyKLPenalty", "PolicyKL", "BetaKL") | {"Train/Distillation/FinalLoss"}),
    ("uds_dnc", ["--sharing_quantile", "0.5"], per_task("SharedData", "BetaKL")),
    ("qmp_uds_dnc", ["--sharing_quantile", "0"],
     per_task("SharedData", "MixtureProbs") | {"Evaluation/p/SuccessRate"}),
    ("mtsac", ["--use_pc_grad", "True"], per_task("Qf1Loss")),
    ("qmp_sac", ["--use_pc_grad", "True", "--skip_alpha_pc_grad", "False"], per_task("MixtureProbs")),
    ("qmp_dnc", ["--mixture", "uniform"], per_task("MixtureProbs", "Policy9Prob")),
    ("qmp_dnc", ["--qswitch_score", "min-q-sample"], per_task("MixtureProbs")),
    ("qmp_dnc", ["--kl_coeff", "0.1", "--sampling_type", "i+j", "--regularize_representation", "True"],
     per_task("PolicyKLPenalty", "PolicyKL") | {"Evaluation/p/SuccessRate"}),
]


@pytest.mark.parametrize("experiment, extra, columns", CASES,
                         ids=[f"{e}:{' '.join(x)}" for e, x, _ in CASES])
def test_method_runs_and_writes_columns(tmp_path, experiment, extra, columns):
    log_dir = tmp_path / "run"
    result = invoke([experiment, *TINY, *extra, "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    rows = read_csv(log_dir / "progress.csv")
    assert len(rows) == 2
    assert columns <= set(rows[0]), columns - set(rows[0])
    for key in columns:
        assert not math.isnan(float(rows[-1][key])), key
    if experiment == "uds_dnc":  # fraction of other-task data kept by the 0.5 quantile
        assert all(0.0 <= float(rows[-1][k]) <= 1.0 for k in per_task("SharedData"))
    if experiment == "qmp_uds_dnc":  # quantile 0 keeps everything
        assert all(float(rows[-1][k]) == 1.0 for k in per_task("SharedData"))
    if experiment == "dnc_sac":
        assert all(float(rows[-1][k]) == pytest.approx(0.01) for k in per_task("BetaKL"))
        assert math.isnan(float(rows[0]["Train/Distillation/FinalLoss"]))  # epoch 0: none


def test_mixture_warmup_collects_with_own_policies_only(tmp_path):
    log_dir = tmp_path / "warm"
    result = invoke(["qmp_dnc", *TINY, "--mixture", "uniform", "--mixture_warmup", "1",
                     "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    rows = read_csv(log_dir / "progress.csv")
    assert all(float(rows[0][k]) == 1.0 for k in per_task("MixtureProbs"))
    # after warm-up the uniform mixture picks other policies too
    assert any(float(rows[1][k]) < 1.0 for k in per_task("MixtureProbs"))


def test_qmp_domain_uses_the_suite_matrix_on_jaco(tmp_path):
    import environments

    matrix = environments.get_suite("JacoReachMT5-v1").domain_mixture
    log_dir = tmp_path / "domain"
    result = invoke(["qmp_dnc", "--env", "JacoReachMT5-v1", *TINY, "--batch_size", "500",
                     "--num_evaluation_episodes", "5", "--mixture", "domain", "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    row = read_csv(log_dir / "progress.csv")[-1]
    for i in range(5):
        for j in range(5):
            prob = float(row[f"Train/LocalPolicy{i}/Policy{j}Prob"])
            if matrix[i, j] == 0:
                assert prob == 0.0, (i, j)
            if matrix[i, j] == 1:
                assert prob == 1.0, (i, j)


def test_qmp_domain_reads_mixture_probs_file(tmp_path):
    import numpy as np

    probs = np.eye(10)
    probs[3] = 0.0
    probs[3, 7] = 1.0  # task 3 always collects with policy 7
    path = tmp_path / "probs.txt"
    np.savetxt(path, probs)
    log_dir = tmp_path / "file"
    result = invoke(["qmp_dnc", *TINY, "--mixture", "domain", "--mixture_probs", str(path),
                     "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    row = read_csv(log_dir / "progress.csv")[-1]
    assert float(row["Train/LocalPolicy3/Policy7Prob"]) == 1.0
    assert float(row["Train/LocalPolicy0/MixtureProbs"]) == 1.0

"""Every experiment runs end to end for a tiny budget and writes the expected logs."""

import csv
import json

import pytest
import torch
from click.testing import CliRunner

import run

TINY = ["--n_epochs", "2", "--batch_size", "100", "--min_buffer_size", "20",
        "--gradient_steps_per_itr", "20", "--buffer_batch_size", "16", "--hidden_sizes", "16", "16",
        "--num_evaluation_episodes", "10"]


def invoke(args):
    if not any(a == "--env" or a.startswith("--env=") for a in args):  # --env is required: the maze
        args = [args[0], "--env", "MazeLarge-10-v0", *args[1:]]
    result = CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)
    return result


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("experiment, extra", [
    ("sac", []),
    ("mtsac", []),
    ("mtsac", ["--policy_architecture", "shared", "--Q_architecture", "shared", "--include_task_id", "True"]),
    ("dnc_sac", []),
    ("qmp_dnc", []),
    ("qmp_sac", []),
    ("uds_dnc", []),
    ("qmp_uds_dnc", []),
])
def test_experiment_runs_and_writes_expected_columns(tmp_path, experiment, extra):
    log_dir = tmp_path / "run"
    result = invoke([experiment, "--env", "MazeLarge-10-v0", *TINY, *extra, "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    assert "final Evaluation/SuccessRate" in result.output
    rows = read_csv(log_dir / "progress.csv")
    assert len(rows) == 2
    cols = set(rows[0])
    expected = {"Epoch", "TotalEnvSteps", "Evaluation/SuccessRate", "Evaluation/AverageReturn",
                "Evaluation/AverageDiscountedReturn", "Train/AverageReturn", "Time/EnvStepsPerSecond",
                "Time/UpdateSeconds", "Train/Qf1Loss", "Train/AlphaTemperature"}
    expected |= {f"Evaluation/Task{k}/SuccessRate" for k in range(10)}
    expected |= {f"Train/LocalPolicy{k}/AlphaTemperature" for k in range(10)}
    if experiment.startswith("qmp"):
        expected |= {"Evaluation/p/SuccessRate", "Evaluation/p/Task9/SuccessRate",
                     "Train/LocalPolicy0/Policy9Prob", "Train/LocalPolicy3/MixtureProbs"}
    assert expected <= cols, expected - cols
    # episode counts: 1 evaluation episode per task
    assert int(float(rows[-1]["Evaluation/NumEpisodes"])) == 10
    # warm-up collects min_buffer_size per task (DnC family) or in total (SAC family); then batch_size
    per_itr = 100
    dnc_family = experiment in ("dnc_sac", "qmp_dnc", "uds_dnc", "qmp_uds_dnc")
    warm = 20 * 10 if dnc_family else 20
    assert int(rows[0]["TotalEnvSteps"]) == warm and int(rows[1]["TotalEnvSteps"]) == warm + per_itr
    variant = json.loads((log_dir / "variant.json").read_text())
    assert variant["experiment"] == experiment and variant["hidden_sizes"] == [16, 16]
    # resolved values the command line did not give: one 1e6 buffer per task (DnC family) or
    # one 1e6 buffer shared by the 10 tasks (SAC family); log alpha vs alpha temperature loss
    resolved = variant["resolved"]
    assert resolved["replay_buffer_size_per_task"] == (1_000_000 if dnc_family else 100_000)
    assert resolved["temperature_loss"] == ("log_alpha" if dnc_family else "alpha")
    snapshot = torch.load(log_dir / "params.pt", weights_only=False)
    assert snapshot["epoch"] == 1 and snapshot["total_env_steps"] == warm + per_itr
    # the optimisers' states are the trained ones: gradient steps per epoch are G // T per task
    # (DnC family) or G (SAC family), G = 20, in each of the 2 epochs
    updates = 2 * (20 // 10 if dnc_family else 20)
    assert set(snapshot["optimizers"]) == {"policy_optimizer", "qf_optimizer", "alpha_optimizer"}
    for name, optimizer in snapshot["optimizers"].items():
        assert {float(s["step"]) for s in optimizer["state"].values()} == {updates}, name
    # the RNG states are those at the end of training (nothing draws after the last snapshot)
    assert torch.equal(snapshot["rng"]["torch"], torch.get_rng_state())
    assert any(p.name.startswith("events.out.tfevents") for p in log_dir.iterdir())


def test_qmp_selection_fractions_are_distributions(tmp_path):
    log_dir = tmp_path / "qmp"
    assert invoke(["qmp_dnc", *TINY, "--log_dir", str(log_dir)]).exit_code == 0
    row = read_csv(log_dir / "progress.csv")[-1]
    for i in range(10):
        probs = [float(row[f"Train/LocalPolicy{i}/Policy{j}Prob"]) for j in range(10)]
        assert sum(probs) == pytest.approx(1.0)
        # epoch 1: task i took 100 / 10 = 10 steps, so each fraction is a count / 10
        assert all(p * 10 == pytest.approx(round(p * 10)) for p in probs), probs
    # with untrained critics the switch picks other tasks' policies for some steps
    assert any(float(row[f"Train/LocalPolicy{i}/MixtureProbs"]) < 1.0 for i in range(10))


def test_same_seed_gives_identical_progress_csv(tmp_path):
    rows = []
    for k in range(2):
        log_dir = tmp_path / f"seed{k}"
        assert invoke(["qmp_dnc", *TINY, "--seed", "3", "--log_dir", str(log_dir)]).exit_code == 0
        rows.append([{c: v for c, v in r.items() if not c.startswith("Time/")}
                     for r in read_csv(log_dir / "progress.csv")])
    assert rows[0] == rows[1]
    other = tmp_path / "other"
    assert invoke(["qmp_dnc", *TINY, "--seed", "4", "--log_dir", str(other)]).exit_code == 0
    assert read_csv(other / "progress.csv")[-1]["Train/Qf1Loss"] != rows[0][-1]["Train/Qf1Loss"]


def test_single_gymnasium_env_as_one_task_suite(tmp_path):
    log_dir = tmp_path / "cheetah"
    result = invoke(["sac", "--env", "Pendulum-v1", *TINY, "--num_evaluation_episodes", "1",
                     "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    row = read_csv(log_dir / "progress.csv")[-1]
    assert float(row["Evaluation/AverageEpisodeLength"]) == 200.0


def test_existing_log_dir_is_not_overwritten(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert invoke(["dnc_sac", *TINY, "--n_epochs", "1", "--name", "same"]).exit_code == 0
    runs = sorted(p.name for p in (tmp_path / "data/local/experiment").iterdir())
    assert runs == ["dnc_sac_MazeLarge-10-v0_same_0", "dnc_sac_MazeLarge-10-v0_same_0_1"]


def test_csv_starts_with_epoch_and_steps(tmp_path):
    log_dir = tmp_path / "order"
    assert invoke(["dnc_sac", *TINY, "--n_epochs", "1", "--log_dir", str(log_dir)]).exit_code == 0
    with open(log_dir / "progress.csv") as f:
        assert f.readline().startswith("Epoch,TotalEnvSteps,Evaluation/Iteration")


def test_epochs_without_evaluation_leave_evaluation_cells_empty(tmp_path):
    log_dir = tmp_path / "freq"
    args = ["dnc_sac", *TINY, "--n_epochs", "3", "--evaluation_frequency", "2", "--log_dir", str(log_dir)]
    assert invoke(args).exit_code == 0
    rows = read_csv(log_dir / "progress.csv")
    assert [r["Evaluation/SuccessRate"] != "" for r in rows] == [True, False, True]
    assert rows[1]["Evaluation/Task3/AverageReturn"] == "" and rows[1]["Train/Qf1Loss"] != ""
    assert rows[2]["Evaluation/Iteration"] == "2"
